"""test_export.py — the export of flagged frames against the real daemon: a small model is trained
on frames of the synthetic camera, then a running daemon scores a line with defects and a folder
camera (of the same recipe, so the line's model scores it) receiving PNG noise (flagged, and stored as PNG); alerts are reviewed (POST
/api/v1/alerts/{id}/review with the bearer token of the token file); GET /api/v1/export is
downloaded with and without filters and checked against sqlite3 queries of the same file: the tar
lists exactly the selected frames in the folders of their states, images are the stored bytes,
heatmaps are the JPEGs /api/v1/frames/{id}/heatmap serves, manifest.jsonl and manifest.csv match
the database row by row, newest first. Bad filters are 400 with a JSON error, an unknown camera
404. `inspectd export` writes the same archive (to a file and to stdout) with exit codes 64 and 1
for bad values and an unknown camera or database. Python standard library only."""
import calendar
import csv
import io
import json
import os
import random
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:0
token_file = {token}
[store]
path = {db}
[trainer]
enabled = false
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = 64
height = 64
defect_rate = {rate}
seed = {seed}
"""
SIDE = """[camera.side]
driver = folder
recipe = line
path = {dir}
mode = watch
"""

TRAIN = tiny_train()

FOLDERS = {"false_positive": "good", "defect": "defect", "new": "unreviewed"}
COLUMNS = ["frame_id", "alert_id", "camera", "captured_at", "flagged_at", "score", "score_norm",
           "threshold", "state", "verdict", "note", "model_version", "image", "heatmap"]
NOTES = ['looks fine, "really"', "scratch\nacross the label", "señal ✓", None]


def noise_png(w, h, seed):
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + bytes(rng.randrange(256) for _ in range(3 * w)) for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Daemon:
    """`inspectd run` on a port the kernel picks (listen = 127.0.0.1:0), read from its log."""

    def __init__(self, tmp, name, config):
        conf = os.path.join(tmp, name + ".conf")
        with open(conf, "w") as f:
            f.write(config)
        self.log_path = os.path.join(tmp, name + ".log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=self.log,
                                     stderr=self.log)
        deadline = time.time() + 30
        self.port = None
        while self.port is None:
            assert time.time() < deadline and self.proc.poll() is None, self.read_log()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.read_log())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.1)

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get_json(self, path):
        with urllib.request.urlopen(self.url(path), timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.log.close()
        assert rc == 0, "daemon exit %d\n%s" % (rc, self.read_log())


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def us_of(text):
    """Unix microseconds of the manifest's RFC 3339 UTC times."""
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return calendar.timegm(dt.timetuple()) * 1000000 + dt.microsecond


