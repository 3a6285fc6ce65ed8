/*
 * two_states.c — several Lua states using segloss at once, one per OS thread.
 *
 *   two_states WORKLOAD [STATES [ITERATIONS]]     (make test-threads)
 *
 * WORKLOAD is test/threads/workload.lua: it returns {backends, run}, and
 * run(backend, threads) returns every result of a fixed workload (losses
 * with gradients, tensor reductions, metrics, a U-Net step with Adam and
 * SGD) as one binary string, the team of threads a large job ran on and
 * the teams of all its large jobs (threaded sums, maps, losses, metrics).
 * LUA_PATH_5_4 and LUA_CPATH_5_4 say where segloss is.
 *
 * First one state alone computes the reference of each backend (with one
 * thread, and again with three: the same bits). Then STATES threads (2)
 * each open their own state and run ITERATIONS (8) times at once, state i
 * in iteration k on backend (i + k) mod B and with 1 + (i + k) mod 3
 * threads, so the states' settings differ at every moment; every result is
 * compared bit for bit with its backend's reference, and the teams of its
 * large jobs with the threads it asked for (11 jobs: all must match). Global state shared by the states
 * (a dispatch table, a team record, a workspace, a PRNG) would show as a
 * wrong backend's bits, wrong bits, or a wrong team. The backends' references
 * must differ from each other, or a mixed-up backend could not show.
 *
 * Progress on stderr; the last line of stdout is the summary, e.g.
 * "test-threads: 2 states x 8 iterations = 16 results compared (135200 bytes
 * each), 16 bit-identical, 16 teams right; backends avx2,sse2,scalar";
 * exit status 1 on any difference.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define MAXB 8
#define MAXS 16

static const char *workload;
static int nback, iters;
static char backs[MAXB][32];
static char *refs[MAXB];
static size_t reflen[MAXB];

typedef struct {
	int id;
	int compared, equal, teams_ok;
	char err[512];
} job;

/* a state with segloss loaded and the workload's table at the top of its
 * stack, or NULL and a message in err */
static lua_State *open_state(char *err, size_t len)
{
	lua_State *L = luaL_newstate();
	if (!L) {
		snprintf(err, len, "luaL_newstate failed");
		return NULL;
	}
	luaL_openlibs(L);
	if (luaL_dofile(L, workload) != LUA_OK || !lua_istable(L, -1)) {
		snprintf(err, len, "%s: %s", workload, lua_isstring(L, -1) ? lua_tostring(L, -1) : "not a table");
		lua_close(L);
		return NULL;
	}
	return L;
}

/* run(backend, threads) of the table at index 1; the result string (owned
 * by L, at the top of the stack) and team, or NULL and a message */
static const char *run(lua_State *L, const char *backend, int threads, size_t *len, int *team, char *err,
                       size_t errlen)
{
	lua_settop(L, 1);
	lua_getfield(L, 1, "run");
	lua_pushstring(L, backend);
	lua_pushinteger(L, threads);
	if (lua_pcall(L, 2, 3, 0) != LUA_OK) {
		snprintf(err, errlen, "run(%s, %d): %s", backend, threads, lua_tostring(L, -1));
		return NULL;
	}
	/* the team of the first large job, or -1 if any large job ran on
	 * another team than that (teams: name -> team, names in teams.names) */
	*team = (int)lua_tointeger(L, -2);
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "names");
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, -1, i);
			lua_gettable(L, -3);
			if (lua_tointeger(L, -1) != *team)
				*team = -1;
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
	return lua_tolstring(L, -1, len);
}

