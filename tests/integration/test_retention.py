"""test_retention.py — retention and full disks on the real daemon.

1. [store] max_size_mb = 2 with a fast synthetic camera: the oldest frames are deleted, the
   database stays within its limit, the newest frames are there, /readyz stays 200.
2. A small model is trained on those frames (`inspectd train --register`), every stored frame gets
   an alert awaiting review and the daemon restarts with max_size_mb = 1: only protected frames
   are left, so new frames are stored without their images — /readyz answers 503 with the
   reason, the frames list says "image": null with the reason, the image answers 404 — and no
   protected frame is deleted; the scorer still scores them (from the images the writer hands it
   in memory). An operator's review (false positives) makes room: images come back, /readyz is
   200 again.
3. A small tmpfs (8 MiB) as the database's filesystem, no limits configured: retention still
   keeps room for its reserve file free; another program takes every byte the disk frees for 3 s:
   writes fail, the reserve file is given up, the writer holds its batch and retries while the
   queue drops frames (counted), and stores again once the program is gone, none failed; started
   on a disk filled to the last byte, the daemon gives up its reserve file to open the database,
   makes room and stores. Then min_free_mb = 4 on the same tmpfs keeps 4 MiB free. Skipped with a message when
   mounting is not permitted.
After each run: exit 0 on SIGTERM, PRAGMA integrity_check ok, the frames left are a contiguous run
of ids ending with the last one the daemon reported committed. Python standard library only."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
MIB = 1 << 20


class Daemon:
    def __init__(self, tmp, name, db, store_keys, width=320, height=240):
        self.port = free_port()
        self.conf = os.path.join(tmp, name + ".conf")
        with open(self.conf, "w") as f:
            f.write("[http]\nlisten = 127.0.0.1:%d\n[store]\npath = %s\nbatch_ms = 50\n%s\n"
                    "[trainer]\nenabled = false\n"
                    "[camera.line]\ndriver = synthetic\nfps = 0\nwidth = %d\nheight = %d\n"
                    % (self.port, db, store_keys, width, height))
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "run", "--config", self.conf], stdout=self.log,
                                     stderr=self.log)
        self.wait(lambda: self.get("/healthz")[0] == 200, 60, "the daemon to answer")

    def get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path):
        status, body = self.get(path)
        return status, json.loads(body)

    def status(self):
        return self.json("/api/v1/status")[1]

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, "inspectd exited with %s" % self.proc.returncode
            try:
                if pred():
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError("timed out waiting for " + what)

    def stop(self):
        """SIGTERM, exit 0; returns the last frame id the daemon reported committed."""
        last = self.status()["storage"]["last_frame_id"]
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, "exit code %s" % self.proc.returncode
        return last

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def text(self):
        with open(self.log_path) as f:
            return f.read()


def check_db(db, last):
    """integrity ok; from the oldest unprotected frame on, the frames are a contiguous run of ids
    reaching the last one reported committed (retention deletes the oldest first, protected
    frames before it stay)."""
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lo = con.execute("SELECT min(id) FROM frames WHERE id NOT IN (SELECT frame_id FROM alerts "
                     "WHERE state <> 'false_positive')").fetchone()[0]
    hi, n = con.execute("SELECT max(id), count(*) FROM frames WHERE id >= ?", (lo,)).fetchone()
    assert hi >= last and n == hi - lo + 1, (lo, hi, n, last)
    con.close()
    return lo, hi, n


def db_bytes(db):
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


def size_limit(tmp):
    db = os.path.join(tmp, "limit.db")
    d = Daemon(tmp, "limit", db, "max_size_mb = 2\nmin_free_mb = 0")
    try:
        d.wait(lambda: d.status()["storage"]["frames_deleted"] >= 100, 60,
               "retention to delete 100 frames")
        biggest = 0
        for _ in range(20):  # the limit holds while frames keep coming
            biggest = max(biggest, db_bytes(db))
            time.sleep(0.1)
        st = d.status()
        assert st["storage"]["max_size_bytes"] == 2 * MIB and st["storage"]["images_stored"], st
        assert st["database"]["size_bytes"] <= 2 * MIB and biggest <= 2 * MIB, (st, biggest)
        assert d.get("/readyz")[0] == 200
        assert "inspectd_retention_frames_deleted_total" in d.get("/metrics")[1].decode()
        last = d.stop()
    finally:
        d.kill()
    lo, hi, n = check_db(db, last)
    assert lo > 1, "the oldest frames were deleted"
    print("max_size_mb = 2: %d frames deleted, %d kept (ids %d..%d), at most %d bytes on disk"
          % (st["storage"]["frames_deleted"], n, lo, hi, biggest))
    return db


def only_protected(tmp, db):
    r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "m.safetensors"),
                        "--register", "--size", "32", "--patch", "8", "--dim", "32", "--depth", "2",
                        "--heads", "2", "--batch", "16", "--locals", "2", "--epochs", "1",
                        "--threads", "2", "--max-images", "64"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(db)
    con.execute("INSERT INTO alerts (frame_id, model_id, camera_id, created_at, score, score_norm,"
                " threshold) SELECT id, (SELECT id FROM models WHERE status = 'active'), "
                "camera_id, 0, 2, 2, 1 FROM frames")
    con.commit()
    protected, newest = con.execute("SELECT count(*), max(frame_id) FROM alerts").fetchone()
    con.close()
    d = Daemon(tmp, "protected", db, "max_size_mb = 1\nmin_free_mb = 0")
    try:
        d.wait(lambda: d.get("/readyz")[0] == 503 and d.status()["storage"]["frames_without_image"]
               >= 20, 30, "frames stored without their images")
        code, ready = d.json("/readyz")
        assert "max_size_mb = 1" in ready["reason"] and "without their images" in ready["reason"], \
            ready
        st = d.status()["storage"]
        assert st["images_stored"] is False and "max_size_mb = 1" in st["reason"], st
        without = st["frames_without_image"]
        frames = d.json("/api/v1/frames?limit=5")[1]["frames"]
        assert frames[0]["image"] is None and "storage full" in frames[0]["image_missing"], frames
        assert frames[0]["bytes"] == 0, frames[0]
        code, body = d.get("/api/v1/frames/%d/image" % frames[0]["id"])
        assert code == 404 and "without its image" in json.loads(body)["error"], body
        assert "inspectd_images_stored 0" in d.get("/metrics")[1].decode()
        # the scorer scores frames stored without their images, from memory
        live = sqlite3.connect(db, timeout=10)
        d.wait(lambda: live.execute("SELECT count(*) FROM results r JOIN frames f ON f.id = "
                                    "r.frame_id WHERE f.image_missing IS NOT NULL").fetchone()[0]
               >= 10, 30, "results for frames without their images")
        live.close()
        assert d.status()["scoring"]["frames_failed"] == 0
        live = sqlite3.connect(db, timeout=10)
        # (the scorer adds alerts of its own for the new frames it flags)
        assert live.execute("SELECT count(*) FROM alerts WHERE frame_id <= ?",
                            (newest,)).fetchone()[0] == protected
        # an operator reviews all but the 10 newest as false positives: room again, images back
        live.execute("UPDATE alerts SET state = 'false_positive' WHERE frame_id IN "
                     "(SELECT frame_id FROM alerts ORDER BY frame_id LIMIT ?)", (protected - 10,))
        live.commit()
        live.close()
        d.wait(lambda: d.get("/readyz")[0] == 200, 30, "images to come back")
        st = d.status()["storage"]
        assert st["images_stored"] is True and st["frames_deleted"] > 0, st
        latest = lambda: d.json("/api/v1/frames?limit=1")[1]["frames"][0]
        d.wait(lambda: latest()["image"], 60, "a new frame with its image")
        assert d.get(latest()["image"])[0] == 200
        assert "room again" in d.text()
        last = d.stop()
    finally:
        d.kill()
    check_db(db, last)
    con = sqlite3.connect(db)
    kept = con.execute("SELECT count(*) FROM alerts WHERE state = 'new' AND frame_id <= ?",
                       (newest,)).fetchone()[0]
    con.close()
    assert kept == 10, (kept, protected)
    print("only protected frames: images off with the reason, at least %d frames stored without "
          "them, %d flagged frames kept; back on after a review" % (without, kept))


def mount_tmpfs(path, size):
    os.makedirs(path)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


def fill_disk(path):
    """Another program fills the filesystem to its last byte. Returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        block = b"\xa5" * 65536
        while True:
            try:
                written += f.write(block)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last partial blocks
            try:
                while True:
                    written += f.write(block[:size])
            except OSError:
                pass
    return written


