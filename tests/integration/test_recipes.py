"""test_recipes.py — a model per recipe: two synthetic cameras making different products (a square
plate and a disc), each with its own recipe ([camera.X] recipe, [recipe.NAME] falling back to
[trainer]). The trainer serves them one run at a time and each recipe's model is trained on its
own camera's frames only; each then flags its own defects, and a good disc scored against the
plate's model is far from that model's normal. A camera's recipe switched at runtime
(POST /api/v1/cameras/{name}/recipe): the frames before and after are scored by their own
recipe's model, the switch outlives a restart, and a reload that changes the camera's recipe in
the file ends it. GET /api/v1/recipes, the recipes of /api/v1/status, /api/v1/models and
/api/v1/alerts. Python standard library only."""
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
TOKEN = "recipes-test-token"

CONFIG = """[http]
listen = 127.0.0.1:{port}
token = {token}
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[trainer]
enabled = true
min_frames = 100
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
max_images = 100
[recipe.plate]
number = 7
[camera.top]
driver = synthetic
recipe = plate
fps = 10
width = 64
height = 64
shape = square
defect_rate = {rate}
seed = 1
[camera.side]
driver = synthetic
{side_recipe}fps = 10
width = 64
height = 64
shape = disc
defect_rate = {rate}
seed = 2
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


def post_json(port, path, obj):
    return call(port, "POST", path, json.dumps(obj), {"Content-Type": "application/json"})


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


def write_config(conf, port, db, rate, side_recipe=""):
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, token=TOKEN, db=db, rate=rate,
                              side_recipe="recipe = %s\n" % side_recipe if side_recipe else ""))


def recipes(port):
    return {r["name"]: r for r in get(port, "/api/v1/recipes")["recipes"]}


def metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


def query(db, sql, *args):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def start(conf, log):
    return subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "daemon did not stop cleanly"


def scored_since(db, recipe, after):
    """(defect, flagged, score_norm) of the frames of recipe after frame id `after`, scored by the
    recipe's model."""
    return query(db, "SELECT f.defect, r.flagged, r.score_norm FROM frames f "
                     "JOIN recipes rc ON rc.id = f.recipe_id JOIN results r ON r.frame_id = f.id "
                     "AND r.model_id = rc.model_id WHERE rc.name = ? AND f.id > ?", recipe, after)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-recipes-")
    db = os.path.join(tmp, "line.db")
    conf = os.path.join(tmp, "inspectd.conf")
    port = free_port()
    write_config(conf, port, db, rate=0)
    log = open(os.path.join(tmp, "run.log"), "w+")
    proc = start(conf, log)
    try:
        # 1. good products only: each recipe gets its first model, one run at a time
        wait_for(lambda: len(recipes(port)) == 2, 60, "both recipes")
        r = recipes(port)
        assert r["plate"]["cameras"] == ["top"] and r["side"]["cameras"] == ["side"], r
        assert r["plate"]["number"] == 7 and "number" not in r["side"], r
        wait_while_training(lambda: all(x["state"] == "scoring" for x in recipes(port).values()),
                            proc.pid, "a model of each recipe")
        r = recipes(port)
        status = get(port, "/api/v1/status")
        assert status["model"]["state"] == "scoring", status
        assert {c["name"]: c["recipe"] for c in status["cameras"]} == \
            {"top": "plate", "side": "side"}, status["cameras"]
        assert {x["name"]: x["model"] for x in status["recipes"]} == \
            {n: x["model"] for n, x in r.items()}, status["recipes"]
        models = get(port, "/api/v1/models")
        by_version = {m["version"]: m for m in models["models"]}
        plate, side = by_version[r["plate"]["model"]], by_version[r["side"]["model"]]
        assert plate["recipe"] == "plate" and side["recipe"] == "side", models
        assert plate["version"] != side["version"]
        assert models["active"] == plate["id"], models  # the default recipe: the first camera's
        # each model learnt from its own camera's frames only
        for m, camera, recipe in ((plate, "top", "plate"), (side, "side", "side")):
            path = query(db, "SELECT path FROM models WHERE id = ?", m["id"])[0][0]
            assert os.path.basename(path).startswith(recipe + "@"), path
            meta = metadata(path)
            assert "(recipe %s, camera any" % recipe in meta["source"], meta["source"]
            cams = query(db, "SELECT DISTINCT c.name FROM frames f JOIN cameras c ON "
                             "c.id = f.camera_id JOIN recipes rc ON rc.id = f.recipe_id "
                             "WHERE rc.name = ?", recipe)
            assert cams == [(camera,)], (recipe, cams)
            assert 0 < m["frames_used"] <= 100, m
        training = get(port, "/api/v1/train")
        assert training["runs"] == 2, training

        # 2. defects on both lines (a reload: the cameras restart with the new rate); each
        # recipe's model flags its own defects
        last = query(db, "SELECT max(id) FROM frames")[0][0]
        write_config(conf, port, db, rate=0.3)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded " + conf in open(log.name).read(), 30, "the reload")

        def enough():
            return all(len(scored_since(db, n, last)) >= 150 for n in ("plate", "side"))
        wait_for(enough, 600, "150 scored frames of each recipe")
        for name in ("plate", "side"):
            rows = scored_since(db, name, last)
            bad = [f for d, f, _ in rows if d and d != "none"]
            good = [f for d, f, _ in rows if d == "none"]
            bad_rate, good_rate = sum(bad) / len(bad), sum(good) / len(good)
            print("recipe %s: flagged %.2f of %d defect frames, %.3f of %d good frames" %
                  (name, bad_rate, len(bad), good_rate, len(good)))
            assert bad_rate > good_rate + 0.25, (name, bad_rate, good_rate)
        alerts = get(port, "/api/v1/alerts?limit=50")["alerts"]
        assert alerts and all(a["recipe"] == {"top": "plate", "side": "side"}[a["camera"]]
                              for a in alerts), alerts[:3]
        # the review page's recipe filter
        plate_alerts = get(port, "/api/v1/alerts?limit=50&recipe=plate")["alerts"]
        assert plate_alerts and all(a["recipe"] == "plate" for a in plate_alerts), plate_alerts[:3]
        assert call(port, "GET", "/api/v1/alerts?recipe=a%20b")[0] == 400
        assert get(port, "/api/v1/alerts?recipe=nosuch")["alerts"] == []
        s, tar = call(port, "GET", "/api/v1/export?recipe=side&state=new")
        assert s == 200 and b"manifest.jsonl" in tar, s

        # 3. a good disc against the plate's model is far from its normal; against its own, not
        goods = query(db, "SELECT f.id FROM frames f JOIN cameras c ON c.id = f.camera_id "
                          "WHERE c.name = 'side' AND f.defect = 'none' AND f.id > ? "
                          "ORDER BY f.id LIMIT 8", last)
        own, cross = [], []
        for (fid,) in goods:
            status_, image = call(port, "GET", "/api/v1/frames/%d/image" % fid)
            assert status_ == 200, status_
            for recipe, out in (("side", own), ("plate", cross)):
                s, v = call(port, "POST", "/api/v1/score?recipe=" + recipe, image,
                            {"Content-Type": "image/jpeg"})
                assert s == 200 and v["recipe"] == recipe, (s, v)
                out.append(v["score_norm"])
        own_mean, cross_mean = sum(own) / len(own), sum(cross) / len(cross)
        print("a good disc: score_norm %.2f against its recipe's model, %.2f against the "
              "plate's" % (own_mean, cross_mean))
        assert cross_mean > 2 * own_mean and min(cross) > 1, (own, cross)
        s, v = call(port, "POST", "/api/v1/score?recipe=nosuch", image,
                    {"Content-Type": "image/jpeg"})
        assert s == 503, (s, v)

        # 4. the side camera switched to the plate recipe: from its next frame, its frames are
        # the plate's and the plate's model scores them
        s, j = post_json(port, "/api/v1/cameras/side/recipe", {"recipe": "nosuch"})
        assert s == 404, (s, j)
        s, j = post_json(port, "/api/v1/cameras/nosuch/recipe", {"recipe": "plate"})
        assert s == 404, (s, j)
        s, j = post_json(port, "/api/v1/cameras/side/recipe", {"recipe": 3})
        assert s == 400, (s, j)
        s, j = call(port, "POST", "/api/v1/cameras/side/recipe", json.dumps({"recipe": "plate"}),
                    {"Content-Type": "application/json", "Authorization": ""})
        assert s == 401, (s, j)
        before = query(db, "SELECT max(id) FROM frames")[0][0]
        s, j = post_json(port, "/api/v1/cameras/side/recipe", {"recipe": "plate"})
        switched_us = int(time.time() * 1e6)
        assert s == 200 and j == {"camera": "side", "recipe": "plate"}, (s, j)
        assert recipes(port)["plate"]["cameras"] == ["top", "side"], recipes(port)

        def side_frames_as_plate():
            return query(db, "SELECT count(*) FROM frames f JOIN cameras c ON c.id = f.camera_id "
                             "JOIN recipes rc ON rc.id = f.recipe_id JOIN results r ON "
                             "r.frame_id = f.id WHERE c.name = 'side' AND rc.name = 'plate'")[0][0]
        wait_for(lambda: side_frames_as_plate() >= 20, 300, "the side camera's frames as plate")
        rows = query(db, "SELECT f.id, f.captured_at, rc.name, m.version FROM frames f JOIN "
                         "cameras c ON c.id = f.camera_id JOIN recipes rc ON rc.id = f.recipe_id "
                         "JOIN results r ON r.frame_id = f.id JOIN models m ON m.id = r.model_id "
                         "WHERE c.name = 'side' AND f.id > ?", last)
        switched = [fid for fid, _, recipe, _ in rows if recipe == "plate"]
        assert switched and min(switched) > before, (before, switched[:3])
        for fid, captured, recipe, version in rows:
            # each frame is scored by the model of the recipe it was captured for
            want = plate["version"] if recipe == "plate" else side["version"]
            assert version == want, (fid, recipe, version)
            # and that is side's before the switch, plate's once it returned
            if fid <= before:
                assert recipe == "side", (fid, recipe)
            if captured > switched_us:
                assert recipe == "plate", (fid, captured, switched_us, recipe)

        # 5. the switch outlives a restart ...
        stop(proc)
        proc = start(conf, log)
        wait_for(lambda: {c["name"]: c["recipe"] for c in get(port, "/api/v1/status")["cameras"]}
                 == {"top": "plate", "side": "plate"}, 60, "the switch after a restart")
        # ... until a reload changes the camera's recipe in the file
        write_config(conf, port, db, rate=0.3, side_recipe="disc")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: {c["name"]: c["recipe"] for c in get(port, "/api/v1/status")["cameras"]}
                 == {"top": "plate", "side": "disc"}, 60, "the file's recipe after a reload")
        assert query(db, "SELECT recipe FROM cameras WHERE name = 'side'") == [(None,)]
        r = recipes(port)
        assert r["disc"]["state"] in ("learning", "training") and r["disc"]["model"] is None, r
        # nothing trained but the two first models (disc waits for its min_frames)
        assert get(port, "/api/v1/train")["runs"] <= 3
    finally:
        if proc.poll() is None:
            stop(proc)
        log.seek(0)
        text = log.read()
        if sys.exc_info()[0] is not None:
            print(text[-6000:])
    shutil.rmtree(tmp)
    print("test_recipes: ok")


if __name__ == "__main__":
    main()