def rfc3339(us):
    return datetime.fromtimestamp(us // 1000000, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (us % 1000000)


def expected(db, state=None, camera=None, since=None, until=None):
    """The database's view of an export: its rows newest first, with image bytes."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT a.id, a.frame_id, c.name, f.captured_at, a.created_at, a.score, a.score_norm, "
        "a.threshold, a.state, a.note, m.version, f.format, f.image, "
        "EXISTS (SELECT 1 FROM heatmaps h WHERE h.frame_id = f.id) "
        "FROM alerts a JOIN frames f ON f.id = a.frame_id JOIN cameras c ON c.id = a.camera_id "
        "JOIN models m ON m.id = a.model_id "
        "WHERE (?1 IS NULL OR a.state = ?1) AND (?2 IS NULL OR c.name = ?2) "
        "AND (?3 IS NULL OR a.created_at >= ?3) AND (?4 IS NULL OR a.created_at < ?4) "
        "ORDER BY a.id DESC", (state, camera, since, until)).fetchall()
    con.close()
    return rows


def read_tar(stream):
    """Members in order: [(name, is_dir, bytes)], read as a stream (mode r|)."""
    out = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for m in tar:
            data = tar.extractfile(m).read() if m.isfile() else None
            out.append((m.name.rstrip("/"), m.isdir(), data))
    return out


def check_archive(members, rows, heatmap_of):
    """The archive holds exactly the rows' frames, as the database has them."""
    files = {name: data for name, is_dir, data in members if not is_dir}
    dirs = [name for name, is_dir, _ in members if is_dir]
    order = [name for name, _, _ in members]
    assert order[:2] == ["images", "heatmaps"], order[:4]
    assert order[-2:] == ["manifest.jsonl", "manifest.csv"], order[-2:]
    want = {"manifest.jsonl", "manifest.csv"}
    for (aid, fid, cam, cap, flagged, score, norm, thr, state, note, version, fmt, image,
         has_map) in rows:
        ext = "png" if fmt == "png" else "jpg"
        path = "images/%s/%d.%s" % (FOLDERS[state], fid, ext)
        want.add(path)
        assert files.get(path) == image, "%s is not the stored image" % path
        folder = "images/" + FOLDERS[state]
        assert folder in dirs and order.index(folder) < order.index(path), (folder, path)
        if has_map:
            want.add("heatmaps/%d.jpg" % fid)
            assert files["heatmaps/%d.jpg" % fid] == heatmap_of(fid), fid
    assert set(files) == want, sorted(set(files) ^ want)[:10]

    lines = files["manifest.jsonl"].decode().splitlines()
    manifest = [json.loads(l) for l in lines]
    assert len(manifest) == len(rows), (len(manifest), len(rows))
    for m, (aid, fid, cam, cap, flagged, score, norm, thr, state, note, version, fmt, image,
            has_map) in zip(manifest, rows):
        assert list(m) == COLUMNS, list(m)
        assert (m["frame_id"], m["alert_id"], m["camera"], m["state"], m["note"],
                m["model_version"]) == (fid, aid, cam, state, note, version), (m, fid)
        assert (m["score"], m["score_norm"], m["threshold"]) == (score, norm, thr), m
        assert us_of(m["captured_at"]) == cap and us_of(m["flagged_at"]) == flagged, m
        assert m["verdict"] == FOLDERS[state], m
        assert m["image"] == "images/%s/%d.%s" % (FOLDERS[state], fid,
                                                 "png" if fmt == "png" else "jpg"), m
        assert m["heatmap"] == ("heatmaps/%d.jpg" % fid if has_map else None), m

    table = list(csv.reader(io.StringIO(files["manifest.csv"].decode(), newline="")))
    assert table[0] == COLUMNS, table[0]
    assert len(table) == len(manifest) + 1
    for row, m in zip(table[1:], manifest):
        for col, text in zip(COLUMNS, row):
            v = m[col]
            if v is None:
                assert text == "", (col, text)
            elif isinstance(v, float):
                assert float(text) == v, (col, text, v)
            else:
                assert text == str(v), (col, text, v)
    return files


def download(d, query):
    with urllib.request.urlopen(d.url("/api/v1/export" + query), timeout=120) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/x-tar", r.headers
        disp = r.headers["Content-Disposition"]
        assert re.fullmatch(r'attachment; filename="inspectd-export-\d{8}T\d{6}Z\.tar"', disp), disp
        return read_tar(r)


def error_of(d, query):
    try:
        urllib.request.urlopen(d.url("/api/v1/export" + query), timeout=10)
    except urllib.error.HTTPError as e:
        assert e.headers["Content-Type"] == "application/json"
        return e.code, json.loads(e.read())["error"]
    raise AssertionError("no error for " + query)


def cli(*args, stdout=subprocess.PIPE):
    return subprocess.run([BIN, "export", *args], stdout=stdout, stderr=subprocess.PIPE,
                          timeout=120)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-export-")
    db = os.path.join(tmp, "line.db")
    token_file = os.path.join(tmp, "token")

    # 1. frames to learn from, a model trained and registered on them
    d = Daemon(tmp, "learn", CONFIG.format(db=db, token=token_file, fps=0, frames=200, rate=0.01, seed=1))
    try:
        wait_for(lambda: d.get_json("/api/v1/status")["database"]["frames_stored"] >= 200, 60,
                 "200 frames")
    finally:
        d.stop()
    r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "m.safetensors"),
                        "--register", *TRAIN], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    # 2. the daemon scores a line with defects, and a watched folder receives PNGs of noise once
    # the model scores (frames stored before the scorer loads its model stay unscored)
    noise = os.path.join(tmp, "noise")
    os.mkdir(noise)
    config = CONFIG.format(db=db, token=token_file, fps=50, frames=120, rate=0.4,
                           seed=2) + SIDE.format(dir=noise)
    d = Daemon(tmp, "score", config)
    try:
        wait_for(lambda: d.get_json("/api/v1/status")["model"]["state"] == "scoring", 60,
                 "the model scoring")
        for i in range(4):
            with open(os.path.join(tmp, "n%d.png" % i), "wb") as f:
                f.write(noise_png(64, 64, i))
            os.rename(os.path.join(tmp, "n%d.png" % i), os.path.join(noise, "n%d.png" % i))

        def all_scored():
            cams = {c["name"]: c for c in d.get_json("/api/v1/status")["cameras"]}
            if cams["line"]["state"] != "ended" or cams["side"]["frames_stored"] < 4:
                return False
            con = sqlite3.connect(db)
            left = con.execute("SELECT COUNT(*) FROM frames WHERE id > (SELECT MIN(frame_id) "
                               "FROM results) AND id NOT IN (SELECT frame_id FROM results)")
            left = left.fetchone()[0]
            con.close()
            return left == 0
        wait_for(all_scored, 120, "every new frame scored")
        con = sqlite3.connect(db)
        alerts = [a for a, in con.execute("SELECT id FROM alerts ORDER BY id")]
        pngs = con.execute("SELECT COUNT(*) FROM alerts a JOIN frames f ON f.id = a.frame_id "
                           "WHERE f.format = 'png'").fetchone()[0]
        assert len(alerts) >= 8 and pngs >= 1, (len(alerts), pngs)
        con.close()
        # 3. an operator's verdicts through the API (the first alert and every third stay new)
        with open(token_file) as f:
            token = f.read().strip()
        rng = random.Random(7)
        for n, aid in enumerate(alerts[1:]):
            state = ["defect", "false_positive", "new"][n % 3]
            if state == "new":
                continue
            body = {"verdict": state}
            note = rng.choice(NOTES)
            if note is not None:
                body["note"] = note
            req = urllib.request.Request(
                d.url("/api/v1/alerts/%d/review" % aid), data=json.dumps(body).encode(),
                method="POST", headers={"Content-Type": "application/json",
                                        "Authorization": "Bearer " + token})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert json.loads(r.read())["state"] == state
        heatmaps = {}

        def heatmap_of(fid):
            if fid not in heatmaps:
                with urllib.request.urlopen(d.url("/api/v1/frames/%d/heatmap" % fid)) as r:
                    heatmaps[fid] = r.read()
                    assert heatmaps[fid][:2] == b"\xff\xd8"
            return heatmaps[fid]

        # 4. everything, then each filter, against the same queries on the file
        rows = expected(db)
        assert {r[8] for r in rows} == {"new", "defect", "false_positive"}
        everything = check_archive(download(d, ""), rows, heatmap_of)
        assert all(r[13] for r in rows)  # every flagged frame has its heatmap
        defects = expected(db, state="defect")
        check_archive(download(d, "?state=defect"), defects, heatmap_of)
        side = expected(db, camera="side")
        assert side and all(r[11] == "png" for r in side)
        check_archive(download(d, "?camera=side"), side, heatmap_of)
        times = sorted(r[4] for r in rows)
        since, until = times[len(times) // 4], times[3 * len(times) // 4]
        window = expected(db, state="false_positive", camera="line", since=since, until=until)
        query = "?" + urllib.parse.urlencode({"state": "false_positive", "camera": "line",
                                              "since": rfc3339(since), "until": str(until)})
        check_archive(download(d, query), window, heatmap_of)
        assert len(window) < len(expected(db, state="false_positive", camera="line"))
        check_archive(download(d, "?since=" + str(times[-1] + 1)), [], heatmap_of)

        # 5. bad filters
        for q, code, text in [("?state=reviewed", 400, "state must be new, defect or false_positive"),
                              ("?state=", 400, "state must be"),
                              ("?since=yesterday", 400, "since must be an RFC 3339 time"),
                              ("?until=2026-11-29", 400, "until must be an RFC 3339 time"),
                              ("?since=2026-11-29T12:00:00Z&until=2026-11-29T11:00:00Z", 400,
                               "since must be before until"),
                              ("?camera=", 400, "camera must be a camera name"),
                              ("?limit=5", 400, "unknown query parameter 'limit'"),
                              ("?camera=nosuch", 404, "no camera named 'nosuch'")]:
            got = error_of(d, q)
            assert got[0] == code and text in got[1], (q, got)

        # 6. the command line, beside the running daemon: the same archive
        out = os.path.join(tmp, "cli.tar")
        r = cli("--db", db, "--out", out)
        assert r.returncode == 0, r.stderr
        assert b"%d frames" % len(rows) in r.stderr, r.stderr
        with open(out, "rb") as f:
            files = check_archive(read_tar(f), rows, heatmap_of)
        assert files == everything
        r = cli("--db", db, "--out", "-", "--state", "defect")
        assert r.returncode == 0, r.stderr
        check_archive(read_tar(io.BytesIO(r.stdout)), defects, heatmap_of)
        r = cli("--db", db, "--out", "-", "--camera", "side", "--since", "0",
                "--until", rfc3339(times[-1] + 1))
        check_archive(read_tar(io.BytesIO(r.stdout)), side, heatmap_of)
    finally:
        d.stop()

    nothing = os.path.join(tmp, "none.tar")
    for args, code, text in [(["--state", "reviewed"], 64, b"state must be"),
                             (["--since", "2026-13-01T00:00:00Z"], 64, b"since must be"),
                             (["--camera", "nosuch"], 1, b"no camera named 'nosuch'"),
                             (["--bogus"], 64, b"unrecognized option")]:
        r = cli("--db", db, "--out", nothing, *args)
        assert r.returncode == code and text in r.stderr, (args, r.returncode, r.stderr)
    r = cli("--db", os.path.join(tmp, "missing.db"), "--out", nothing)
    assert r.returncode == 1 and b"inspectd export:" in r.stderr, r.stderr
    r = cli("--db", db)
    assert r.returncode == 64 and b"--out FILE.tar" in r.stderr, r.stderr
    assert not os.path.exists(nothing) and not [f for f in os.listdir(tmp) if f.startswith("none")]
    print("ok: %d alerts exported (%d defect, %d from the PNG camera)" %
          (len(rows), len(defects), len(side)))


if __name__ == "__main__":
    main()
