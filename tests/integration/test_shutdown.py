"""test_shutdown.py — stopping the daemon loses nothing and is always clean.

SIGTERM during start-up (from the moment the process blocks its stop signals, then at several
points of the start-up) ends in the clean stop, exit 0, never in death by the signal (-15).

SIGTERM while the line runs: every frame stored has its verdict in the database, and every verdict
reached before the stop has left the daemon: on MQTT (Debian's mosquitto broker on loopback, a
mosquitto_sub subscriber) and to a webhook (a receiver on loopback) or, for what the receiver had
not taken yet, in the webhook's outbox, which the next start delivers from. The camera runs fast
and no model exists, so the last frames' verdicts ('unscored', no_model) are reached during the
stop itself. Python standard library only."""
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
MOSQUITTO = "/usr/sbin/mosquitto"

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
[trainer]
enabled = false
{line}
[camera.line]
driver = synthetic
fps = {fps}
width = 64
height = 64
seed = 3
"""

LINE = """[mqtt]
host = 127.0.0.1
port = {mqtt}
client_id = inspectd-shutdown-test
[webhook.mes]
url = http://127.0.0.1:{hook}/hook
events = result
timeout_ms = 2000
"""


def write_config(tmp, name, db, fps, line=""):
    conf = os.path.join(tmp, name + ".conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=free_port(), db=db, fps=fps, line=line))
    return conf


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def stop_signals_blocked(pid):
    """True while the main thread blocks SIGTERM: from the earliest moment a stop can be clean
    until the daemon waits for it (sigtimedwait shows the signals it waits for unblocked)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)) != 0
    except OSError:
        pass
    return False


def check_stop_during_start_up(tmp):
    for delay in (0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4):
        db = os.path.join(tmp, "start-%d.db" % int(delay * 1000))
        conf = write_config(tmp, "start", db, 20)
        log = open(os.path.join(tmp, "start.log"), "w+")
        d = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
        try:
            deadline = time.time() + 60
            while not stop_signals_blocked(d.pid) and d.poll() is None:
                assert time.time() < deadline, "the stop signals are never blocked"
                time.sleep(0.001)
            assert d.poll() is None, "exit %d before the stop signals were blocked" % d.returncode
            time.sleep(delay)
            d.send_signal(signal.SIGTERM)
            rc = d.wait(timeout=120)
        finally:
            if d.poll() is None:
                d.kill()
                d.wait()
        log.seek(0)
        text = log.read()
        assert rc == 0, "SIGTERM %.0f ms into start-up: exit %d\n%s" % (delay * 1000, rc, text)
        assert "stopped cleanly" in text, text
    print("SIGTERM during start-up: a clean stop, exit 0, at 7 points of the start-up")


class Receiver(http.server.ThreadingHTTPServer):
    """Takes every POST (200) and keeps its body."""

    def __init__(self):
        self.bodies, self.lock = [], threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.bodies.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_broker(tmp):
    port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    log = open(os.path.join(tmp, "mosquitto.log"), "w")
    broker = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=log, stderr=log)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(listening, 60, "the broker to listen")
    return broker, port


def mqtt_frame_ids(path):
    with open(path) as f:
        return [json.loads(line)["frame_id"] for line in f if line.startswith("{")]


def wait_subscribed(mqtt, sub_path):
    """Until the subscriber is in: a marker (not JSON, so no result to mqtt_frame_ids) is published
    on the results topic until it shows in sub_path."""
    def marker_seen():
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt), "-q", "1", "-t",
                        "inspectd/line/result", "-m", "subscribed"], check=True, timeout=60)
        time.sleep(0.2)
        with open(sub_path) as f:
            return "subscribed" in f.read()
    wait_for(marker_seen, 120, "the subscriber to be in")


def check_nothing_lost(tmp):
    broker, mqtt = start_broker(tmp)
    receiver = Receiver()
    sub_path = os.path.join(tmp, "sub.txt")
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt), "-q", "1",
                            "-t", "inspectd/line/result", "-i", "shutdown-sub"],
                           stdout=open(sub_path, "w"), stderr=subprocess.STDOUT)
    db = os.path.join(tmp, "line.db")
    line = LINE.format(mqtt=mqtt, hook=receiver.server_address[1])
    conf = write_config(tmp, "line", db, 100, line)
    log = open(os.path.join(tmp, "line.log"), "w+")
    daemons = []
    try:
        wait_subscribed(mqtt, sub_path)  # before the first result
        d = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
        daemons.append(d)
        wait_for(lambda: os.path.exists(sub_path) and len(mqtt_frame_ids(sub_path)) >= 50, 120,
                 "results on MQTT")
        time.sleep(1)
        d.send_signal(signal.SIGTERM)
        rc = d.wait(timeout=120)
        log.seek(0)
        assert rc == 0, log.read()
        con = sqlite3.connect(db)
        start = con.execute("SELECT frame_id FROM verdicts_start").fetchone()[0]
        frames = [r[0] for r in con.execute("SELECT id FROM frames WHERE id > ? ORDER BY id",
                                            (start,))]
        verdicts = [r[0] for r in con.execute("SELECT frame_id FROM verdicts ORDER BY id")]
        outbox = [json.loads(r[0])["data"]["frame_id"] for r in
                  con.execute("SELECT body FROM webhook_outbox WHERE kind = 'result' ORDER BY id")]
        con.close()
        assert sorted(verdicts) == frames, "%d frames stored, %d verdicts" % (len(frames),
                                                                             len(verdicts))
        # the subscriber has everything the broker got once its count stops changing
        last = -1
        while last != len(mqtt_frame_ids(sub_path)):
            last = len(mqtt_frame_ids(sub_path))
            time.sleep(0.5)
        published = mqtt_frame_ids(sub_path)
        missing = sorted(set(verdicts) - set(published))
        assert not missing, "%d of %d verdicts never published on MQTT (the last: %s)" % (
            len(missing), len(verdicts), missing[-5:])
        assert len(published) == len(verdicts), "a verdict published twice"
        with receiver.lock:
            delivered = [b["data"]["frame_id"] for b in receiver.bodies]
        kept = delivered + outbox
        missing = sorted(set(verdicts) - set(kept))
        assert not missing, "%d of %d verdicts neither delivered to the webhook nor in its " \
            "outbox (the last: %s)" % (len(missing), len(verdicts), missing[-5:])
        print("SIGTERM at 100 fps: %d frames, %d verdicts, all %d on MQTT, webhook %d delivered "
              "+ %d in the outbox" % (len(frames), len(verdicts), len(published), len(delivered),
                                      len(outbox)))
    finally:
        for d in daemons:
            if d.poll() is None:
                d.kill()
                d.wait()
        sub.terminate()
        sub.wait()
        broker.kill()
        broker.wait()
        receiver.shutdown()


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-shutdown-")
    check_stop_during_start_up(tmp)
    check_nothing_lost(tmp)
    print("test_shutdown: OK")


if __name__ == "__main__":
    main()