def hog_disk(path, seconds):
    """Another program that takes every byte the filesystem frees for `seconds`, then removes its
    file."""
    deadline = time.time() + seconds
    with open(path, "wb", buffering=0) as f:
        while time.time() < deadline:
            try:
                f.write(b"\x5a" * 4096)
            except OSError:
                time.sleep(0.005)
    os.unlink(path)


def lowest_free(d, seconds):
    lowest = None
    for _ in range(int(seconds * 10)):
        free = d.status()["storage"]["filesystem_free_bytes"]
        lowest = free if lowest is None else min(lowest, free)
        time.sleep(0.1)
    return lowest


def full_disk(tmp):
    mnt = os.path.join(tmp, "small")
    ok, why = mount_tmpfs(mnt, "8m")
    if not ok:
        print("skipped the full-disk part: cannot mount a tmpfs (%s)" % why)
        return
    try:
        # no limits configured: retention still never fills the disk itself
        db = os.path.join(mnt, "full.db")
        d = Daemon(tmp, "full", db, "max_size_mb = 0\nmin_free_mb = 0")
        try:
            d.wait(lambda: d.status()["storage"]["frames_deleted"] >= 100, 60,
                   "retention to keep room on the tmpfs")
            lowest = lowest_free(d, 2)
            st = d.status()["storage"]
            assert st["full_retries"] == 0 and lowest > 0, (st, lowest)
            assert os.path.exists(db + ".reserve"), os.listdir(mnt)
            # another program takes every byte the disk frees for 3 s, then removes its file:
            # writes fail meanwhile (the reserve is given up, room is made, eaten again), the
            # writer holds its batch and retries, the queue drops frames; then it stores again
            filler = threading.Thread(target=hog_disk, args=(os.path.join(mnt, "hog"), 3.0))
            filler.start()
            d.wait(lambda: d.status()["storage"]["full_retries"] >= 1, 30, "a full disk")
            filler.join()
            first = d.status()["storage"]["last_frame_id"]
            d.wait(lambda: d.status()["storage"]["last_frame_id"] > first + 200, 30,
                   "frames stored once the disk has room again")
            during = d.status()
            assert during["cameras"][0]["frames_failed"] == 0, during
            text = d.text()
            assert "making room and retrying" in text and "gave up the reserve" in text, text
            d.wait(lambda: os.path.exists(db + ".reserve"), 30, "the reserve file to be back")
            last = d.stop()
        finally:
            d.kill()
        check_db(db, last)
        # started on a disk full to the last byte: the database cannot even be opened until the
        # reserve file is given up; then room is made and frames are stored again
        filled = fill_disk(os.path.join(mnt, "filler"))
        assert os.statvfs(mnt).f_bavail == 0
        d = Daemon(tmp, "full2", db, "max_size_mb = 0\nmin_free_mb = 0")
        try:
            d.wait(lambda: d.status()["storage"]["last_frame_id"] > last + 200, 30,
                   "frames stored on the full disk")
            st = d.status()
            assert st["cameras"][0]["frames_failed"] == 0, st
            assert "gave up the reserve" in d.text()
            last = d.stop()
        finally:
            d.kill()
        lo, hi, n = check_db(db, last)
        print("8 MiB tmpfs, no limits: lowest free space %.2f MiB; another program taking every "
              "free byte for 3 s: %d full retries, %d frames dropped meanwhile, 0 failed; "
              "started on the disk filled to the last byte (%d bytes): %d frames deleted, "
              "%d kept (ids %d..%d), 0 failed" %
              (lowest / MIB, during["storage"]["full_retries"],
               during["cameras"][0]["frames_dropped"], filled, st["storage"]["frames_deleted"],
               n, lo, hi))
        for name in os.listdir(mnt):
            os.unlink(os.path.join(mnt, name))

        db = os.path.join(mnt, "floor.db")
        d = Daemon(tmp, "floor", db, "max_size_mb = 0\nmin_free_mb = 4")
        try:
            d.wait(lambda: d.status()["storage"]["frames_deleted"] >= 100, 60,
                   "retention to keep 4 MiB free")
            lowest = lowest_free(d, 2)
            st = d.status()["storage"]
            assert st["full_retries"] == 0 and st["images_stored"], st
            assert lowest >= 4 * MIB, lowest
            last = d.stop()
        finally:
            d.kill()
        check_db(db, last)
        print("min_free_mb = 4 on it: lowest free space seen %.2f MiB, never full" % (lowest / MIB))
    finally:
        subprocess.run(["umount", "-l", mnt])


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-retention-")
    try:
        db = size_limit(tmp)
        only_protected(tmp, db)
        full_disk(tmp)
        print("ok")
    except BaseException:
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log"):
                with open(os.path.join(tmp, name)) as f:
                    sys.stderr.write("--- %s\n%s" % (name, f.read()[-3000:]))
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
