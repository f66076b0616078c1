#!/usr/bin/env bash
# Runs every test: the cmocka unit binaries of each build tree given as arguments, then the
# integration scripts (tests/integration/*.sh and *.py, against the first tree's inspectd), then,
# when FUZZ_BUILD names a fuzz build tree, each libFuzzer target for FUZZ_SECONDS (default 8;
# each target is one test, failed by a crash; logs and crashes under FUZZ_BUILD/fuzz/smoke/).
# INSPECTD_VALGRIND_BIN: the inspectd test_valgrind.py runs under memcheck (default: the first
# tree's; make passes one built without AVX-512, which valgrind cannot decode).
# Prints each binary's output, then the ten slowest tests with their seconds (so that additions keep
# within make check's budget), then one summary line `N passed, N failed`; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: tests/run.sh BUILD_DIR [BUILD_DIR…]" >&2; exit 2; }

passed=0
failed=0
failed_names=()
export CMOCKA_MESSAGE_OUTPUT=stdout
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

count_cmocka() { # $1 = output file, $2 = exit code, $3 = name
    local p f
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed or sanitizer abort
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -eq 0 ] || failed_names+=("$3")
}

out=$(mktemp)
times=$(mktemp)
trap 'rm -f "$out" "$times"' EXIT
# `timed NAME CMD...`: runs CMD, notes its wall-clock milliseconds under NAME; returns its exit code.
timed() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s%N)
    "$@"
    rc=$?
    echo "$((($(date +%s%N) - t0) / 1000000)) $name" >>"$times"
    return $rc
}
for build in "$@"; do
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        echo "=== $t"
        timed "$t" "$t" >"$out" 2>&1
        rc=$?
        cat "$out"
        count_cmocka "$out" "$rc" "$t"
    done
done

export INSPECTD_BIN="$PWD/$1/inspectd"
for s in tests/integration/*.sh tests/integration/*.py; do
    [ -f "$s" ] || continue
    echo "=== $s"
    case "$s" in
        *.py) timed "$s" /usr/bin/python3 "$s" >"$out" 2>&1 ;;
        *) timed "$s" bash "$s" >"$out" 2>&1 ;;
    esac
    rc=$?
    cat "$out"
    if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); else
        failed=$((failed + 1))
        failed_names+=("$s")
    fi
done

if [ -n "${FUZZ_BUILD:-}" ]; then
    echo "=== tests/fuzz/run.sh $FUZZ_BUILD ${FUZZ_SECONDS:-8}"
    FUZZ_OUT="$FUZZ_BUILD/fuzz/smoke" timed tests/fuzz/run.sh tests/fuzz/run.sh "$FUZZ_BUILD" \
        "${FUZZ_SECONDS:-8}" >"$out" 2>&1
    rc=$?
    cat "$out"
    counted=0
    while read -r line; do
        case "$line" in
            "fuzz "*": "*" execs, 0 crashes") passed=$((passed + 1)) counted=1 ;;
            "fuzz "*": "*" execs, "*" crashes")
                failed=$((failed + 1)) counted=1
                failed_names+=("${line%%:*}")
                ;;
        esac
    done <"$out"
    if [ "$rc" -ne 0 ] && [ "$counted" -eq 0 ]; then
        failed=$((failed + 1))
        failed_names+=("tests/fuzz/run.sh")
    fi
fi

echo "slowest tests (seconds):"
sort -rn "$times" | head -10 | while read -r ms name; do
    printf '%6d.%d  %s\n' $((ms / 1000)) $((ms % 1000 / 100)) "$name"
done
for n in "${failed_names[@]}"; do echo "FAILED: $n"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
