/*
 * fuzz_opts.c — libFuzzer harness of the option parser (src/bind/opts.c
 * and the checks of src/bind/loss.c, criterion.c, metrics.c behind it):
 * fuzz/c/opts.lua turns the input into an options table and a call of a
 * functional loss, a criterion (built, called, combined) or
 * segloss.metrics.evaluate, and checks what comes back (see there).
 */
#include "lua_harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	lua_harness_init("opts");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_harness_run(data, size);
	return 0;
}
