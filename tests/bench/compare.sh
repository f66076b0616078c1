#!/usr/bin/env bash
# compare.sh — runs the C benchmark and its PyTorch peer alternately for a few rounds in one go and
# prints the ratio of their medians.
#   compare.sh train ROUNDS   → train_speedup_vs_torch_bf16: X, then train_speedup_vs_torch: X
#   compare.sh embed ROUNDS   → embed_speedup_vs_torch_b32: X, then embed_speedup_vs_torch_b1: X
# train: inspectd in float32 against PyTorch in float32, and inspectd with --precision bf16 against
# PyTorch under torch.autocast("cpu", dtype=torch.bfloat16) (on a CPU without bf16, inspectd's
# float32 against that peer). Both print the GEMM backend and instruction set inspectd ran on and
# OpenBLAS's core. OPENBLAS_CORETYPE, when set, applies to both sides.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=$1
rounds=${2:-3}
build=${BUILD:-build}
log=$(mktemp)
trap 'rm -f "$log" "$log.bf16"' EXIT
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-<unset>} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-<unset>}"
for r in $(seq "$rounds"); do
    echo "--- round $r"
    if [ "$mode" = train ]; then
        "$build/bench/bench_train" --steps 5 | tee -a "$log" | grep -E '^(c_|gemm:|openblas:)'
        /usr/bin/python3 tests/bench/torch_dino_step.py train --steps 5 | tee -a "$log" | grep -E '^torch_'
        if "$build/bench/bench_train" --steps 5 --precision bf16 >"$log.bf16" 2>&1; then
            sed 's/^c_/c_bf16_/' "$log.bf16" | tee -a "$log" | grep -E '^(c_bf16_|gemm:)'
        else
            echo "inspectd without bf16 here: $(tail -1 "$log.bf16")"
            grep '^c_images_per_s:' "$log" | tail -1 | sed 's/^c_/c_bf16_/' >>"$log"
        fi
        /usr/bin/python3 tests/bench/torch_dino_step.py train --steps 3 --bf16 | tee -a "$log" | grep -E '^torch_'
    else
        "$build/bench/bench_embed" | tee -a "$log"
        /usr/bin/python3 tests/bench/torch_dino_step.py embed | tee -a "$log" | grep -E '^torch_'
    fi
done
median() { grep "^$1:" "$log" | awk '{print $2}' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
grep -E '^(gemm|openblas):' "$log" | sort -u
if [ "$mode" = train ]; then
    c=$(median c_images_per_s) t=$(median torch_images_per_s)
    cb=$(median c_bf16_images_per_s) tb=$(median torch_bf16_images_per_s)
    echo "median c_images_per_s: $c  torch_images_per_s: $t"
    echo "median c_bf16_images_per_s: $cb  torch_bf16_images_per_s: $tb"
    echo "median step matrix products: $(median c_step_gflop_per_s) GFLOP/s (bf16: $(median c_bf16_step_gflop_per_s));" \
        "1024^3 sgemm on one thread: $(median c_gemm_1024_gflop_per_s_1thread) GFLOP/s (2 workers)"
    echo "train_speedup_vs_torch_bf16: $(ratio "$cb" "$tb")"
    echo "train_speedup_vs_torch: $(ratio "$c" "$t")"
else
    c32=$(median c_embed_b32_images_per_s) t32=$(median torch_embed_b32_images_per_s)
    c1=$(median c_embed_b1_images_per_s) t1=$(median torch_embed_b1_images_per_s)
    echo "median b32: c $c32 torch $t32  b1: c $c1 torch $t1"
    echo "embed_speedup_vs_torch_b32: $(ratio "$c32" "$t32")"
    echo "embed_speedup_vs_torch_b1: $(ratio "$c1" "$t1")"
fi
