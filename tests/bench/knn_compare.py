"""Exact k-NN search: inspectd (build/bench/bench_knn) against FAISS IndexFlatL2 (Debian
python3-faiss) on the same data in the same run: banks of 10k and 100k rows x 192 dims, queries at
batch 1 and 64, k = 1 and 5. Each case alternates the two sides for several rounds and quotes
medians; neighbours must be the same rows (or rows at the same distance, which either side may
order differently). Both sides use the machine's 2 cores.

    /usr/bin/python3 tests/bench/knn_compare.py [BUILD_DIR] [--rounds N]
Ends with `knn_time_ratio_vs_faiss_q64: X` (inspectd / FAISS, bank 100k, batch 64, k 5)."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import faiss

DIM = 192


def faiss_time(index, q, k, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        _, idx = index.search(q, k)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), idx


def same_neighbours(bank, q, ours, theirs):
    """Rows that differ must be at the same distance (ties or float rounding)."""
    bad = 0
    for i in range(q.shape[0]):
        if np.array_equal(ours[i], theirs[i]):
            continue
        d_ours = np.sort(((bank[ours[i]] - q[i]) ** 2).sum(1))
        d_theirs = np.sort(((bank[theirs[i]] - q[i]) ** 2).sum(1))
        if not np.allclose(d_ours, d_theirs, rtol=1e-4, atol=1e-4):
            bad += 1
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    exe = os.path.join(args.build, "bench", "bench_knn")
    faiss.omp_set_num_threads(2)
    env_note = ("OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE "
                + ("set" if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE")
                   else "unset") + " for both sides")
    print(f"exact k-NN, L2, dim {DIM}, 2 threads each side; {env_note}")
    print(f"{'bank':>7} {'batch':>5} {'k':>2} {'inspectd ms':>12} {'faiss ms':>9} {'ratio':>6} {'mismatch':>8}")
    rng = np.random.default_rng(0)
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (10_000, 100_000):
            bank = rng.standard_normal((n, DIM), dtype=np.float32)
            bank_path = os.path.join(tmp, "bank.f32")
            bank.tofile(bank_path)
            index = faiss.IndexFlatL2(DIM)
            index.add(bank)
            for nq in (1, 64):
                q = rng.standard_normal((nq, DIM), dtype=np.float32)
                q_path, idx_path = os.path.join(tmp, "q.f32"), os.path.join(tmp, "idx.i32")
                q.tofile(q_path)
                reps = 200 if nq == 1 else 20
                for k in (1, 5):
                    ours_t, theirs_t = [], []
                    for _ in range(args.rounds):
                        out = subprocess.run([exe, bank_path, str(n), q_path, str(nq), str(DIM),
                                              str(k), str(reps), "2", idx_path],
                                             check=True, capture_output=True, text=True)
                        ours_t.append(float(out.stdout.strip()))
                        t, theirs = faiss_time(index, q, k, reps)
                        theirs_t.append(t)
                    ours = np.fromfile(idx_path, dtype=np.int32).reshape(nq, k)
                    bad = same_neighbours(bank, q, ours, theirs)
                    o, f = float(np.median(ours_t)), float(np.median(theirs_t))
                    ratios[(n, nq, k)] = o / f
                    print(f"{n:>7} {nq:>5} {k:>2} {o * 1e3:>12.3f} {f * 1e3:>9.3f} {o / f:>6.2f} {bad:>8}",
                          flush=True)
                    if bad:
                        print(f"error: {bad} queries with different neighbours", file=sys.stderr)
                        sys.exit(1)
    print(f"knn_time_ratio_vs_faiss_q1: {ratios[(100_000, 1, 5)]:.2f}")
    print(f"knn_time_ratio_vs_faiss_q64: {ratios[(100_000, 64, 5)]:.2f}")


if __name__ == "__main__":
    main()
