"""test_sensitivity.py — a recipe's sensitivity changes without retraining: the model's bank file
keeps the scores of the held-out normal frames it was calibrated on, and a new false-alarm rate
(PUT /api/v1/recipes/{name}/sensitivity) moves the flagged rate of the same good frames as the
rate says; a fixed threshold flags none or all of them; the daemon's own results follow from the
next frame, score_norm staying score / threshold; a reload that changes the recipe's
false_alarm_rate in the file ends the change made over the API; GET /api/v1/recipes/{name}/scores
gives the recent and calibration scores the review page draws. No training run happens on the
way (the runs are counted). Python standard library only."""
import http.client
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, wait_while_training  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
TOKEN = "sensitivity-test-token"

CONFIG = """[http]
listen = 127.0.0.1:{port}
token = {token}
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[trainer]
enabled = true
min_frames = 150
every_frames = 100000000
first_minutes = 30
threads = 2
size = 64
patch = 8
channels = 3
dim = 32
depth = 2
heads = 2
batch = 16
locals = 2
epochs = 2
max_images = 150
{recipe}[camera.line]
driver = synthetic
fps = 10
width = 64
height = 64
defect_rate = 0
seed = 5
"""


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Authorization": "Bearer " + TOKEN}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    ctype = r.getheader("Content-Type") or ""
    return r.status, json.loads(data) if data and "json" in ctype else data


def get(port, path):
    status, j = call(port, "GET", path)
    assert status == 200, (path, status, j)
    return j


def put(port, recipe, obj):
    return call(port, "PUT", "/api/v1/recipes/%s/sensitivity" % recipe, json.dumps(obj),
                {"Content-Type": "application/json"})


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


