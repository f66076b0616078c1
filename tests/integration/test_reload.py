"""test_reload.py — the real `inspectd run` as systemd runs it: NOTIFY_SOCKET is a Unix datagram
socket read here all along (testlib.Notifications) and WATCHDOG_USEC asks for pings every 200 ms.

1. With two streaming cameras and a third one that cannot open (reconnecting with back-off is not
   a stall), WATCHDOG=1 keeps arriving, with no gap near the interval.
2. The config file changes (log level, [trainer], a token, one camera's size, a camera removed,
   one added, and [store] batch_ms, which needs a restart) and SIGHUP: RELOADING=1 then READY=1,
   /api/v1/status shows the new camera list and the trainer enabled, a change over the API needs
   the new token (403 before: no token at all), the log names the restarted camera and the key
   that waits for a restart, and pings go on.
3. A broken file and SIGHUP: refused with FILE:LINE in the log, the daemon keeps running as
   before.
4. SIGTERM, then the database: the camera that was never touched has every sequence number from
   0 on, none missing and none twice, as many as the daemon stored, none dropped; the resized one
   has frames at both sizes; the added one has frames.
Python standard library only."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import START_S, Notifications, free_port, stop_daemon  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
WATCHDOG_USEC = 400000


def get(port, path, token=None, body=None):
    headers = {"Authorization": "Bearer " + token} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
        body = json.dumps(body).encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def pings(messages):
    return [t for t, m in messages if "WATCHDOG=1" in m.split("\n")]


def check_pings(messages, seconds, what):
    times = pings(messages)
    assert len(times) >= seconds / (WATCHDOG_USEC / 2e6) * 0.6, "%s: %d pings in %.1f s" % (
        what, len(times), seconds)
    worst = max(b - a for a, b in zip(times, times[1:]))
    assert worst < 2 * WATCHDOG_USEC / 1e6, "%s: %.2f s without a ping" % (what, worst)
    return len(times), worst


def write_config(path, port, db, missing, reloaded):
    with open(path, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:%d\n" % port)
        if reloaded:
            f.write("token = sesame\n")
        f.write("[store]\npath = %s\nbatch_ms = %d\n" % (db, 25 if reloaded else 20))
        f.write("[trainer]\nenabled = %s\nmin_frames = 100000000\n"
                % ("true" if reloaded else "false"))
        f.write("[log]\nlevel = %s\n" % ("debug" if reloaded else "info"))
        f.write("[camera.steady]\ndriver = synthetic\nfps = 40\nwidth = 160\nheight = 120\n")
        size = (64, 48) if reloaded else (160, 120)
        f.write("[camera.tuned]\ndriver = synthetic\nfps = 20\nwidth = %d\nheight = %d\n" % size)
        if reloaded:
            f.write("[camera.extra]\ndriver = synthetic\nfps = 10\nwidth = 64\nheight = 48\n")
        else:
            f.write("[camera.gone]\ndriver = folder\nmode = watch\npath = %s\n" % missing)


def review(port, token=None):
    """A change (reviewing an alert that does not exist): the token decides before the alert."""
    return get(port, "/api/v1/alerts/999999/review", token, {"verdict": "defect"})[0]


def cameras(status):
    return {c["name"]: c for c in status["cameras"]}


def wait_for(what, predicate, timeout=START_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-reload-")
    proc = notify = None
    log_path = os.path.join(tmp, "stderr.log")
    try:
        port = free_port()
        db = os.path.join(tmp, "inspectd.db")
        conf = os.path.join(tmp, "inspectd.conf")
        write_config(conf, port, db, os.path.join(tmp, "missing"), reloaded=False)
        notify = Notifications(os.path.join(tmp, "notify.sock"))
        env = dict(os.environ, NOTIFY_SOCKET=notify.sock.getsockname(),
                   WATCHDOG_USEC=str(WATCHDOG_USEC))
        env.pop("JOURNAL_STREAM", None)
        log = open(log_path, "w")
        proc = subprocess.Popen([BIN, "run", "--config", conf], stderr=log, env=env)

        # 1. pings while two cameras stream and one reconnects
        wait_for("READY=1", lambda: any("READY=1" in m for _, m in notify.messages))
        status = wait_for("two streaming cameras", lambda: (
            lambda s: s if sum(c["state"] == "streaming" for c in s["cameras"]) == 2 else None)(
            get(port, "/api/v1/status")[1]))
        assert cameras(status)["gone"]["state"] == "error", status
        t0 = time.monotonic()
        notify.collect(3.0)
        n, worst = check_pings(notify.since(t0), 3.0, "before the reload")
        print("watchdog: %d pings in 3 s with a camera reconnecting, longest gap %.2f s"
              % (n, worst))
        before = cameras(get(port, "/api/v1/status")[1])
        assert review(port) == 403  # no token yet: nothing can be changed

        # 2. a new config and SIGHUP
        write_config(conf, port, db, None, reloaded=True)
        t_reload = time.monotonic()
        proc.send_signal(signal.SIGHUP)
        wait_for("READY=1 after the reload",
                 lambda: any("READY=1" in m for _, m in notify.since(t_reload)))
        texts = [m for _, m in notify.since(t_reload)]
        reloading = [i for i, m in enumerate(texts) if "RELOADING=1" in m]
        ready = [i for i, m in enumerate(texts) if "READY=1" in m]
        assert reloading and ready and reloading[0] < ready[0], texts
        assert any("STATUS=reloaded:" in m for m in texts), texts

        assert review(port) == 401  # the token applies at once
        assert review(port, "sesame") == 404
        status = wait_for("the new cameras streaming", lambda: (
            lambda s: s if [c["name"] for c in s["cameras"]] == ["steady", "tuned", "extra"]
            and all(c["state"] == "streaming" for c in s["cameras"]) else None)(
            get(port, "/api/v1/status", "sesame")[1]))
        assert status["training"]["enabled"] is True, status["training"]
        after = cameras(status)
        assert after["steady"]["frames_stored"] > before["steady"]["frames_stored"]
        t1 = time.monotonic()
        notify.collect(2.0)
        check_pings(notify.since(t1), 2.0, "after the reload")
        stored = after["steady"]["frames_stored"]
        time.sleep(0.5)
        assert cameras(get(port, "/api/v1/status", "sesame")[1])["steady"]["frames_stored"] > stored

        with open(log_path) as f:
            text = f.read()
        for needle in ["camera tuned: width, height changed; restarting this camera",
                       "camera gone: no longer in the config; stopping it",
                       "camera extra: added (driver synthetic)",
                       "reloaded %s: applied [log] level, [trainer], [http] token, cameras" % conf,
                       "[store] batch_ms changed, which needs a restart of inspectd"]:
            assert needle in text, "log lacks %r:\n%s" % (needle, text)
        # from the reload on (its first line), nothing happens to the untouched camera
        after = text.split("camera tuned: width, height changed")[1]
        assert "camera steady: " not in after, "steady was touched"

        # 3. a broken file is refused and changes nothing
        with open(conf, "a") as f:
            f.write("[camera.bad]\ndriver = synthetic\nfps = fast\n")
        lines = sum(1 for _ in open(conf))
        proc.send_signal(signal.SIGHUP)
        wait_for("the refusal", lambda: "reload refused: %s:%d: " % (conf, lines)
                 in open(log_path).read())
        assert proc.poll() is None
        code, status = get(port, "/api/v1/status", "sesame")
        assert code == 200 and [c["name"] for c in status["cameras"]] == ["steady", "tuned",
                                                                           "extra"], status
        assert review(port) == 401 and review(port, "sesame") == 404

        # 4. stop, and count the frames
        stop_daemon(proc)
        log.close()
        with open(log_path) as f:
            text = f.read()
        assert text.count("steady: closed") == 1, "steady was closed before the stop"
        final = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in re.finditer(
            r"camera (\w+): \d+ frames captured, (\d+) stored, (\d+) dropped", text)}
        con = sqlite3.connect(db)
        seqs = [r[0] for r in con.execute(
            "SELECT seq FROM frames f JOIN cameras c ON c.id = f.camera_id "
            "WHERE c.name = 'steady' ORDER BY seq")]
        assert seqs == list(range(len(seqs))), "steady: seq gaps or repeats"
        assert len(seqs) == final["steady"][0] and final["steady"][1] == 0, (len(seqs), final)
        widths = dict(con.execute(
            "SELECT f.width, count(*) FROM frames f JOIN cameras c ON c.id = f.camera_id "
            "WHERE c.name = 'tuned' GROUP BY f.width"))
        assert widths.get(160, 0) > 0 and widths.get(64, 0) > 0, widths
        extra = con.execute("SELECT count(*) FROM frames f JOIN cameras c ON c.id = f.camera_id "
                            "WHERE c.name = 'extra'").fetchone()[0]
        assert extra > 0
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        print("ok: %d frames of the untouched camera, seq 0..%d without a gap across two "
              "reloads; tuned at %s; %d frames of the added camera"
              % (len(seqs), len(seqs) - 1, sorted(widths), extra))
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        if notify:
            notify.close()
        if proc and proc.returncode != 0:
            with open(log_path) as f:
                sys.stderr.write(f.read())
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
