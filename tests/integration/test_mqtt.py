"""test_mqtt.py — the MQTT output against Debian's real broker: `mosquitto` started on a loopback
port and `mosquitto_sub` subscribed to everything. Every frame's verdict arrives once on
inspectd/CAMERA/result as one JSON line, from the first frames on (unscored before any model),
then ok / ng as the database says once a model scores; flagged parts also on .../alert at QoS 1;
a model registered while the daemon runs on inspectd/model; a part id sent to .../part/set rides
on a frame; the retained inspectd/status is online, and offline (the last will) once the daemon is
killed. The broker killed mid-run and started again: no frame is lost from the database, the
daemon reconnects and publishes again. A broker that is not there does not stop the daemon from
starting, capturing or being ready; bad [mqtt] keys exit 78. Python standard library only."""
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
MOSQUITTO = "/usr/sbin/mosquitto"

CONFIG = """[http]
listen = 127.0.0.1:{port}
public_url = http://line-pc.example:8080/
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[trainer]
enabled = false
[mqtt]
host = 127.0.0.1
port = {mqtt}
client_id = inspectd-test-{seed}
{mqtt_extra}
[recipe.other]
number = 7
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = 64
height = 64
defect_rate = {rate}
seed = {seed}
"""


class Broker:
    """mosquitto on 127.0.0.1:port, no persistence, anonymous."""

    def __init__(self, tmp, port):
        self.port = port
        self.conf = os.path.join(tmp, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
        self.log = open(os.path.join(tmp, "mosquitto.log"), "a")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=self.log,
                                     stderr=self.log)
        wait_for(self.listening, 60, "the broker to listen")

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


MARKER_TOPIC = "inspectd/test/subscribed"


class Subscriber:
    """mosquitto_sub on every topic under inspectd/ at QoS 1: (topic, qos, retained, payload)."""

    def __init__(self, tmp, port, name):
        self.path = os.path.join(tmp, name + ".txt")
        self.out = open(self.path, "w")
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", "inspectd/#",
             "-F", "%t\t%q\t%r\t%p", "-i", "test-" + name], stdout=self.out,
            stderr=subprocess.STDOUT)
        self.wait_in(port)

    def wait_in(self, port):
        """Until the subscription holds (a result published before it would never reach this
        subscriber): a marker on a topic no check reads, published until it comes back."""
        def marker_seen():
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t",
                            MARKER_TOPIC, "-m", "in"], check=True, timeout=60)
            time.sleep(0.2)
            return any(t == MARKER_TOPIC for t, q, r, p in self.messages())
        wait_for(marker_seen, 120, "the subscriber to be in")

    def messages(self):
        with open(self.path) as f:
            rows = [l.rstrip("\n").split("\t", 3) for l in f if l.count("\t") >= 3]
        return [(t, int(q), r == "1", p) for t, q, r, p in rows]

    def results(self, camera="line"):
        return [json.loads(p) for t, q, r, p in self.messages() if t == "inspectd/%s/result"
                % camera]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.out.close()


def retained_status(port):
    r = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t",
                        "inspectd/status", "-C", "1", "-W", "20"], capture_output=True,
                       text=True, timeout=60)
    return json.loads(r.stdout) if r.stdout.strip() else None


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


def start(tmp, db, mqtt, frames, fps, seed, rate, mqtt_extra=""):
    port = free_port()
    conf = os.path.join(tmp, "run-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, mqtt=mqtt, frames=frames, fps=fps, seed=seed,
                              rate=rate, mqtt_extra=mqtt_extra))
    log = open(os.path.join(tmp, "run-%d.log" % seed), "w+")
    return subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log), port, log


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
        body = r.read()
        return json.loads(body) if path.startswith("/api") else body.decode()


def status(port):
    return get(port, "/api/v1/status")


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0, "daemon did not stop cleanly"


def verdicts(db):
    con = sqlite3.connect(db)
    rows = {f: v for f, v in con.execute("SELECT frame_id, verdict FROM verdicts")}
    con.close()
    return rows


