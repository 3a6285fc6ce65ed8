#!/bin/sh
# fuzz_c.sh BUILD SECONDS HARNESS... — runs each libFuzzer harness
# BUILD/fuzz_<h> for SECONDS (make fuzz-c; docs/reliability.md).
#
# Each starts from its working corpus BUILD/corpus/<h> (kept between runs,
# outside the repository), seeded from fuzz/c/corpus/<h>, with the
# dictionary fuzz/c/<h>.dict when there is one. Progress goes to stderr
# (libFuzzer's pulse lines and a line per harness); its full log is
# BUILD/fuzz_<h>.log. A crash, a sanitizer report, a broken invariant, a
# timeout (10 s) or running out of memory (2 GB) stops the run: the input is
# saved under BUILD/crash/ and its path printed, the exit status is 1. The
# last line: "fuzz-c: <h> <runs> runs (<edges> edges), ..., <total> runs in
# <seconds> s".
set -u
build=$1
secs=$2
shift 2
dict_of() {
	case $1 in
	npy) echo fuzz/c/npy.dict ;;
	npz | checkpoint) echo fuzz/c/zip.dict ;;
	png) echo fuzz/c/png.dict ;;
	esac
}
mkdir -p "$build/crash"
t0=$(date +%s)
summary=""
total=0
for h in "$@"; do
	bin=$build/fuzz_$h
	corpus=$build/corpus/$h
	log=$build/fuzz_$h.log
	mkdir -p "$corpus"
	[ -d "fuzz/c/corpus/$h" ] && cp -n fuzz/c/corpus/"$h"/* "$corpus"/ 2>/dev/null
	dict=$(dict_of "$h")
	echo "fuzz-c: $h for $secs s ($(ls "$corpus" | wc -l) inputs in $corpus)" >&2
	# -close_fd_mask=1: the drivers' own stdout stays quiet
	nice -n 10 "$bin" "$corpus" ${dict:+-dict=$dict} -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=4096 -timeout=10 \
		-print_final_stats=1 -close_fd_mask=1 -artifact_prefix="$build/crash/$h-" >"$log" 2>&1 &
	pid=$!
	# progress: libFuzzer's pulse lines as they come
	tail -n +1 -f --pid=$pid "$log" 2>/dev/null | grep --line-buffered -E '^#[0-9]+[[:space:]]+pulse' |
		sed -u "s/^/fuzz-c: $h /" >&2 &
	tailer=$!
	wait $pid
	rc=$?
	wait $tailer 2>/dev/null
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	edges=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	if [ "$rc" -ne 0 ] || [ -z "$runs" ]; then
		grep -E 'FINDING|ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -n 20 >&2
		crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "fuzz-c: $h FAILED (exit $rc) after $(( $(date +%s) - t0 )) s; input: ${crash:-none saved}; log: $log;" \
			"reproduce: $bin ${crash:-<input>}" >&2
		echo "fuzz-c: FAILED in $h (input ${crash:-none saved})${summary:+; before it:$summary}"
		exit 1
	fi
	echo "fuzz-c: $h done: $runs runs, $edges edges covered" >&2
	summary="$summary $h $runs runs (${edges:-?} edges),"
	total=$((total + runs))
done
echo "fuzz-c:$summary $total runs in $(( $(date +%s) - t0 )) s"