static void *state_main(void *arg)
{
	job *j = arg;
	lua_State *L = open_state(j->err, sizeof j->err);
	if (!L)
		return NULL;
	for (int k = 0; k < iters; k++) {
		int b = (j->id + k) % nback, threads = 1 + (j->id + k) % 3, team;
		size_t len;
		const char *s = run(L, backs[b], threads, &len, &team, j->err, sizeof j->err);
		if (!s)
			break;
		j->compared++;
		if (len == reflen[b] && memcmp(s, refs[b], len) == 0)
			j->equal++;
		else
			fprintf(stderr, "test-threads: state %d iteration %d (%s, %d threads): results differ from the reference\n",
			        j->id + 1, k + 1, backs[b], threads);
		if (team == threads)
			j->teams_ok++;
		else
			fprintf(stderr, "test-threads: state %d iteration %d: asked for %d threads, ran on %d%s\n", j->id + 1,
			        k + 1, threads, team, team < 0 ? " (jobs on different teams)" : "");
	}
	lua_close(L);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: two_states WORKLOAD [STATES [ITERATIONS]]\n");
		return 2;
	}
	workload = argv[1];
	int nstates = argc > 2 ? atoi(argv[2]) : 2;
	iters = argc > 3 ? atoi(argv[3]) : 8;
	if (nstates < 1 || nstates > MAXS || iters < 1) {
		fprintf(stderr, "two_states: STATES must be 1..%d and ITERATIONS >= 1\n", MAXS);
		return 2;
	}

	/* the references, one state alone */
	char err[512];
	lua_State *L = open_state(err, sizeof err);
	if (!L) {
		fprintf(stderr, "test-threads: %s\n", err);
		return 1;
	}
	lua_getfield(L, 1, "backends");
	lua_call(L, 0, 1);
	nback = (int)luaL_len(L, -1);
	if (nback > MAXB)
		nback = MAXB;
	for (int b = 0; b < nback; b++) {
		lua_geti(L, 2, b + 1);
		snprintf(backs[b], sizeof backs[b], "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	int bad = 0;
	for (int b = 0; b < nback; b++) {
		size_t len, len3;
		int team, team3;
		fprintf(stderr, "test-threads: reference on %s, one state alone\n", backs[b]);
		const char *s = run(L, backs[b], 1, &len, &team, err, sizeof err);
		if (!s) {
			fprintf(stderr, "test-threads: %s\n", err);
			return 1;
		}
		refs[b] = malloc(len);
		if (!refs[b])
			return 1;
		memcpy(refs[b], s, len);
		reflen[b] = len;
		const char *s3 = run(L, backs[b], 3, &len3, &team3, err, sizeof err);
		if (!s3) {
			fprintf(stderr, "test-threads: %s\n", err);
			return 1;
		}
		if (len3 != len || memcmp(s3, refs[b], len) != 0 || team != 1 || team3 != 3) {
			fprintf(stderr, "test-threads: %s alone: 1 and 3 threads differ (teams %d, %d)\n", backs[b], team,
			        team3);
			bad = 1;
		}
		for (int a = 0; a < b; a++)
			if (reflen[a] == len && memcmp(refs[a], refs[b], len) == 0) {
				fprintf(stderr, "test-threads: %s and %s give the same bits: a mixed-up backend would not show\n",
				        backs[a], backs[b]);
				bad = 1;
			}
	}
	lua_close(L);

	/* the states at once */
	fprintf(stderr, "test-threads: %d states x %d iterations at once\n", nstates, iters);
	pthread_t th[MAXS];
	job jobs[MAXS];
	for (int i = 0; i < nstates; i++) {
		jobs[i] = (job){.id = i};
		if (pthread_create(&th[i], NULL, state_main, &jobs[i]) != 0) {
			fprintf(stderr, "test-threads: pthread_create failed\n");
			return 1;
		}
	}
	int compared = 0, equal = 0, teams = 0;
	for (int i = 0; i < nstates; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].err[0]) {
			fprintf(stderr, "test-threads: state %d: %s\n", i + 1, jobs[i].err);
			bad = 1;
		}
		compared += jobs[i].compared;
		equal += jobs[i].equal;
		teams += jobs[i].teams_ok;
	}
	char names[MAXB * 33] = "";
	for (int b = 0; b < nback; b++) {
		strcat(names, b ? "," : "");
		strcat(names, backs[b]);
	}
	int ok = !bad && compared == nstates * iters && equal == compared && teams == compared;
	printf("test-threads: %s: %d states x %d iterations = %d results compared (%zu bytes each), %d bit-identical, "
	       "%d teams right; backends %s\n",
	       ok ? "ok" : "FAILED", nstates, iters, compared, reflen[0], equal, teams, names);
	for (int b = 0; b < nback; b++)
		free(refs[b]);
	return ok ? 0 : 1;
}
