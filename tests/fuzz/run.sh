#!/usr/bin/env bash
# Runs each libFuzzer target of a fuzz build tree for SECONDS, one after the other, from its
# committed seeds (tests/fuzz/corpus/TARGET, read only) plus a working corpus that grows across
# runs (OUT/corpus/TARGET), with tests/fuzz/TARGET.dict when there is one. A crashing input is
# saved under OUT/crashes/ and that target's run ends there; the others still run. Full logs:
# OUT/logs/TARGET.log. OUT is $FUZZ_OUT, by default BUILD/fuzz (make check's smoke runs use
# their own, so they never share a log with a long run). FUZZ_WORKERS=N (default 1) runs each
# target in libFuzzer's fork mode with N processes at once (one per core); its executions are
# then counted from the last job that reported, so the count errs low.
#
#   tests/fuzz/run.sh BUILD SECONDS [TARGET...]     (default: every BUILD/fuzz/fuzz_* binary)
#
# Ends with exactly one line per target, `fuzz TARGET: N execs, N crashes`; exits 1 when any
# target crashed (or did not run), else 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { echo "usage: tests/fuzz/run.sh BUILD SECONDS [TARGET...]" >&2; exit 2; }
build=$1 seconds=$2
shift 2
case "$seconds" in '' | *[!0-9]*) echo "SECONDS must be a whole number, not '$seconds'" >&2; exit 2 ;; esac
workers=${FUZZ_WORKERS:-1}
case "$workers" in '' | *[!0-9]* | 0) echo "FUZZ_WORKERS must be a whole number above 0, not '$workers'" >&2; exit 2 ;; esac
fork=()
[ "$workers" -gt 1 ] && fork=(-fork="$workers")

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for b in "$build"/fuzz/fuzz_*; do
        [ -x "$b" ] && [ -f "$b" ] && targets+=("${b##*/fuzz_}")
    done
fi
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz targets in $build/fuzz (make fuzz-build)" >&2; exit 2; }

out=${FUZZ_OUT:-$build/fuzz}
mkdir -p "$out/logs" "$out/crashes"
summary=()
status=0
for t in "${targets[@]}"; do
    bin="$build/fuzz/fuzz_$t" log="$out/logs/$t.log" work="$out/corpus/$t"
    mkdir -p "$work"
    seeds=() dict=()
    [ -d "tests/fuzz/corpus/$t" ] && seeds=("tests/fuzz/corpus/$t")
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    echo "=== fuzz $t for ${seconds}s with $workers process(es) (log: $log)"
    start=$(date +%s)
    if [ -x "$bin" ]; then
        # -timeout: an input that takes this long is a finding too (a hang), counted as a crash
        "$bin" "${fork[@]}" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 "${dict[@]}" \
            -artifact_prefix="$out/crashes/$t-" "$work" "${seeds[@]}" >"$log" 2>&1
        rc=$?
    else
        echo "missing $bin" >"$log"
        rc=127
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    # after a crash, and in fork mode, libFuzzer prints no final stats: take its last "#N"
    # progress line ("#N<tab>NEW ..." in one process, "#N: cov: ..." from fork mode's parent)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\)[:[:space:]].*/\1/p' "$log" | tail -1)
    execs=${execs:-0}
    rate=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -1)
    elapsed=$(($(date +%s) - start))
    [ -n "$rate" ] || rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    echo "--- fuzz $t: ${rate:-?} exec/s on average"
    crashes=0
    if [ "$rc" -ne 0 ]; then
        crashes=1
        status=1
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)|Test unit written|^artifact_prefix' \
            "$log" | head -5
    fi
    summary+=("fuzz $t: $execs execs, $crashes crashes")
done
printf '%s\n' "${summary[@]}"
exit $status
