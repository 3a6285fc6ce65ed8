/*
 * fuzz_checkpoint.c — libFuzzer harness of checkpoints: segloss.nn.load
 * and Module:load (lua/segloss/nn/checkpoint.lua: the metadata's JSON, the
 * architecture it rebuilds, the names and shapes of the tensors, the
 * optimiser's state) over the .npz reader, through fuzz/c/checkpoint.lua
 * (the input: a whole file, or a description that segloss.core.npz_save
 * writes; the checks: see there). fuzz_npz covers the archive's bytes.
 */
#include "lua_harness.h"

static char dir[512], path[600];

/* the driver's file and directory, at a normal exit */
static void cleanup(void)
{
	remove(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	lua_harness_init("checkpoint");
	lua_State *L = fuzz_L;
	lua_getglobal(L, "require");
	lua_pushstring(L, "checkpoint");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "DIR");
	lua_getfield(L, -2, "PATH");
	snprintf(dir, sizeof dir, "%s", lua_tostring(L, -2));
	snprintf(path, sizeof path, "%s", lua_tostring(L, -1));
	lua_pop(L, 3);
	atexit(cleanup);
	/* SL_FUZZ_SEEDS=dir: write the seed corpus there and stop */
	const char *seeds = getenv("SL_FUZZ_SEEDS");
	if (seeds) {
		lua_getglobal(L, "require");
		lua_pushstring(L, "checkpoint");
		lua_call(L, 1, 1);
		lua_getfield(L, -1, "seeds");
		lua_pushstring(L, seeds);
		if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
			fprintf(stderr, "seeds: %s\n", lua_tostring(L, -1));
			exit(2);
		}
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_harness_run(data, size);
	return 0;
}
