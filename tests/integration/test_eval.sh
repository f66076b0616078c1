#!/usr/bin/env bash
# test_eval.sh — `inspectd eval` on a small two-class subset of the real Fashion-MNIST: finishes in
# seconds, prints the per-class table beside the pixel and untrained baselines, beats chance; ends
# with mean_auroc for each --method;
# --runs continues each run from the last; bad arguments exit 64 with a message.
set -euo pipefail
bin=${INSPECTD_BIN:?INSPECTD_BIN must point at inspectd}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$bin" eval --dataset fashion-mnist --classes 0,1 --minutes 0.05 --epochs 2 --train-limit 256 \
    --test-limit 400 --dim 32 --depth 1 --heads 2 --batch 32 --locals 2 >"$out" 2>/dev/null
cat "$out"
grep -q 'pixels  *untrained  *trained' "$out"
[ "$(grep -cE '^[01] ' "$out")" -eq 2 ]
auroc=$(sed -n 's/^mean_auroc: //p' "$out")
pixels=$(sed -n 's/^mean_auroc_pixels: //p' "$out")
echo "mean_auroc=$auroc pixels=$pixels"
awk -v a="$auroc" -v p="$pixels" 'BEGIN { exit !(a > 55 && p > 55 && a <= 100) }'

# the measurement interface holds for every method: the table, then `mean_auroc: X` last
for method in dino byol barlow simclr; do
    "$bin" eval --dataset fashion-mnist --method "$method" --classes 0 --minutes 0.05 --epochs 1 \
        --train-limit 128 --test-limit 200 --dim 32 --depth 1 --heads 2 --batch 32 --locals 2 \
        >"$out" 2>/dev/null
    grep -q "^one-class Fashion-MNIST ($method)" "$out"
    tail -1 "$out" | grep -qE '^mean_auroc: [0-9]+\.[0-9]+$'
    echo "$method: $(tail -1 "$out")"
done

# --runs: each run after the first is a warm start from the last (train_warm_start, as the
# daemon's runs continue its active model): the step count goes on, each run has its own epochs
"$bin" eval --dataset fashion-mnist --classes 0 --runs 2 --epochs 1 --train-limit 256 \
    --test-limit 200 --dim 32 --depth 1 --heads 2 --batch 32 --locals 2 >"$out" 2>/dev/null
cat "$out"
grep -q '^class 0 run 1: 8 steps' "$out"
grep -q '^class 0 run 2: 16 steps' "$out"

if "$bin" eval --dataset mnist >/dev/null 2>&1; then echo "bad dataset accepted"; exit 1; fi
set +e
"$bin" eval --dataset fashion-mnist --classes 12 >/dev/null 2>"$out"
rc=$?
set -e
[ "$rc" -eq 64 ] && grep -q "bad value '12' for --classes" "$out"

# --save makes its folder, and says at once when it cannot (before any minute of training);
# --load scores the saved teacher
dir=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$dir"' EXIT
"$bin" eval --dataset fashion-mnist --classes 0 --minutes 0.05 --epochs 1 --train-limit 128 \
    --test-limit 200 --dim 32 --depth 1 --heads 2 --batch 32 --locals 2 --save "$dir/new" \
    >/dev/null 2>&1
[ -s "$dir/new/class-0.safetensors" ]
"$bin" eval --dataset fashion-mnist --classes 0 --train-limit 128 --test-limit 200 --dim 32 \
    --depth 1 --heads 2 --load "$dir/new" >"$out" 2>/dev/null
tail -1 "$out" | grep -qE '^mean_auroc: [0-9]+\.[0-9]+$'
touch "$dir/file"
set +e
"$bin" eval --dataset fashion-mnist --classes 0 --save "$dir/file/sub" >/dev/null 2>"$out"
rc=$?
set -e
[ "$rc" -eq 64 ] && grep -q -- "--save $dir/file/sub: Not a directory" "$out"
echo ok
