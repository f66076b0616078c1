"""test_first_model.py — a new line is scored within 150 s: `inspectd run` on the default config
(systemd/inspectd.conf, the one `make run` embeds: the synthetic camera, SQLite under ./var, the
trainer's first run of [trainer] first_minutes), in an empty directory, with only the listening
port changed so that a daemon already on 8080 does not matter. From the start of the process,
/api/v1/status must show model.state "scoring" and scoring.frames_scored > 0 within 150 s. Prints
how long each phase took and the machine's load. Python standard library only."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BOUND_S = 150


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def main():
    with open(os.path.join(ROOT, "systemd", "inspectd.conf")) as f:
        default = f.read()
    port = free_port()
    conf, n = re.subn(r"^listen = 127\.0\.0\.1:8080$", "listen = 127.0.0.1:%d" % port, default,
                      flags=re.M)
    assert n == 1, "the default config no longer listens on 127.0.0.1:8080"
    tmp = tempfile.mkdtemp(prefix="inspectd-first-")
    with open(os.path.join(tmp, "inspectd.conf"), "w") as f:
        f.write(conf)
    os.mkdir(os.path.join(tmp, "var"))
    load = os.getloadavg()
    log = open(os.path.join(tmp, "run.log"), "w+")
    t0 = time.monotonic()
    proc = subprocess.Popen([BIN, "run", "--config", "inspectd.conf"], cwd=tmp, stdout=log,
                            stderr=log)
    seen, elapsed = {}, None
    try:
        while time.monotonic() - t0 < BOUND_S + 30 and proc.poll() is None:
            try:
                st = get(port, "/api/v1/status")
                phase = get(port, "/api/v1/train").get("phase")
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                time.sleep(0.5)
                continue
            now = time.monotonic() - t0
            for what in ("training", "registering"):
                if phase == what:
                    seen.setdefault(what, now)
            if st["model"]["state"] == "scoring" and st["scoring"]["frames_scored"] > 0:
                elapsed = now
                break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.seek(0)
        text = log.read()
    steps = re.findall(r"checkpoint \S+ at step (\d+)", text)
    print("load average at the start %.2f %.2f %.2f, at the end %.2f %.2f %.2f (%d cores)"
          % (load + os.getloadavg() + (os.cpu_count(),)))
    print("training from %.1f s, registering from %.1f s, scored at %s s; %s training step(s)"
          % (seen.get("training", -1), seen.get("registering", -1),
             "%.1f" % elapsed if elapsed is not None else "never", steps[-1] if steps else "no"))
    if elapsed is None or elapsed > BOUND_S or code != 0:
        sys.stdout.write(text[-6000:])
    assert code == 0, code
    assert elapsed is not None, "no frame scored within %d s" % (BOUND_S + 30)
    assert elapsed <= BOUND_S, "the first frame was scored %.1f s after the start" % elapsed
    shutil.rmtree(tmp)
    print("ok")


if __name__ == "__main__":
    main()
