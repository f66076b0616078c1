"""test_model_import.py — an outside checkpoint becomes a recipe's model without training:
`inspectd model import FILE --db DB` (a checkpoint `inspectd train` wrote elsewhere, no --register)
copies it to the database's models/imported/, builds its bank from the recipe's recent frames,
calibrates and activates it, and prints it as JSON; `inspectd score` then scores with it. A file
that is no checkpoint is exit 65, an unknown recipe exit 1. Then a running daemon (trainer off, a
token, max_upload far below the checkpoint's size) takes one over POST /api/v1/models: 401 without
the token (413 for a body over max_upload), 415 for another Content-Type, 400 for a body that is no checkpoint, 404 for an unknown
recipe, 201 with the model, which GET /api/v1/models lists as active and the scorer takes up.
Python standard library only."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from dataset_db import capture  # noqa: E402
from testlib import tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
CONFIG = """[http]
listen = 127.0.0.1:0
token_file = {token}
max_upload = 64
[store]
path = {db}
[trainer]
enabled = false
[camera.line]
driver = folder
path = {watch}
mode = watch
"""


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)


def post(port, body, token=None, query="", ctype="application/octet-stream"):
    req = urllib.request.Request("http://127.0.0.1:%d/api/v1/models%s" % (port, query),
                                 data=body, method="POST", headers={"Content-Type": ctype})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        return json.loads(r.read())


def cli(tmp, db, ckpt):
    r = run("model", "import", ckpt, "--db", db)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["status"] == "active" and m["recipe"] == "line" and m["bank_rows"] > 0, m
    assert m["path"] == os.path.join(tmp, "models", "imported", "elsewhere.safetensors"), m
    assert os.path.exists(m["path"].replace(".safetensors", ".bank.safetensors"))
    con = sqlite3.connect(db)
    status, meta = con.execute("SELECT status, meta FROM models WHERE id = ?",
                               (m["id"],)).fetchone()
    model_id = con.execute("SELECT model_id FROM recipes WHERE name = 'line'").fetchone()[0]
    con.close()
    assert status == "active" and model_id == m["id"] and json.loads(meta)["start"] == "import"
    img = os.path.join(tmp, "one.jpg")
    con = sqlite3.connect(db)
    with open(img, "wb") as f:
        f.write(con.execute("SELECT image FROM frames LIMIT 1").fetchone()[0])
    con.close()
    r = run("score", "--db", db, img)
    assert r.returncode == 0 and json.loads(r.stdout)["model"] == m["version"], r.stdout
    # the same file again gets a name of its own; errors
    r = run("model", "import", ckpt, "--db", db)
    assert r.returncode == 0 and json.loads(r.stdout)["path"].endswith("elsewhere-2.safetensors")
    r = run("model", "import", db, "--db", db)
    assert r.returncode == 65, (r.returncode, r.stderr)
    r = run("model", "import", ckpt, "--db", db, "--recipe", "nope")
    assert r.returncode == 1 and "no recipe named 'nope'" in r.stderr, r.stderr
    r = run("model", "import", "--db", db)
    assert r.returncode == 64, r.stderr


def http(tmp, db, ckpt):
    token_file = os.path.join(tmp, "token")
    conf = os.path.join(tmp, "d.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(token=token_file, db=db, watch=os.path.join(tmp, "watch")))
    os.makedirs(os.path.join(tmp, "watch"), exist_ok=True)
    log_path = os.path.join(tmp, "d.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    try:
        port, deadline = None, time.time() + 30
        while port is None:
            assert time.time() < deadline and proc.poll() is None, open(log_path).read()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log_path).read())
            port = int(m.group(1)) if m else time.sleep(0.1)
        with open(token_file) as f:
            token = f.read().strip()
        with open(ckpt, "rb") as f:
            body = f.read()
        assert len(body) > 64 * 1024  # over max_upload: the token lets it through
        assert post(port, body)[0] == 413  # without the token, max_upload holds
        assert post(port, body[:1000])[0] == 401
        assert post(port, body, token, ctype="image/png")[0] == 415
        code, err = post(port, b"not a checkpoint at all", token)
        assert code == 400 and "error" in err, (code, err)
        code, err = post(port, body, token, "?recipe=nope")
        assert code == 404 and "nope" in err["error"], (code, err)
        code, m = post(port, body, token)
        assert code == 201 and m["status"] == "active", (code, m)
        assert "/models/imported/upload-" in m["path"], m
        models = get(port, "/api/v1/models")
        mine = [x for x in models["models"] if x["version"] == m["version"]]
        assert mine and mine[0]["status"] == "active", models
        deadline = time.time() + 30
        while get(port, "/api/v1/status")["scoring"].get("model") != m["version"]:
            assert time.time() < deadline, get(port, "/api/v1/status")["scoring"]
            time.sleep(0.2)
        left = [n for n in os.listdir(os.path.join(tmp, "models", "imported"))
                if n.startswith("upload-")]
        assert len(left) == 2, left  # the registered upload and its bank; the failed ones went
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        log.close()
    assert rc == 0, open(log_path).read()
    return m


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-import-")
    db = os.path.join(tmp, "line.db")
    capture(BIN, tmp, db, 40, rate=0.0)
    images = os.path.join(tmp, "images")
    os.mkdir(images)
    con = sqlite3.connect(db)
    for i, (blob,) in enumerate(con.execute("SELECT image FROM frames LIMIT 20")):
        with open(os.path.join(images, "%02d.jpg" % i), "wb") as f:
            f.write(blob)
    con.close()
    ckpt = os.path.join(tmp, "elsewhere.safetensors")
    r = run("train", "--images", images, "--out", ckpt, *tiny_train(1))
    assert r.returncode == 0, r.stderr
    cli(tmp, db, ckpt)
    m = http(tmp, db, ckpt)
    print("ok: imported on the command line and over HTTP (model %s, bank %d rows)" %
          (m["version"], m["bank_rows"]))


if __name__ == "__main__":
    main()
