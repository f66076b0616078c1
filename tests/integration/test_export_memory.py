"""test_export_memory.py — an export's memory does not grow with its size: 10 000 flagged frames
(copies of real frames the synthetic camera stored, made by lib/flagged.py) are exported by
`inspectd export` and by the daemon over HTTP, and the peak RSS of each stays within a few MiB of
an export of 1 000 (holding the images would add tens of MiB). The archives are read as streams
and must be complete. Then a daemon stopping with SIGTERM during an export ends the stream and
exits 0 promptly. Prints the figures (max RSS in KiB). Python standard library only."""
import http.client
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import flagged  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
N_BIG, N_SMALL = 10000, 1000
START_US = 1_800_000_000_000_000
MAX_GROWTH_KB = 8 * 1024  # what 9 000 more frames may add to the peak

CONFIG = """[http]
listen = 127.0.0.1:0
[store]
path = {db}
[trainer]
enabled = false
[camera.line]
driver = synthetic
fps = 0
frames = {frames}
width = 128
height = 96
"""


def start(tmp, name, db, frames):
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(db=db, frames=frames))
    log_path = os.path.join(tmp, name + ".log")
    log = open(log_path, "w")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    deadline = time.time() + 30
    while True:
        with open(log_path) as f:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, int(m.group(1)), log_path
        assert time.time() < deadline and proc.poll() is None, open(log_path).read()
        time.sleep(0.1)


def stop(proc, timeout=30):
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=timeout)
    assert rc == 0, rc


def count_members(stream):
    """(images, heatmaps, manifest rows) of a tar read as a stream."""
    images = heatmaps = rows = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for m in tar:
            if m.name.startswith("images/") and m.isfile():
                images += 1
            elif m.name.startswith("heatmaps/") and m.isfile():
                heatmaps += 1
            elif m.name == "manifest.jsonl":
                rows = sum(1 for _ in tar.extractfile(m))
    return images, heatmaps, rows


def cli_export(db, until=None):
    """Exports to a pipe; returns (counts, max RSS of the process in KiB)."""
    args = [BIN, "export", "--db", db, "--out", "-"]
    if until is not None:
        args += ["--until", str(until)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    counts = count_members(proc.stdout)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err
    return counts, usage.ru_maxrss


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(key)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-export-mem-")
    db = os.path.join(tmp, "line.db")
    proc, _, _ = start(tmp, "frames", db, 16)
    deadline = time.time() + 30
    while sqlite3.connect(db).execute("SELECT COUNT(*) FROM frames").fetchone()[0] < 16:
        assert time.time() < deadline
        time.sleep(0.1)
    stop(proc)
    t0 = time.time()
    flagged.populate(db, N_BIG, start_us=START_US)
    print("populated %d flagged frames in %.1f s" % (N_BIG, time.time() - t0))

    # the command line: 1 000 then 10 000 frames
    small, rss_small = cli_export(db, until=START_US + N_SMALL * 1000)
    assert small == (N_SMALL, N_SMALL, N_SMALL), small
    t0 = time.time()
    big, rss_big = cli_export(db)
    assert big == (N_BIG, N_BIG, N_BIG), big
    print("export_cli_max_rss_kb: %d frames %d, %d frames %d (%.1f s)" %
          (N_SMALL, rss_small, N_BIG, rss_big, time.time() - t0))
    assert rss_big - rss_small < MAX_GROWTH_KB, (rss_small, rss_big)

    # the daemon: its peak while serving 10 000 frames against its size before
    proc, port, log_path = start(tmp, "serve", db, 1)
    try:
        url = "http://127.0.0.1:%d/api/v1/export" % port
        with urllib.request.urlopen(url + "?until=%d" % (START_US + N_SMALL * 1000)) as r:
            assert count_members(r) == (N_SMALL, N_SMALL, N_SMALL)
        rss_before = vm(proc.pid, "VmRSS")
        t0 = time.time()
        with urllib.request.urlopen(url, timeout=300) as r:
            assert count_members(r) == (N_BIG, N_BIG, N_BIG)
        hwm = vm(proc.pid, "VmHWM")
        print("export_daemon_kb: VmRSS %d before, VmHWM %d after %d frames (%.1f s)" %
              (rss_before, hwm, N_BIG, time.time() - t0))
        assert hwm - rss_before < MAX_GROWTH_KB, (rss_before, hwm)

        # SIGTERM during an export: the stream is cut and the daemon exits 0 at once
        r = urllib.request.urlopen(url, timeout=30)
        assert len(r.read(1 << 20)) == 1 << 20
        t0 = time.time()
        stop(proc, timeout=10)
        print("stopped during an export in %.2f s" % (time.time() - t0))
        try:
            while r.read(1 << 16):
                pass
            raise AssertionError("the export stream ended as if complete")
        except (OSError, http.client.IncompleteRead):
            pass
        with open(log_path) as f:
            assert "export ended early" in f.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print("ok")


if __name__ == "__main__":
    main()
