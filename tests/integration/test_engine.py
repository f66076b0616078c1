"""test_engine.py — the GEMM backend the commands run on: `inspectd --version` names it with its
version and instruction set; `inspectd train --gemm B --precision P` trains on the one asked for
and logs it (onednn, openblas, bf16 where the CPU has it); bf16 is refused with a clear error on a
CPU without AVX-512 BF16 (oneDNN's ISA capped with ONEDNN_MAX_CPU_ISA=AVX512_CORE) and with
openblas; a build without oneDNN (the valgrind build, INSPECTD_VALGRIND_BIN) falls back to
openblas and refuses --gemm onednn; the daemon's [engine] keys show in /api/v1/status and its
start-up log. Python standard library only."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import START_S, free_port, stop_daemon  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
NO_ONEDNN_BIN = os.environ.get("INSPECTD_VALGRIND_BIN")
GEMM_LINE = re.compile(r"^gemm: (onednn|openblas) (\d+\.\d+\.\d+) \(([\w.-]+)\)$", re.M)


def png(path, w, h, pixel):
    raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in pixel(x, y)) for y in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def version(binary, env=None):
    r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                       env=env)
    assert r.returncode == 0, r
    m = GEMM_LINE.search(r.stdout)
    assert m, r.stdout
    return m.groups()


def train(binary, img_dir, out, *extra, env=None):
    args = [binary, "train", "--images", img_dir, "--out", out, "--size", "16", "--dim", "16",
            "--depth", "1", "--heads", "2", "--patch", "4", "--batch", "8", "--locals", "2",
            "--epochs", "1", "--threads", "2", *extra]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def cpu_has_bf16():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return " avx512_bf16" in flags or " amx_bf16" in flags


def daemon_reports_engine(tmp):
    """[engine] gemm = openblas: the status says so, and one start-up line."""
    port = free_port()
    conf = os.path.join(tmp, "inspectd.conf")
    with open(conf, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:%d\n[store]\npath = %s\n[trainer]\nenabled = false\n"
                "[engine]\ngemm = openblas\nprecision = f32\n"
                "[camera.line1]\ndriver = synthetic\nfps = 5\n" % (port, os.path.join(tmp, "d.db")))
    log = open(os.path.join(tmp, "daemon.log"), "w+")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stderr=log)
    try:
        status, deadline = None, time.monotonic() + START_S
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/status" % port,
                                            timeout=2) as resp:
                    status = json.loads(resp.read())
                break
            except OSError:
                assert proc.poll() is None, "daemon exited"
                time.sleep(0.1)
        assert status, "no status"
        eng = status["engine"]
        assert eng["gemm"] == "openblas" and eng["precision"] == "f32", eng
        assert eng["isa"] and re.match(r"\d+\.\d+\.\d+$", eng["version"]), eng
        stop_daemon(proc)
        log.seek(0)
        text = log.read()
        lines = [ln for ln in text.splitlines() if "gemm openblas" in ln]
        assert len(lines) == 1 and "precision f32" in lines[0], text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # a CPU (or cap) without bf16: the daemon does not start, with the reason and 78
    with open(conf, "w") as f:
        f.write("[store]\npath = %s\n[engine]\nprecision = bf16\n"
                "[camera.line1]\ndriver = synthetic\n" % os.path.join(tmp, "d.db"))
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True, timeout=30,
                       env=env)
    assert r.returncode == 78 and "AVX-512 BF16" in r.stderr, r


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-engine-")
    try:
        img_dir = os.path.join(tmp, "images")
        os.mkdir(img_dir)
        for i in range(8):
            png(os.path.join(img_dir, "p%d.png" % i), 16, 16,
                lambda x, y: (40 * i % 256, 8 * x, 8 * y))
        backend, ver, isa = version(BIN)
        print("inspectd --version: gemm %s %s (%s)" % (backend, ver, isa))
        assert backend == "onednn", "the default build's auto backend is onednn"
        capped = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX512_CORE")
        if "avx512" in isa:
            assert version(BIN, capped)[2] == "avx512_core"

        out = os.path.join(tmp, "m.safetensors")
        runs = [("openblas", "f32"), ("onednn", "f32")]
        if cpu_has_bf16():
            runs.append(("onednn", "bf16"))
        for b, p in runs:
            r = train(BIN, img_dir, out, "--gemm", b, "--precision", p)
            assert r.returncode == 0, r.stderr
            assert re.search(r"gemm %s \d+\.\d+\.\d+ \(.+\), precision %s" % (b, p), r.stderr), \
                r.stderr
            print("trained on %s %s" % (b, p))

        r = train(BIN, img_dir, out, "--precision", "bf16", env=capped)
        assert r.returncode == 78, r
        assert "bf16 needs a CPU with AVX-512 BF16 or AMX; oneDNN runs avx512_core" in r.stderr, \
            r.stderr
        r = train(BIN, img_dir, out, "--gemm", "openblas", "--precision", "bf16")
        assert r.returncode == 78 and "needs the onednn gemm backend" in r.stderr, r.stderr
        r = train(BIN, img_dir, out, "--gemm", "mkl")
        assert r.returncode == 64 and "auto, onednn or openblas" in r.stderr, r.stderr

        if NO_ONEDNN_BIN:
            backend, ver, isa = version(NO_ONEDNN_BIN)
            assert backend == "openblas", "a build without oneDNN falls back to openblas"
            r = train(NO_ONEDNN_BIN, img_dir, out, "--gemm", "onednn")
            assert r.returncode == 78 and "built without oneDNN" in r.stderr, r.stderr
            r = train(NO_ONEDNN_BIN, img_dir, out, "--max-steps", "1")
            assert r.returncode == 0 and "gemm openblas" in r.stderr, r.stderr
            print("without oneDNN: gemm openblas %s (%s)" % (ver, isa))

        daemon_reports_engine(tmp)
        print("ok")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
