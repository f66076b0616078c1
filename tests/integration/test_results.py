"""test_results.py — a result for every part: frames from the synthetic camera get a verdict each,
'unscored' (no_model) before any model and 'ok' / 'ng' once `inspectd train --register` made one;
GET /api/v1/results pages through every verdict with its cursor, newest first; the frame shows its
verdict; the summary and /metrics count what the database holds; a part id posted before a frame
rides on it; the live feed sends result events only to a client that asks for them, replays the
ones it missed from its "EVENT:RESULT" id, and keeps them out of the event log. Bad [results]
config exits 78. Python standard library only."""
import json
import os
import re
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
from testlib import free_port, tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]

CONFIG = """[http]
listen = 127.0.0.1:{port}
token = t0ken
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[trainer]
enabled = false
[results]
shifts = 06:00, 14:00,22:00
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = 64
height = 64
defect_rate = {rate}
seed = {seed}
"""


def start(tmp, db, frames, fps, seed, rate):
    port = free_port()
    conf = os.path.join(tmp, "run-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, frames=frames, fps=fps, seed=seed, rate=rate))
    log = open(os.path.join(tmp, "run-%d.log" % seed), "w+")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    return daemon, port


def url(port, path):
    return "http://127.0.0.1:%d%s" % (port, path)


def get(port, path):
    with urllib.request.urlopen(url(port, path), timeout=30) as r:
        body = r.read()
        return json.loads(body) if path.startswith("/api") else body.decode()


def post(port, path, body):
    req = urllib.request.Request(url(port, path), data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer t0ken"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


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


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0, "daemon did not stop cleanly"


class Events(threading.Thread):
    """Reads an SSE stream into (id, event, data) tuples until closed."""

    def __init__(self, port, query, last_id=None):
        super().__init__(daemon=True)
        headers = {"Last-Event-ID": last_id} if last_id else {}
        req = urllib.request.Request(url(port, "/api/v1/events" + query), headers=headers)
        self.resp = urllib.request.urlopen(req, timeout=300)
        self.events = []
        self.start()

    def run(self):
        ev = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "event" in ev:
                        self.events.append((ev.get("id"), ev["event"], json.loads(ev["data"])))
                    ev = {}
                elif not line.startswith(":"):
                    k, _, v = line.partition(": ")
                    ev[k] = v
        except (OSError, ValueError, AttributeError):  # closed under the reader
            pass

    def close(self):
        self.resp.close()


def all_results(port, query=""):
    """Every verdict through the cursor, with the page sizes."""
    rows, cursor, pages = [], None, 0
    while True:
        q = "/api/v1/results?limit=37" + query + ("&cursor=" + cursor if cursor else "")
        page = get(port, q)
        rows += page["results"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return rows, pages


def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else None


def check_bad_config(tmp):
    for body, what in (("[results]\nshifts = 25:00\n", "shifts"),
                       ("[results]\nshifts = 14:00,06:00\n", "ascending"),
                       ("[results]\nshift = 06:00\n", "unknown key")):
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write(body + "[camera.a]\ndriver = synthetic\n")
        r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 78 and what in r.stderr and "bad.conf:2" in r.stderr, (body, r)


def check_db_matches(con, rows):
    db = {f: (v, r) for f, v, r in con.execute("SELECT frame_id, verdict, reason FROM verdicts")}
    assert len(db) == len(rows), (len(db), len(rows))
    for row in rows:
        assert db[row["frame_id"]] == (row["verdict"], row["reason"]), (row, db[row["frame_id"]])


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-results-")
    db = os.path.join(tmp, "line.db")
    check_bad_config(tmp)

    # 1. no model yet: every frame is 'unscored' (no_model), and a part id rides on a frame
    daemon, port = start(tmp, db, 150, 15, 1, 0.0)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 1, 120,
                 "the first frame")
        plain = Events(port, "")
        results = Events(port, "?types=result,alert")
        assert post(port, "/api/v1/parts", {"camera": "line", "part_id": "P-0001"})[0] == 202
        assert post(port, "/api/v1/parts", {"camera": "nope", "part_id": "x"})[0] == 404
        assert post(port, "/api/v1/parts", {"camera": "line", "part_id": "x" * 65})[0] == 400
        assert post(port, "/api/v1/parts", {"camera": "line"})[0] == 400
        wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 150, 300,
                 "150 frames")
        wait_for(lambda: len(get(port, "/api/v1/results?limit=1000")["results"]) >= 150, 120,
                 "150 verdicts")
        rows, pages = all_results(port)
        assert len(rows) == 150 and pages == 5, (len(rows), pages)
        ids = [r["id"] for r in rows]
        assert ids == sorted(ids, reverse=True) and len(set(r["frame_id"] for r in rows)) == 150
        for r in rows:
            assert r["verdict"] == "unscored" and r["reason"] == "no_model", r
            assert r["score"] is None and r["model"] is None and r["camera"] == "line", r
            assert r["recipe"] == "line", r  # a camera's own recipe by default
        tagged = [r for r in rows if r["part_id"] == "P-0001"]
        assert len(tagged) == 1, [r["part_id"] for r in rows][:10]
        others = [r for r in rows if r["part_id"] != "P-0001"]
        assert all(r["part_id"] == str(r["seq"]) for r in others), others[:3]
        frame = get(port, "/api/v1/frames/%d" % tagged[0]["frame_id"])
        assert frame["part_id"] == "P-0001" and frame["result"]["verdict"] == "unscored", frame
        assert frame["result"]["frame_id"] == frame["id"], frame
        # filters
        assert get(port, "/api/v1/results?verdict=ok")["results"] == []
        assert len(get(port, "/api/v1/results?camera=line&limit=5")["results"]) == 5
        assert len(get(port, "/api/v1/results?recipe=line&limit=7")["results"]) == 7
        assert get(port, "/api/v1/results?recipe=other")["results"] == []
        for bad in ("verdict=maybe", "limit=0", "cursor=x", "recipe=", "since=yesterday",
                    "colour=red"):
            try:
                get(port, "/api/v1/results?" + bad)
                raise AssertionError(bad + " accepted")
            except urllib.error.HTTPError as e:
                assert e.code == 400, (bad, e.code)
        # the summary and /metrics count what the database holds
        s = get(port, "/api/v1/results/summary")
        assert s["totals"]["unscored"] == 150 and s["totals"]["total"] == 150, s
        assert s["totals"]["yield"] == 0.0 and s["cameras"]["line"]["unscored"] == 150, s
        assert s["recipes"]["line"]["total"] == 150, s
        assert sum(b["total"] for b in s["buckets"]) == 150, s
        sh = get(port, "/api/v1/results/summary?by=shift")
        assert sh["by"] == "shift" and sum(b["total"] for b in sh["buckets"]) == 150, sh
        assert all(b["shift"] in ("06:00", "14:00", "22:00") for b in sh["buckets"]), sh
        text = get(port, "/metrics")
        assert metric(text, "inspectd_results_total", 'camera="line",verdict="unscored"') == 150
        assert metric(text, "inspectd_results_unscored_total",
                      'camera="line",reason="no_model"') == 150
        # the live feed: result events only when asked for
        wait_for(lambda: len(results.events) >= 140, 60, "result events")
        time.sleep(1.0)
        got = [e for e in results.events if e[1] == "result"]
        assert all(re.fullmatch(r"\d+:\d+", e[0]) for e in got), got[:3]
        assert [e[2]["id"] for e in got] == sorted(e[2]["id"] for e in got), "feed out of order"
        assert not [e for e in plain.events if e[1] == "result"], plain.events[:3]
        # a reconnect from an id replays the verdicts after it
        mid = got[len(got) // 2]
        replay = Events(port, "?types=result", last_id=mid[0])
        wait_for(lambda: len(replay.events) >= len(got) - len(got) // 2 - 1, 60, "the replay")
        assert replay.events[0][2]["id"] == mid[2]["id"] + 1, (replay.events[0], mid)
        for e in (plain, results, replay):
            e.close()
    finally:
        stop(daemon)
    con = sqlite3.connect(db)
    check_db_matches(con, rows)
    assert con.execute("SELECT count(*) FROM events WHERE kind NOT IN ('alert', 'review', "
                       "'model')").fetchone()[0] == 0

    # 2. a model: every new frame 'ok' or 'ng', as its result row says
    model = os.path.join(tmp, "model.safetensors")
    r = subprocess.run([BIN, "train", "--db", db, "--out", model, "--register", *tiny_train()],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    before = con.execute("SELECT max(id) FROM frames").fetchone()[0]
    con.close()
    daemon, port = start(tmp, db, 120, 15, 2, 0.3)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 270, 300,
                 "120 more frames")
        wait_for(lambda: len(get(port, "/api/v1/results?limit=1000")["results"]) >= 270, 300,
                 "270 verdicts")
        rows, _ = all_results(port)
        new = [r for r in rows if r["frame_id"] > before]
        assert len(new) == 120, len(new)
        con = sqlite3.connect(db)
        flagged = dict(con.execute("SELECT frame_id, flagged FROM results"))
        for r in new:
            assert r["verdict"] in ("ok", "ng") and r["reason"] is None, r
            assert r["verdict"] == ("ng" if flagged[r["frame_id"]] else "ok"), r
            assert r["score"] > 0 and r["model"] and r["threshold"] > 0, r
        assert any(r["verdict"] == "ng" for r in new) and any(r["verdict"] == "ok" for r in new)
        check_db_matches(con, rows)
        text = get(port, "/metrics")
        for v in ("ok", "ng", "unscored"):
            n = con.execute("SELECT count(*) FROM verdicts WHERE verdict = ?", (v,)).fetchone()[0]
            assert metric(text, "inspectd_results_total", 'camera="line",verdict="%s"' % v) == n
        s = get(port, "/api/v1/results/summary")
        assert s["totals"]["total"] == 270 and s["totals"]["ok"] == sum(
            r["verdict"] == "ok" for r in rows), s
        con.close()
    finally:
        stop(daemon)
    print("test_results: ok")


if __name__ == "__main__":
    main()
