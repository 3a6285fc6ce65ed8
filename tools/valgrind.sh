#!/bin/sh
# valgrind.sh BUILD — make valgrind: tools/valgrind_run.lua under memcheck,
# with the module of BUILD (a plain -O1 -g build: valgrind cannot run ASan).
#
#   VALGRIND_SECONDS  the time limit of the run (600): over it is a failure
#
# Errors of any kind, and definite or indirect leaks, fail the run (exit 1);
# spec/support/valgrind.supp holds the suppressions, each for third-party
# code and saying why. Memcheck's report goes to BUILD/valgrind.log (shown
# on failure); the last line is the summary, e.g.
#   valgrind: ok: 0 errors, 0 bytes definitely lost, 0 bytes indirectly lost;
#   607 checks run (backends avx2,sse2,scalar, threads 1,2) in 95 s
set -u
build=${1:-build-vg}
limit=${VALGRIND_SECONDS:-600}
case $limit in '' | *[!0-9]*)
	echo "valgrind: VALGRIND_SECONDS must be a whole number of seconds, got '$limit'" >&2
	exit 2
	;;
esac
log=$build/valgrind.log
out=$build/valgrind.out
tmp=$(mktemp -d "${TMPDIR:-/tmp}/segloss-vg.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/run/img" "$tmp/run/msk" || exit 1
echo "valgrind: memcheck on tools/valgrind_run.lua with $build/segloss/core.so (limit ${limit} s) ..." >&2
t0=$(date +%s)
LUA_PATH_5_4="lua/?.lua;lua/?/init.lua;;" LUA_CPATH_5_4="$build/?.so;;" \
	timeout "$limit" valgrind --tool=memcheck --error-exitcode=1 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	--track-origins=yes --num-callers=30 --suppressions=spec/support/valgrind.supp \
	--log-file="$log" lua5.4 tools/valgrind_run.lua "$tmp/run" >"$out" 2>&1
rc=$?
secs=$(($(date +%s) - t0))
# the progress lines of the script, as they were
grep '^valgrind_run: backend' "$out" >&2
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tail -n 1 | tr -d ,)
definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n 1 | tr -d ,)
indirect=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n 1 | tr -d ,)
checks=$(sed -n 's/^valgrind_run: \([0-9]*\) checks, backends \([^,]*.*\), threads \(.*\)$/\1 checks run (backends \2, threads \3)/p' "$out")
# no leak summary when nothing was allocated at exit: nothing was lost
errors=${errors:-?}
definite=${definite:-0}
indirect=${indirect:-0}
checks=${checks:-the script did not finish}
status=ok
if [ "$rc" -ne 0 ] || [ "$errors" != 0 ] || [ "$definite" != 0 ] || [ "$indirect" != 0 ] ||
	! grep -q '^valgrind_run: [0-9]* checks' "$out"; then
	status=FAILED
	[ "$rc" -eq 124 ] && echo "valgrind: over the time limit of $limit s (VALGRIND_SECONDS)" >&2
	echo "valgrind: the script's output ($out):" >&2
	tail -n 20 "$out" | sed 's/^/  /' >&2
	echo "valgrind: memcheck's report ($log), its errors and leaks:" >&2
	grep -v '^==[0-9]*== *$' "$log" | head -n 300 | sed 's/^/  /' >&2
fi
echo "valgrind: $status: $errors errors, $definite bytes definitely lost, $indirect bytes indirectly lost; $checks in $secs s"
[ "$status" = ok ]
