"""test_operator.py — the operator's side against the real daemon: a model trained on the
synthetic camera's frames, then a live line with defects. Alerts are listed with filters and
cursor paging, reviewed (token required, every 4xx path), the review shows in /alerts, in the
summary, in /metrics and on the live event stream (SSE, with replay from Last-Event-ID); a
false positive joins the bank and then scores below the threshold; images are scored over HTTP;
a retraining is started over HTTP and its new model arrives as an event. Python standard library
only."""
import base64
import http.client
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, tiny_train, wait_while_training  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:{port}
token_file = {token}
max_upload = 64
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = 64
height = 64
defect_rate = {rate}
seed = {seed}
[trainer]
enabled = false
minutes = 0.1
size = 64
channels = 3
threads = 2
max_images = 300
dim = 32
depth = 2
heads = 2
batch = 16
"""

TRAIN = tiny_train()


class Api:
    def __init__(self, port, token=None):
        self.port, self.token = port, token

    def call(self, method, path, body=None, headers=None, auth=True):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if auth and self.token:
            h["Authorization"] = "Bearer " + self.token
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def json(self, method, path, expect, **kw):
        status, headers, data = self.call(method, path, **kw)
        assert status == expect, (method, path, status, data[:300])
        assert headers["Content-Type"].startswith("application/json"), headers
        return json.loads(data)

    def get(self, path, expect=200, **kw):
        return self.json("GET", path, expect, **kw)

    def review(self, alert, body, expect=200, **kw):
        h = {"Content-Type": "application/json"}
        h.update(kw.pop("headers", {}))
        raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.json("POST", "/api/v1/alerts/%d/review" % alert, expect, body=raw,
                         headers=h, **kw)


class Events(threading.Thread):
    """Reads GET /api/v1/events into a list of (id, event, data)."""

    def __init__(self, port, last_id=None):
        super().__init__(daemon=True)
        self.port, self.last_id, self.events, self.opened = port, last_id, [], threading.Event()
        self.conn = None

    def run(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        h = {} if self.last_id is None else {"Last-Event-ID": str(self.last_id)}
        self.conn.request("GET", "/api/v1/events", headers=h)
        r = self.conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream", r.status
        self.opened.set()
        ev = {}
        try:
            while True:
                line = r.fp.readline()
                if not line:
                    return
                line = line.decode().rstrip("\n")
                if not line:
                    if "data" in ev:
                        self.events.append((int(ev["id"]), ev["event"], json.loads(ev["data"])))
                    ev = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    ev[k] = v
        except (OSError, ValueError):
            return

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass

    def wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(pred(e) for e in list(self.events)):
                return
            time.sleep(0.1)
        raise AssertionError("no event: %s (got %s)" % (what, [e[:2] for e in self.events]))


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def start(tmp, db, token, frames, fps, seed, rate):
    port = free_port()
    conf = os.path.join(tmp, "op-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, token=token, frames=frames, fps=fps, seed=seed,
                              rate=rate))
    log = open(os.path.join(tmp, "op-%d.log" % seed), "w+")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    api = Api(port)
    wait_for(lambda: api.call("GET", "/readyz")[0] in (200, 503), 30, "the daemon")
    return proc, api, log


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, "daemon did not stop cleanly"


def check_alert_list(api, con):
    ids = [r[0] for r in con.execute("SELECT id FROM alerts ORDER BY id DESC")]
    assert len(ids) >= 4, ids
    # cursor paging walks every alert once, newest first
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/alerts?limit=3" + ("&cursor=" + cursor if cursor else ""))
        seen += [a["id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids, (seen, ids)
    a = api.get("/api/v1/alerts?limit=1")["alerts"][0]
    row = con.execute("SELECT a.frame_id, c.name, a.score, a.score_norm, a.threshold, m.version, "
                      "a.state FROM alerts a JOIN cameras c ON c.id = a.camera_id JOIN models m "
                      "ON m.id = a.model_id WHERE a.id = ?", (a["id"],)).fetchone()
    assert (a["frame_id"], a["camera"], a["model_version"], a["state"]) == \
        (row[0], row[1], row[5], row[6]), (a, row)
    assert abs(a["score"] - row[2]) < 1e-4 and abs(a["score_norm"] - row[3]) < 1e-4, (a, row)
    assert a["score_norm"] > 1 and a["links"]["heatmap"] == "/api/v1/frames/%d/heatmap" % row[0]
    assert api.get("/api/v1/alerts/%d" % a["id"]) == a
    # filters
    assert api.get("/api/v1/alerts?camera=line&state=new&limit=500")["alerts"]
    mid = con.execute("SELECT created_at FROM alerts ORDER BY id LIMIT 1 OFFSET 2").fetchone()[0]
    later = api.get("/api/v1/alerts?limit=500&since=%d" % mid)["alerts"]
    assert len(later) == con.execute("SELECT COUNT(*) FROM alerts WHERE created_at >= ?",
                                     (mid,)).fetchone()[0], later
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mid // 1000000 + 1))
    before = api.get("/api/v1/alerts?limit=500&until=" + stamp)["alerts"]
    assert before and all(x["created_at_us"] < (mid // 1000000 + 1) * 1000000 for x in before)
    # bad parameters
    for q in ["state=bogus", "limit=0", "limit=501", "cursor=abc", "cursor=-3", "since=yesterday",
              "until=2026-13-01T00:00:00Z", "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
              "colour=red"]:
        assert "error" in api.get("/api/v1/alerts?" + q, 400), q
    assert "error" in api.get("/api/v1/alerts?camera=nobody", 404)
    assert "error" in api.get("/api/v1/alerts/999999", 404)
    assert "error" in api.get("/api/v1/alerts/abc", 400)
    return ids


def check_review(api, con, token, alert, events):
    before = api.get("/api/v1/alerts/%d" % alert)
    body = {"verdict": "false_positive", "note": "glare from the lamp"}
    # the token is required, and checked
    assert "error" in api.review(alert, body, 401, auth=False)
    assert "error" in api.review(alert, body, 401, auth=False,
                                 headers={"Authorization": "Bearer " + token[:-1] + "x"})
    # bad bodies
    assert "error" in api.review(alert, "{not json", 400)
    assert "error" in api.review(alert, "[1, 2]", 400)
    assert "error" in api.review(alert, {"verdict": "maybe"}, 400)
    assert "error" in api.review(alert, {"verdict": "defect", "colour": "red"}, 400)
    assert "error" in api.review(alert, {"verdict": "defect", "note": 5}, 400)
    assert "error" in api.review(alert, {"verdict": "defect", "note": "x" * 1001}, 400)
    assert "error" in api.review(alert, {"verdict": "defect"}, 415,
                                 headers={"Content-Type": "text/plain"})
    assert "error" in api.review(alert, "x" * (70 << 10), 413)
    assert "error" in api.review(999999, body, 404)
    assert api.get("/api/v1/alerts/%d" % alert) == before  # nothing changed
    after = api.review(alert, body)
    assert after["state"] == "false_positive" and after["note"] == body["note"], after
    assert after["reviewed_at"] is not None
    row = con.execute("SELECT state, note, reviewed_at FROM alerts WHERE id = ?",
                      (alert,)).fetchone()
    assert row[0] == "false_positive" and row[1] == body["note"] and row[2] > 0, row
    listed = api.get("/api/v1/alerts?state=false_positive")["alerts"]
    assert [a["id"] for a in listed] == [alert], listed
    events.wait(lambda e: e[1] == "review" and e[2]["id"] == alert and
                e[2]["state"] == "false_positive", 10, "the review")


def check_score_upload(api, image, token):
    h = {"Content-Type": "image/jpeg"}
    assert "error" in api.json("POST", "/api/v1/score", 401, body=image, headers=h, auth=False)
    v = api.json("POST", "/api/v1/score?heatmap=1", 200, body=image, headers=h)
    assert v["threshold"] > 0 and abs(v["score_norm"] - v["score"] / v["threshold"]) < 1e-4, v
    assert base64.b64decode(v["heatmap_jpeg"])[:2] == b"\xff\xd8", v
    assert "error" in api.json("POST", "/api/v1/score", 400, body=b"not an image", headers=h)
    assert "error" in api.json("POST", "/api/v1/score", 400, body=image[:200], headers=h)
    assert "error" in api.json("POST", "/api/v1/score", 413, body=b"\xff" * (65 << 10),
                               headers=h)
    assert "error" in api.json("POST", "/api/v1/score", 415, body=image,
                               headers={"Content-Type": "text/plain"})
    assert "error" in api.json("POST", "/api/v1/score?heatmap=yes", 400, body=image, headers=h)
    return v


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-operator-")
    db = os.path.join(tmp, "line.db")
    token_file = os.path.join(tmp, "secret", "token")

    # 1. frames to learn from; the token file is created at the first start
    proc, api, log = start(tmp, db, token_file, 300, 0, 1, 0.01)
    wait_for(lambda: api.get("/api/v1/status")["database"]["frames_stored"] >= 300, 60, "frames")
    st = os.stat(token_file)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    token = open(token_file).read().strip()
    assert len(token) >= 32, token
    assert api.get("/api/v1/models") == {"models": [], "active": None}
    assert api.get("/api/v1/train")["state"] == "idle"
    assert "error" in api.json("POST", "/api/v1/score", 503, body=b"x",
                               headers={"Authorization": "Bearer " + token})
    stop(proc)
    r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "m1.safetensors"),
                        "--register", *TRAIN], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    # 2. a live line with defects, watched from the event stream
    proc, api, log = start(tmp, db, token_file, 400, 40, 2, 0.3)
    api.token = token
    try:
        assert open(token_file).read().strip() == token  # kept across restarts
        # from the start of the event log: the daemon scores (and raises alerts) from its first
        # frames on, maybe before this listener is connected
        events = Events(api.port, last_id=0)
        events.start()
        assert events.opened.wait(60)
        wait_for(lambda: api.get("/api/v1/status")["scoring"]["frames_scored"] >= 400, 120,
                 "400 frames scored")
        con = sqlite3.connect(db)
        ids = check_alert_list(api, con)
        events.wait(lambda e: e[1] == "alert" and e[2]["id"] == ids[0], 60,
                    "the newest alert")
        alert_events = sorted(e[2]["id"] for e in events.events if e[1] == "alert")
        assert alert_events == sorted(ids), (alert_events, ids)

        # the summary counts what the table holds
        s = api.get("/api/v1/alerts/summary")
        assert s["total"] == len(ids) and s["by_state"]["new"] == len(ids), s
        assert s["by_camera"]["line"]["new"] == len(ids) and \
            sum(h["new"] for h in s["by_hour"]) == len(ids), s
        assert "error" in api.get("/api/v1/alerts/summary?since=nope", 400)

        # thumbnails
        fid = con.execute("SELECT frame_id FROM alerts WHERE id = ?", (ids[0],)).fetchone()[0]
        status, headers, body = api.call("GET", "/api/v1/frames/%d/thumbnail?size=32" % fid)
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
        assert "error" in api.get("/api/v1/frames/%d/thumbnail?size=5" % fid, 400)
        assert "error" in api.get("/api/v1/frames/999999/thumbnail", 404)

        # an image scored over HTTP matches the daemon's own score of it
        image = con.execute("SELECT image FROM frames WHERE id = ?", (fid,)).fetchone()[0]
        stored = con.execute("SELECT score FROM results WHERE frame_id = ?", (fid,)).fetchone()[0]
        v = check_score_upload(api, image, token)
        assert abs(v["score"] - stored) < 1e-3 * max(1, stored) and v["flagged"], (v, stored)

        # 3. the review, and the feedback it gives: the frame joins the bank
        check_review(api, con, token, ids[0], events)
        wait_for(lambda: "inspectd_feedback_frames 1" in
                 api.call("GET", "/metrics")[2].decode(), 15, "the feedback in the bank")
        v2 = api.json("POST", "/api/v1/score", 200, body=image,
                      headers={"Content-Type": "image/jpeg"})
        assert v2["score_norm"] < 1 and not v2["flagged"], (v, v2)
        defect = api.review(ids[1], {"verdict": "defect"})
        assert defect["state"] == "defect" and defect["note"] is None, defect
        metrics = api.call("GET", "/metrics")[2].decode()
        for line in ['inspectd_alerts{state="new"} %d' % (len(ids) - 2),
                     'inspectd_alerts{state="defect"} 1',
                     'inspectd_alerts{state="false_positive"} 1', "inspectd_model_age_seconds",
                     "inspectd_scoring_seconds_bucket"]:
            assert line in metrics, line
        s = api.get("/api/v1/alerts/summary")
        assert s["by_state"] == {"new": len(ids) - 2, "defect": 1, "false_positive": 1}, s

        # a client that reconnects gets what it missed
        first_review = min(e[0] for e in events.events if e[1] == "review")
        replay = Events(api.port, last_id=first_review - 1)
        replay.start()
        replay.wait(lambda e: e[1] == "review" and e[2]["id"] == ids[1], 60, "the replay")
        assert [e[2]["id"] for e in replay.events if e[1] == "review"] == [ids[0], ids[1]]
        replay.close()

        # 4. models, and a retraining started over HTTP
        models = api.get("/api/v1/models")
        assert len(models["models"]) == 1 and models["active"] == models["models"][0]["id"]
        assert models["models"][0]["status"] == "active", models
        assert "error" in api.json("POST", "/api/v1/train", 401, auth=False)
        started = api.json("POST", "/api/v1/train", 202)
        assert started["state"] in ("starting", "training"), started
        wait_for(lambda: api.get("/api/v1/train")["state"] == "training", 60, "training")
        busy = api.json("POST", "/api/v1/train", 409)
        assert "error" in busy and busy["state"] == "training", busy
        wait_while_training(lambda: api.get("/api/v1/train").get("phase") == "training", proc.pid,
                            "training progress")
        # the training child (run as /proc/self/exe) goes by inspectd's name in ps and top
        kids = []
        for task in os.listdir("/proc/%d/task" % proc.pid):  # a thread starts it
            try:
                with open("/proc/%d/task/%s/children" % (proc.pid, task)) as f:
                    kids += [int(k) for k in f.read().split()]
            except FileNotFoundError:  # a thread that ended since the listing (an HTTP one)
                pass
        names = []
        for k in kids:
            with open("/proc/%d/comm" % k) as f:
                names.append(f.read().strip())
        assert names == ["inspectd"], names
        t = api.get("/api/v1/train")
        assert 0 < t["step"] <= t["total_steps"] and t["eta_s"] >= 0, t
        wait_while_training(lambda: any(e[1] == "model" and e[2]["id"] != models["active"]
                                        for e in list(events.events)), proc.pid, "the new model")
        wait_while_training(lambda: api.get("/api/v1/train")["state"] == "idle", proc.pid,
                            "the run's end")
        t = api.get("/api/v1/train")
        assert t["runs"] == 1 and "last_exit" in t, t
        models = api.get("/api/v1/models")["models"]
        assert len(models) == 2 and models[0]["status"] in ("active", "rejected"), models
        events.close()
        con.close()
    finally:
        if proc.poll() is None:
            stop(proc)
        log.seek(0)
        sys.stdout.write(log.read()[-3000:])
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