def check_bad_config(tmp, broker_port):
    for body, what in (("port = 0\n", "port"), ("qos_results = 3\n", "qos_results"),
                       ("topic_prefix = plant/#\n", "topic_prefix"), ("hots = x\n", "unknown key"),
                       ("cert_file = /c.pem\n", "key_file")):
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[mqtt]\nhost = 127.0.0.1\n" + body + "[camera.a]\ndriver = synthetic\n")
        r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 78 and what in r.stderr and "bad.conf" in r.stderr, (body, r)
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write("[mqtt]\nhost = 127.0.0.1\npassword_file = %s/none\n[camera.a]\ndriver = "
                "synthetic\n" % tmp)
    r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "password_file" in r.stderr, r


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-mqtt-")
    db = os.path.join(tmp, "line.db")
    broker = Broker(tmp, free_port())
    check_bad_config(tmp, broker.port)
    try:
        # 1. no model: every frame's verdict (unscored) arrives once, a part id rides on a frame
        sub = Subscriber(tmp, broker.port, "first")
        daemon, port, log = start(tmp, db, broker.port, 80, 10, 1, 0.0)
        try:
            wait_for(lambda: status(port)["line"]["mqtt"]["state"] == "connected", 120,
                     "the connection")
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
                            "inspectd/line/part/set", "-m", '{"part_id": "MQ-0042"}'],
                           check=True, timeout=30)
            wait_for(lambda: len(verdicts(db)) >= 30, 300, "30 verdicts")
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
                            "inspectd/line/recipe/set", "-m", '{"recipe": "other"}'],
                           check=True, timeout=30)
            wait_for(lambda: len(verdicts(db)) >= 50, 300, "50 verdicts")
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-t",
                            "inspectd/line/recipe/set", "-m", '{"recipe": "line"}'],
                           check=True, timeout=30)
            wait_for(lambda: len(verdicts(db)) >= 80, 300, "80 verdicts")
            wait_for(lambda: len(sub.results()) >= 80, 120, "80 result messages")
            time.sleep(1.0)
            res = sub.results()
            db_rows = verdicts(db)
            assert sorted(r["frame_id"] for r in res) == sorted(db_rows), "not once per frame"
            for r in res:
                for k in ("frame_id", "part_id", "camera", "captured_at", "verdict", "reason",
                          "score", "score_norm", "threshold", "model"):
                    assert k in r, (k, r)
                assert r["verdict"] == "unscored" and r["reason"] == "no_model", r
                assert r["recipe"] in ("line", "other"), r
                assert r["score"] is None and r["camera"] == "line", r
                assert r["links"]["image"].startswith("http://line-pc.example:8080/api/v1/"), r
            lines = [p for t, q, rt, p in sub.messages() if t.endswith("/result")]
            assert all("\n" not in p and json.loads(p) for p in lines)
            assert sum(r["part_id"] == "MQ-0042" for r in res) == 1, [r["part_id"] for r in res]
            recipes = "".join("o" if r["recipe"] == "other" else "l"
                              for r in sorted(res, key=lambda r: r["frame_id"]))
            assert re.fullmatch(r"l+o+l+", recipes), recipes  # switched there and back over MQTT
            st = status(port)["line"]["mqtt"]
            assert st["dropped"] == 0 and st["received"] >= 1, st
            assert "inspectd_mqtt_connected 1" in get(port, "/metrics")
            assert retained_status(broker.port) == {"state": "online"}
        finally:
            stop(daemon)
        assert retained_status(broker.port) == {"state": "offline"}  # a clean stop says so
        sub.stop()

        # 2. a model: ok / ng as the database says; alerts at QoS 1; a new model on .../model
        r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "m1.safetensors"),
                            "--register", "--recipe", "line", *tiny_train()],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        sub = Subscriber(tmp, broker.port, "scored")
        daemon, port, log = start(tmp, db, broker.port, 100, 10, 2, 0.3)
        try:
            wait_for(lambda: status(port)["line"]["mqtt"]["state"] == "connected", 120,
                     "the connection")
            wait_for(lambda: len(verdicts(db)) >= 180, 300, "180 verdicts")
            r = subprocess.run([BIN, "train", "--db", db, "--out",
                                os.path.join(tmp, "m2.safetensors"), "--register", "--recipe",
                                "line", *tiny_train()], capture_output=True, text=True,
                               timeout=900)
            assert r.returncode == 0, r.stderr
            wait_for(lambda: any(t == "inspectd/model" for t, q, rt, p in sub.messages()), 120,
                     "the model message")
            wait_for(lambda: len(sub.results()) >= 100, 120, "100 result messages")
            time.sleep(1.0)
            db_rows = verdicts(db)
            res = sub.results()
            assert len(res) == len(set(r["frame_id"] for r in res)) == 100, len(res)
            for r in res:
                assert r["verdict"] == db_rows[r["frame_id"]], (r, db_rows[r["frame_id"]])
                assert r["verdict"] in ("ok", "ng") and r["score"] > 0 and r["model"], r
            ng = {r["frame_id"] for r in res if r["verdict"] == "ng"}
            alerts = [(json.loads(p), q) for t, q, rt, p in sub.messages()
                      if t == "inspectd/line/alert"]
            assert ng and {a["frame_id"] for a, q in alerts} == ng, (ng, alerts[:2])
            assert all(q == 1 for a, q in alerts), "alerts not at QoS 1"
            assert all(a["links"]["heatmap"].endswith("/heatmap") for a, q in alerts)
            models = [json.loads(p) for t, q, rt, p in sub.messages() if t == "inspectd/model"]
            assert models[-1]["version"] and models[-1]["status"] in ("active", "rejected"), models
        finally:
            daemon.kill()  # SIGKILL: the broker's last will says offline
            daemon.wait()
        wait_for(lambda: retained_status(broker.port) == {"state": "offline"}, 120,
                 "the last will")
        sub.stop()

        # 3. the broker killed mid-run: no frame lost, the daemon reconnects and publishes again
        con = sqlite3.connect(db)
        before = con.execute("SELECT max(id) FROM frames").fetchone()[0]
        con.close()
        daemon, port, log = start(tmp, db, broker.port, 150, 10, 3, 0.0)
        try:
            wait_for(lambda: status(port)["line"]["mqtt"]["connects"] == 1, 120, "connection")
            first = status(port)["database"]["frames_stored"]
            broker.kill()
            wait_for(lambda: status(port)["line"]["mqtt"]["state"] != "connected", 120,
                     "the loss to be seen")
            wait_for(lambda: status(port)["database"]["frames_stored"] >= first + 10, 120,
                     "frames while the broker is down")
            assert get(port, "/readyz") and status(port)["line"]["mqtt"]["queued"] > 0
            broker.start()
            sub = Subscriber(tmp, broker.port, "after")
            wait_for(lambda: status(port)["line"]["mqtt"]["connects"] == 2, 180, "reconnecting")
            wait_for(lambda: len(sub.results()) >= 5, 120, "results after reconnecting")
            wait_for(lambda: status(port)["cameras"][0]["state"] == "ended", 300, "150 frames")
            st = status(port)
            assert st["cameras"][0]["frames_dropped"] == 0, st
        finally:
            stop(daemon)
        sub.stop()
        con = sqlite3.connect(db)
        seqs = [s for (s,) in con.execute("SELECT seq FROM frames WHERE id > ? ORDER BY id",
                                          (before,))]
        assert seqs == list(range(150)), "a frame went missing: %s" % seqs[:10]
        con.close()

        # 4. no broker at all: the daemon starts, captures and is ready; the bounded outbox drops
        # its oldest messages and counts them
        broker.kill()
        daemon, port, log = start(tmp, db, broker.port, 0, 10, 4, 0.0, "max_queued = 20")
        try:
            wait_for(lambda: status(port)["database"]["frames_stored"] > 200, 120, "frames")
            wait_for(lambda: urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port,
                                                    timeout=10).status == 200, 120, "ready")
            wait_for(lambda: status(port)["line"]["mqtt"]["dropped"] > 0, 120, "drops")
            st = status(port)
            assert st["line"]["mqtt"]["state"] != "connected", st["line"]
            assert st["line"]["mqtt"]["queued"] <= 20, st["line"]
            assert st["cameras"][0]["frames_dropped"] == 0, st["cameras"]
            assert re.search(r"^inspectd_mqtt_dropped_total [1-9]", get(port, "/metrics"), re.M)
        finally:
            stop(daemon)
    finally:
        broker.kill()
    print("test_mqtt: ok")


if __name__ == "__main__":
    main()
