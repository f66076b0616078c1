"""test_daemon.py — the real `inspectd run` on a random free loopback port with a temporary
config and database: a synthetic camera at 50 fps and a folder camera replaying PNG files written
here. Waits for /readyz, checks that frames accumulate, pages through /api/v1/frames, fetches
images (the PNGs must come back byte for byte and decode to the written pixels; the JPEGs must
parse to 640x480 and revalidate with their ETag), checks 400/404/405 answers and /metrics, sends
SIGTERM, and then opens the database: integrity_check passes and every frame the daemon reported
stored is there; sd_notify messages arrive on a NOTIFY_SOCKET (read all along, as systemd reads
its own). Also: a bad config exits 78 with FILE:LINE, and a token guards the API.
Python standard library only."""
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import START_S, Notifications, free_port, stop_daemon  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]


def png_bytes(w, h, pixel):
    raw = b"".join(b"\x00" + bytes(v for x in range(w) for v in pixel(x, y)) for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_pixels(data):
    """Decodes an 8-bit RGB PNG without filters other than None (as png_bytes writes them)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = 1 + 3 * w
    assert all(raw[y * stride] == 0 for y in range(h))
    return w, h, b"".join(raw[y * stride + 1:(y + 1) * stride] for y in range(h))


def jpeg_size(data):
    """Walks the JPEG markers: SOI, segments up to a SOF, and EOI at the end. Returns (w, h)."""
    assert data[:2] == b"\xff\xd8", "no SOI"
    assert data[-2:] == b"\xff\xd9", "no EOI"
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF, "bad marker at %d" % pos
        marker = data[pos + 1]
        n = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h
        pos += 2 + n
    raise AssertionError("no SOF marker")


class Client:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def get(self, path, method="GET", headers=None):
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path, want=200):
        status, headers, body = self.get(path)
        assert status == want, "%s: %d %s" % (path, status, body[:200])
        assert headers["Content-Type"] == "application/json", headers
        return json.loads(body)


def wait_ready(client, proc, timeout=START_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "inspectd exited with %s" % proc.returncode
        try:
            status, _, body = client.get("/readyz")
            if status == 200:
                return json.loads(body)
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError("not ready after %d s" % timeout)


def check_errors(c):
    for path in ["/nope", "/api/v1/frames/999999999", "/api/v1/frames/999999999/image",
                 "/api/v1/frames?camera=nobody"]:
        assert "error" in c.json(path, 404), path
    for path in ["/api/v1/frames?limit=abc", "/api/v1/frames?limit=0",
                 "/api/v1/frames?limit=100000", "/api/v1/frames?before=-1",
                 "/api/v1/frames/abc", "/api/v1/frames/abc/image", "/api/v1/frames?colour=red"]:
        assert "error" in c.json(path, 400), path
    status, headers, body = c.get("/api/v1/status", method="POST")
    assert status == 405 and headers["Allow"] == "GET" and "error" in json.loads(body)
    status, headers, body = c.get("/api/v1/status", method="OPTIONS", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert status == 405 and "error" in json.loads(body), status
    assert not [h for h in headers if h.lower().startswith("access-control-")], dict(headers)


def check_paging(c):
    page = c.json("/api/v1/frames?camera=line1&limit=5")
    ids = [f["id"] for f in page["frames"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True), ids
    assert page["next_before"] == ids[-1]
    older = c.json("/api/v1/frames?camera=line1&limit=5&before=%d" % ids[-1])
    assert older["frames"] and all(f["id"] < ids[-1] for f in older["frames"])
    meta = c.json("/api/v1/frames/%d" % ids[0])
    assert meta["camera"] == "line1" and meta["width"] == 640 and meta["height"] == 480
    assert meta["format"] == "jpeg" and meta["truth"]["defect"] in ("none", "scratch", "hole", "stain")
    return ids[0]


def check_jpeg_image(c, frame_id):
    status, headers, body = c.get("/api/v1/frames/%d/image" % frame_id)
    assert status == 200 and headers["Content-Type"] == "image/jpeg", headers
    assert jpeg_size(body) == (640, 480)
    assert "immutable" in headers["Cache-Control"]
    status, _, body = c.get("/api/v1/frames/%d/image" % frame_id,
                            headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b"", status


def check_folder_frames(c, files):
    page = c.json("/api/v1/frames?camera=replay")
    frames = sorted(page["frames"], key=lambda f: f["seq"])
    assert len(frames) == len(files), page
    for f, (name, data, pixels) in zip(frames, files):
        assert f["format"] == "png" and f["width"] == 24 and f["height"] == 16, f
        status, headers, body = c.get(f["image"])
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert body == data, "%s differs" % name
        assert png_pixels(body) == (24, 16, pixels)


def check_metrics(c):
    status, headers, body = c.get("/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    for needle in ['inspectd_frames_captured_total{camera="line1"}',
                   'inspectd_frames_dropped_total{camera="replay"} 0',
                   'inspectd_http_requests_total{code="404"}', "inspectd_queue_depth",
                   'inspectd_store_commit_seconds_bucket{le="+Inf"}']:
        assert needle in text, needle


def check_notifications(notify):
    """READY=1 before STOPPING=1, STATUS= lines, and watchdog pings at half the interval."""
    messages = [m for _, m in notify.messages]
    text = notify.text()
    assert "READY=1" in text and "STOPPING=1" in text, messages
    assert text.index("READY=1") < text.index("STOPPING=1")
    assert "STATUS=" in text and text.count("WATCHDOG=1") >= 3, messages


def bad_config_exits_78(tmp):
    path = os.path.join(tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("[camera.a]\ndriver = synthetic\nfps = fast\n")
    r = subprocess.run([BIN, "run", "--config", path], capture_output=True, text=True,
                       timeout=START_S)
    assert r.returncode == 78, r
    assert r.stderr.startswith("inspectd: %s:3: " % path), r.stderr


def token_guards_the_api(tmp):
    """Listening beyond loopback, every request needs the bearer token; health probes do not."""
    port = free_port()
    conf = os.path.join(tmp, "token.conf")
    with open(conf, "w") as f:
        f.write("[http]\nlisten = 0.0.0.0:%d\ntoken = open-sesame\n[store]\npath = %s\n"
                "[trainer]\nenabled = false\n[camera.a]\ndriver = synthetic\nfps = 10\n"
                % (port, os.path.join(tmp, "token.db")))
    proc = subprocess.Popen([BIN, "run", "--config", conf], stderr=subprocess.DEVNULL)
    try:
        c = Client(port)
        wait_ready(c, proc)
        assert c.get("/healthz")[0] == 200
        status, headers, _ = c.get("/api/v1/status")
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer", status
        assert c.get("/metrics", headers={"Authorization": "Bearer open-sesame-not"})[0] == 401
        assert c.get("/api/v1/status", headers={"Authorization": "Bearer open-sesame"})[0] == 200
        assert c.get("/api/v1/status?access_token=open-sesame")[0] == 200
        assert c.get("/api/v1/status?access_token=open-sesamE")[0] == 401
        stop_daemon(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def write_folder(img_dir):
    os.makedirs(img_dir)
    files = []
    for i in range(4):
        data = png_bytes(24, 16, lambda x, y, i=i: (x * 10 % 256, y * 15 % 256, i * 60))
        name = "img%d.png" % (i + 1)
        with open(os.path.join(img_dir, name), "wb") as f:
            f.write(data)
        files.append((name, data, png_pixels(data)[2]))
    with open(os.path.join(img_dir, "notes.txt"), "w") as f:
        f.write("not an image\n")
    return files


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-daemon-")
    proc = notify = None
    try:
        bad_config_exits_78(tmp)
        token_guards_the_api(tmp)
        files = write_folder(os.path.join(tmp, "images"))
        port = free_port()
        db = os.path.join(tmp, "var", "inspectd.db")  # var/ does not exist yet
        conf = os.path.join(tmp, "inspectd.conf")
        with open(conf, "w") as f:
            f.write("[http]\nlisten = 127.0.0.1:%d\n[store]\npath = %s\n"
                    "[trainer]\nenabled = false\n"
                    "[camera.line1]\ndriver = synthetic\nfps = 50\n"
                    "[camera.replay]\ndriver = folder\npath = %s\nfps = 50\n"
                    % (port, db, os.path.join(tmp, "images")))
        log = open(os.path.join(tmp, "stderr.log"), "w+")
        notify = Notifications(os.path.join(tmp, "notify.sock"))
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify.sock"),
                   WATCHDOG_USEC="400000")
        proc = subprocess.Popen([BIN, "run", "--config", conf], stderr=log, env=env)
        c = Client(port)
        ready = wait_ready(c, proc)
        assert ready["database"] is True and ready["model"] == "learning"
        assert c.json("/healthz")["status"] == "ok"

        first = c.json("/api/v1/status")
        deadline = time.time() + START_S
        while True:  # frames stored since, and the uptime moved on
            time.sleep(0.5)
            status = c.json("/api/v1/status")
            if time.time() > deadline or (status["uptime_s"] > first["uptime_s"] and status[
                    "database"]["frames_stored"] > first["database"]["frames_stored"]):
                break
        assert status["version"] and status["uptime_s"] > first["uptime_s"]
        assert status["database"]["frames_stored"] > first["database"]["frames_stored"], status
        assert status["database"]["size_bytes"] > 0
        engine = status["engine"]  # the default build's [engine] gemm = auto: oneDNN, in f32
        assert engine["gemm"] == "onednn" and engine["precision"] == "f32", engine
        assert engine["isa"] and engine["version"], engine
        cams = {cam["name"]: cam for cam in status["cameras"]}
        # the camera is configured for 50 fps; its measured rate must show frames flowing (on a
        # busy 2-core machine the JPEG encoding alone can hold it under 10 fps for a while); the
        # folder camera's files are all stored
        deadline = time.time() + START_S
        while (cams["line1"]["fps"] <= 5 or cams["replay"]["frames_stored"] < len(files)) and \
                time.time() < deadline:
            time.sleep(0.5)
            cams = {cam["name"]: cam for cam in c.json("/api/v1/status")["cameras"]}
        assert cams["line1"]["state"] == "streaming" and cams["line1"]["fps"] > 5, cams
        assert cams["replay"]["frames_captured"] == len(files), cams

        check_errors(c)
        newest = check_paging(c)
        check_jpeg_image(c, newest)
        check_folder_frames(c, files)
        check_metrics(c)

        stop_daemon(proc)
        log.seek(0)
        text = log.read()
        stored = {m.group(1): int(m.group(2)) for m in
                  re.finditer(r"camera (\w+): \d+ frames captured, (\d+) stored", text)}
        assert set(stored) == {"line1", "replay"}, text
        assert "stopped cleanly" in text, text
        assert len(re.findall(r"gemm onednn \S+ \(%s\), precision f32" % engine["isa"], text)) == 1, \
            text

        check_notifications(notify)

        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = dict(con.execute("SELECT c.name, count(*) FROM frames f "
                                "JOIN cameras c ON c.id = f.camera_id GROUP BY c.name"))
        assert rows == stored, (rows, stored)
        assert rows["replay"] == len(files)
        assert rows["line1"] >= status["cameras"][0]["frames_stored"]
        con.close()
        print("ok: %d synthetic and %d folder frames stored and accounted for"
              % (rows["line1"], rows["replay"]))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if notify:
            notify.close()
        if proc and proc.returncode != 0:
            with open(os.path.join(tmp, "stderr.log")) as f:
                sys.stderr.write(f.read())
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
