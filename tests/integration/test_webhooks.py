"""test_webhooks.py — webhooks against receivers on loopback: one that refuses (503) its first
requests gets every event afterwards, in order, each with a valid X-Inspectd-Signature (the
HMAC-SHA256 of the body); events a receiver did not take survive a restart of the daemon in the
outbox and arrive after it; a receiver that never answers does not hold up capture or the other
receiver. Bad [webhook.NAME] keys exit 78. Python standard library only."""
import hashlib
import hmac
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
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
SECRET = "s3cret-of-the-mes"

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
[trainer]
enabled = false
[webhook.mes]
url = http://127.0.0.1:{mes}/hook
events = result, alert
secret = {secret}
timeout_ms = 5000
[webhook.stuck]
url = http://127.0.0.1:{stuck}/never
events = result
timeout_ms = 300
[camera.line]
driver = synthetic
fps = 10
frames = {frames}
width = 64
height = 64
seed = {seed}
"""


class Receiver(http.server.ThreadingHTTPServer):
    """Answers 503 to its first `refuse` requests (and to every one while closed), 200 after;
    keeps what it took: (headers, body)."""

    def __init__(self, refuse):
        self.refuse, self.seen, self.taken, self.closed = refuse, 0, [], False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv = self.server
        with srv.lock:
            srv.seen += 1
            ok = srv.seen > srv.refuse and not srv.closed
            if ok:
                srv.taken.append((dict(self.headers), body))
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Silent:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return


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


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
        return json.loads(r.read())


def start(tmp, db, mes, stuck, frames, seed):
    port = free_port()
    conf = os.path.join(tmp, "run-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, mes=mes, stuck=stuck, frames=frames, seed=seed,
                              secret=SECRET))
    log = open(os.path.join(tmp, "run-%d.log" % seed), "w+")
    return subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log), port


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0, "daemon did not stop cleanly"


def results(recv):
    with recv.lock:
        taken = list(recv.taken)
    out = []
    for headers, body in taken:
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Inspectd-Signature"] == sig, (headers, body[:80])
        event = json.loads(body)
        assert headers["X-Inspectd-Event"] == event["event"], headers
        if event["event"] == "result":
            out.append(event["data"])
    return out


def verdict_ids(db, after=0):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return [i for (i,) in con.execute("SELECT id FROM verdicts WHERE id > ? ORDER BY id",
                                          (after,))]
    finally:
        con.close()


def check_bad_config(tmp):
    for body, what in (("url = ftp://x/\n", "url"), ("url = http://x/\nevents = alerts\n",
                                                     "events"),
                       ("events = alert\n", "no url"), ("url = http://x/\ncolour = 1\n",
                                                        "unknown key")):
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[webhook.a]\n" + body + "[camera.a]\ndriver = synthetic\n")
        r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 78 and what in r.stderr and "bad.conf" in r.stderr, (body, r)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-webhooks-")
    db = os.path.join(tmp, "line.db")
    check_bad_config(tmp)
    mes, silent = Receiver(refuse=3), Silent()

    # 1. refused three times, then every result arrives, in order, signed; the silent receiver
    # holds up nothing
    daemon, port = start(tmp, db, mes.server_address[1], silent.port, 60, 1)
    try:
        wait_for(lambda: get(port, "/api/v1/status")["database"]["frames_stored"] >= 1, 120,
                 "the first frame")
        wait_for(lambda: len(verdict_ids(db)) >= 60, 300, "60 verdicts")
        wait_for(lambda: len(results(mes)) >= 60, 300, "60 deliveries")
        got = results(mes)
        assert [r["id"] for r in got] == verdict_ids(db), "not every result, or out of order"
        assert all(r["verdict"] == "unscored" for r in got)
        st = get(port, "/api/v1/status")
        cam = st["cameras"][0]
        assert cam["frames_stored"] == 60 and cam["frames_dropped"] == 0, cam
        hooks = {h["name"]: h for h in st["line"]["webhooks"]}
        assert hooks["mes"]["failures"] >= 3 and hooks["mes"]["delivered"] == 60, hooks
        assert hooks["stuck"]["failing"] and hooks["stuck"]["delivered"] == 0, hooks
        assert hooks["stuck"]["pending"] >= 1, hooks
    finally:
        stop(daemon)

    # 2. the receiver is down across a restart: what it missed waits in the outbox, then arrives
    with mes.lock:
        mes.closed = True
    last = verdict_ids(db)[-1]
    daemon, port = start(tmp, db, mes.server_address[1], silent.port, 20, 2)
    try:
        wait_for(lambda: len(verdict_ids(db, last)) >= 20, 300, "20 more verdicts")
        con = sqlite3.connect(db)
        wait_for(lambda: con.execute("SELECT count(*) FROM webhook_outbox WHERE hook = 'mes'")
                 .fetchone()[0] >= 20, 120, "20 events in the outbox")
        con.close()
    finally:
        stop(daemon)
    con = sqlite3.connect(db)
    waiting = con.execute("SELECT count(*) FROM webhook_outbox WHERE hook = 'mes'").fetchone()[0]
    con.close()
    assert waiting >= 20, waiting
    with mes.lock:
        mes.closed = False
    daemon, port = start(tmp, db, mes.server_address[1], silent.port, 10, 3)
    try:
        wait_for(lambda: len(verdict_ids(db, last)) >= 30, 300, "10 more verdicts")
        wait_for(lambda: len(results(mes)) >= 90, 300, "90 deliveries in all")
        got = results(mes)
        assert [r["id"] for r in got] == verdict_ids(db), "lost or out of order over a restart"
    finally:
        stop(daemon)
    silent.sock.close()
    mes.shutdown()
    print("test_webhooks: ok")


if __name__ == "__main__":
    main()