def recipe(port):
    return get(port, "/api/v1/recipes")["recipes"][0]


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def strip_tensor(path, name):
    """Rewrites a .safetensors file without one tensor (a bank file of an earlier version)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop(name)
    out, blob = {}, b""
    for key, t in header.items():
        if key == "__metadata__":
            out[key] = t
            continue
        b, e = t["data_offsets"]
        out[key] = dict(t, data_offsets=[len(blob), len(blob) + e - b])
        blob += data[b:e]
    text = json.dumps(out).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + blob)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-sensitivity-")
    db = os.path.join(tmp, "line.db")
    conf = os.path.join(tmp, "inspectd.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, token=TOKEN, db=db, recipe=""))
    log = open(os.path.join(tmp, "run.log"), "w+")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    try:
        wait_while_training(lambda: "sensitivity" in recipe(port), proc.pid, "a model scoring")
        r = recipe(port)
        assert r["sensitivity"]["false_alarm_rate"] == 0.005, r
        assert not r["sensitivity"]["fixed"], r
        con = sqlite3.connect(db)
        model_id, bank = con.execute("SELECT id, json_extract(meta, '$.bank') FROM models").fetchone()
        con.close()
        cal = tensors(bank)["calibration"]
        assert cal["shape"] == [30], cal  # every fifth of the 150 frames, held out
        runs = get(port, "/api/v1/train")["runs"]
        assert runs == 1, runs

        # 60 good frames the model has not seen (captured after it was registered)
        def fresh():
            con = sqlite3.connect(db)
            rows = con.execute("SELECT f.id FROM frames f JOIN results r ON r.frame_id = f.id "
                               "WHERE r.model_id = ? ORDER BY f.id LIMIT 60",
                               (model_id,)).fetchall()
            con.close()
            return rows
        wait_for(lambda: len(fresh()) == 60, 300, "60 frames scored by the model")
        images = []
        for (fid,) in fresh():
            s, image = call(port, "GET", "/api/v1/frames/%d/image" % fid)
            assert s == 200, s
            images.append(image)

        def flagged_rate(want_threshold=None):
            n = 0
            for image in images:
                s, v = call(port, "POST", "/api/v1/score", image, {"Content-Type": "image/jpeg"})
                assert s == 200, (s, v)
                norm = v["score"] / v["threshold"]
                assert abs(v["score_norm"] - norm) <= 1e-4 * max(1.0, norm), v
                if want_threshold is not None:
                    assert abs(v["threshold"] - want_threshold) < 1e-4 * want_threshold, v
                n += v["flagged"]
            return n / len(images)

        def in_force(pred):
            wait_for(lambda: pred(recipe(port)["sensitivity"]), 30, "the new sensitivity")
            return recipe(port)["sensitivity"]

        base = flagged_rate()
        # a false-alarm rate of 0.4: about that share of good frames is flagged now
        s, j = put(port, "line", {"false_alarm_rate": 0.4})
        assert s == 200 and j == {"recipe": "line", "false_alarm_rate": 0.4}, (s, j)
        sens = in_force(lambda x: x["false_alarm_rate"] == 0.4)
        loose = flagged_rate(sens["threshold"])
        print("good frames flagged: %.3f at false_alarm_rate 0.005, %.3f at 0.4" % (base, loose))
        assert base <= 0.25 and 0.15 <= loose <= 0.85 and loose > base + 0.15, (base, loose)
        # a fixed threshold: far above every score flags none, far below all
        s, j = put(port, "line", {"threshold": 1e6})
        assert s == 200, (s, j)
        in_force(lambda x: x["fixed"] and x["threshold"] == 1e6)
        assert flagged_rate(1e6) == 0
        s, j = put(port, "line", {"threshold": 1e-6})
        assert s == 200, (s, j)
        in_force(lambda x: x["fixed"] and x["threshold"] < 1e-5)
        assert flagged_rate() == 1
        # ... and so do the daemon's own results of the frames that follow
        con = sqlite3.connect(db)
        last = con.execute("SELECT max(frame_id) FROM results").fetchone()[0]
        con.close()

        def later():
            con = sqlite3.connect(db)
            rows = con.execute("SELECT flagged, threshold FROM results r JOIN alerts a USING "
                               "(frame_id) WHERE r.frame_id > ? + 5", (last,)).fetchall()
            total = con.execute("SELECT count(*) FROM results WHERE frame_id > ? + 5",
                                (last,)).fetchone()[0]
            con.close()
            return rows, total
        wait_for(lambda: later()[1] >= 20, 120, "20 more results")
        rows, total = later()
        assert len(rows) == total and all(t < 1e-5 for _, t in rows), (len(rows), total)
        # bad bodies and an unknown recipe
        for body in ({"false_alarm_rate": 1}, {"threshold": 0}, {"rate": 0.1}, {}):
            s, j = put(port, "line", body)
            assert s == 400, (body, s, j)
        s, j = put(port, "nosuch", {"false_alarm_rate": 0.1})
        assert s == 404, (s, j)
        s, j = call(port, "PUT", "/api/v1/recipes/line/sensitivity",
                    json.dumps({"false_alarm_rate": 0.1}),
                    {"Content-Type": "application/json", "Authorization": ""})
        assert s == 401, (s, j)

        # a reload that changes the file's false_alarm_rate ends the change made over the API
        with open(conf, "w") as f:
            f.write(CONFIG.format(port=port, token=TOKEN, db=db,
                                  recipe="[recipe.line]\nfalse_alarm_rate = 0.2\n"))
        proc.send_signal(signal.SIGHUP)
        sens = in_force(lambda x: x["false_alarm_rate"] == 0.2 and not x["fixed"])
        assert sens["threshold"] > 1e-3, sens
        # what the review page draws: recent scores and the calibration set, beside the threshold
        d = get(port, "/api/v1/recipes/line/scores?limit=40")
        assert len(d["calibration"]) == 30 and len(d["recent"]) == 40, d
        assert abs(d["threshold"] - sens["threshold"]) < 1e-6 * sens["threshold"], (d, sens)
        assert d["false_alarm_rate"] == 0.2 and not d["fixed"], d
        assert call(port, "GET", "/api/v1/recipes/nosuch/scores")[0] == 404
        assert call(port, "GET", "/api/v1/recipes/line/scores?limit=0")[0] == 400
        # and none of it trained anything
        assert get(port, "/api/v1/train")["runs"] == runs
        con = sqlite3.connect(db)
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 1
        con.close()

        # a bank file without calibration scores (made before they were kept) is recalibrated
        # on the frames its model scored as normal when it is loaded, and follows the rate too
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        strip_tensor(bank, "calibration")
        assert "calibration" not in tensors(bank)
        proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
        wait_for(lambda: "recalibrated on" in open(log.name).read(), 120, "the recalibration")
        s, j = put(port, "line", {"false_alarm_rate": 0.4})
        assert s == 200, (s, j)
        sens = in_force(lambda x: x["false_alarm_rate"] == 0.4)
        d = get(port, "/api/v1/recipes/line/scores")
        assert len(d["calibration"]) >= 10, d
        loose = flagged_rate(sens["threshold"])
        print("a recalibrated model flags %.3f of the good frames at 0.4" % loose)
        assert 0.1 <= loose <= 0.85, loose
        assert get(port, "/api/v1/train")["runs"] == 0
        # the recalibration is kept in the bank file: a restart finds the same scores and does
        # not recalibrate again
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        kept = tensors(bank)["calibration"]["shape"]
        assert kept[0] >= 10, kept
        proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
        wait_for(lambda: recipe(port).get("sensitivity", {}).get("false_alarm_rate") == 0.4, 60,
                 "the model after a restart")
        again = recipe(port)["sensitivity"]
        assert abs(again["threshold"] - sens["threshold"]) < 1e-6 * sens["threshold"], \
            (again, sens)
        assert open(log.name).read().count("recalibrated on") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        if sys.exc_info()[0] is not None:
            log.seek(0)
            print(log.read()[-6000:])
    assert rc == 0, rc
    shutil.rmtree(tmp)
    print("test_sensitivity: ok")


if __name__ == "__main__":
    main()
