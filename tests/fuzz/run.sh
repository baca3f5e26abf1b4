#!/bin/sh
# Runs one libFuzzer target of tests/fuzz/ (built by cmake -DPSDM_FUZZ=ON) on a copy of its
# seed corpus. Nothing is written into the tree.
#
#   tests/fuzz/run.sh check BUILD TARGET               ctest -L fuzz (make test): every seed, then
#                                                      $PSDM_FUZZ_CHECK_RUNS (10000) new inputs
#   tests/fuzz/run.sh fuzz BUILD TARGET SECONDS [RUNS] make fuzz: SECONDS of fuzzing (or RUNS
#                                                      inputs, whichever ends first), at nice 10
#
# BUILD is the build directory (binaries in BUILD/fuzz/). Work corpus: BUILD/fuzz-check/TARGET
# (check: emptied first, the seeds are read from the tree) or BUILD/fuzz-corpus/TARGET (fuzz:
# kept between runs and topped up with the seeds, so the inputs found accumulate). Crashes:
# BUILD/fuzz-artifacts/TARGET-crash-*; the whole libFuzzer log: BUILD/fuzz-logs/TARGET.MODE.log.
# Prints one line per run (or the end of the log and the reproducer on failure).
set -eu

usage() {
    echo "usage: $0 check BUILD TARGET | $0 fuzz BUILD TARGET SECONDS [RUNS]" >&2
    exit 2
}
[ $# -ge 3 ] || usage
mode=$1 build=$2 target=$3 seconds=${4:-} runs=${5:--1}
case $mode in
    check) [ $# -eq 3 ] || usage ;;
    fuzz) [ $# -ge 4 ] && [ $# -le 5 ] || usage ;;
    *) usage ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/fuzz/$target
seeds=$here/corpus/$target
[ -x "$bin" ] || { echo "$0: $bin not built (cmake --build $build --target psdm_fuzz)" >&2; exit 2; }
[ -d "$seeds" ] || { echo "$0: no seed corpus $seeds" >&2; exit 2; }

# Per target: the longest input worth trying (the handoff's is a whole request).
case $target in
    fuzz_handoff | fuzz_handoff_io) max_len=33000 ;;
    *) max_len=4096 ;;
esac
set -- -max_len=$max_len -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$target-"
[ -f "$here/$target.dict" ] && set -- "$@" -dict="$here/$target.dict"

mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
log=$build/fuzz-logs/$target.$mode.log
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
case $mode in
    check)
        work=$build/fuzz-check/$target
        rm -rf "$work"
        mkdir -p "$work"
        set -- "$bin" -runs="${PSDM_FUZZ_CHECK_RUNS:-10000}" -max_total_time=60 "$@" "$work" "$seeds"
        ;;
    fuzz)
        work=$build/fuzz-corpus/$target
        mkdir -p "$work"
        cp "$seeds"/* "$work"/
        set -- nice -n 10 "$bin" -max_total_time="$seconds" -runs="$runs" "$@" "$work"
        ;;
esac

echo "$target: $*" >"$log"
if "$@" >>"$log" 2>&1; then
    # "Done 3123 runs in 2 second(s)" and the last status line "#3123 DONE cov: 441 ft: 1265 corp: ..."
    done_line=$(grep -a '^Done [0-9]* runs in' "$log" | tail -n 1)
    stats=$(grep -a '^#[0-9]' "$log" | tail -n 1 | sed -n 's/.*\(cov: [0-9]* ft: [0-9]* corp: [0-9]*\/[^ ]*\).*/\1/p')
    echo "$target: ok: ${done_line#Done }, $stats (log: $log)"
else
    rc=$?
    tail -n 60 "$log" >&2
    echo "$target: FAILED (exit $rc); full log: $log; reproducer: $build/fuzz-artifacts/$target-*" >&2
    echo "  re-run one input: $bin $build/fuzz-artifacts/$target-crash-..." >&2
    exit 1
fi
