"""A real daemon capturing from Aravis's fake GigE Vision camera (run by this test on loopback) with
nothing but `driver = aravis` and `device = Aravis-Fake-GV01`: frames reach the database; the camera
is stopped mid-stream and /readyz turns 503 with the camera in error while /healthz and the API keep
answering; the camera is started again and the daemon recovers by itself (ready, frames stored
again); SIGTERM ends it cleanly."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from fakecam import DEVICE_ID, FakeCamera  # noqa: E402
from testlib import START_S, free_port  # noqa: E402

BIN = os.environ.get("INSPECTD_BIN", "build/inspectd")


def get(port, path):
    """(status, parsed JSON) of a GET; raises if the daemon does not answer within 2 s."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stored(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
        return c.execute("SELECT count(*) FROM frames").fetchone()[0]


def wait_for(what, cond, port, seconds):
    """Polls cond() every 0.2 s for up to `seconds`, checking that /healthz answers each time."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        assert get(port, "/healthz")[0] == 200, "/healthz stopped answering"
        if cond():
            return time.monotonic() - t0
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def main():
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, FakeCamera() as fake:
        db = os.path.join(tmp, "inspectd.db")
        conf = os.path.join(tmp, "inspectd.conf")
        with open(conf, "w") as f:
            f.write(f"[http]\nlisten = 127.0.0.1:{port}\n[store]\npath = {db}\n"
                    f"[trainer]\nenabled = false\n"
                    f"[camera.line1]\ndriver = aravis\ndevice = {DEVICE_ID}\n")
        daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            def ready():
                return get(port, "/readyz")[0] == 200

            def camera_state():
                return get(port, "/readyz")[1]["cameras"][0]["state"]

            time.sleep(0.5)
            wait_for("ready with the camera streaming", ready, port, 30)
            first = stored(db)
            wait_for("frames stored", lambda: stored(db) > first, port, START_S)

            fake.stop()
            t = wait_for("/readyz 503 after the camera stopped", lambda: not ready(), port, 30)
            print(f"camera stopped: /readyz 503 after {t:.1f} s ({camera_state()})")
            t = wait_for("the camera reported lost", lambda: camera_state() == "error", port, 30)
            status, body = get(port, "/api/v1/status")
            assert status == 200 and body["cameras"][0]["source_errors"] >= 1, body
            print(f"camera in error {t:.1f} s later: {body['cameras'][0]['last_error']}")
            held = stored(db)
            time.sleep(1)
            assert get(port, "/readyz")[0] == 503

            fake.start()
            t = wait_for("ready again after the camera came back", ready, port, 60)
            wait_for("frames stored again", lambda: stored(db) > held, port, START_S)
            print(f"camera restarted: ready again after {t:.1f} s, {stored(db)} frames stored")
            assert camera_state() == "streaming"
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                out, _ = daemon.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                out, _ = daemon.communicate()
            print(out[-3000:], end="")
        assert daemon.returncode == 0, daemon.returncode
    print("ok")


if __name__ == "__main__":
    main()
