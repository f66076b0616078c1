"""test_prometheus.py — the README's fleet monitoring ("Outgrowing one machine"): its site
prometheus.yml (scraping daemons with their bearer token), its inspectd-rules.yml and its central
federation config are cut out of README.md and checked with `promtool check config` and `promtool
check rules` (Debian's prometheus); a daemon listening beyond loopback refuses /metrics without
the token and serves it with it, and every inspectd metric the rules name is in what it serves.
Python standard library and promtool only."""
import os
import re
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
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
CONFIG = """[http]
listen = 0.0.0.0:{port}
token_file = {token}
[store]
path = {db}
[trainer]
enabled = false
[camera.line]
driver = synthetic
fps = 20
frames = 10
width = 64
height = 64
"""


def blocks():
    """The indented YAML blocks that follow '# prometheus.yml on each site', '# inspectd-rules.yml'
    and '# prometheus.yml centrally' in the README, dedented."""
    lines = open(README).read().splitlines()
    out, cur = {}, None
    for line in lines:
        m = re.match(r"    # (prometheus\.yml on each site|inspectd-rules\.yml|prometheus\.yml "
                     r"centrally)$", line)
        if m:
            cur = m.group(1)
            out[cur] = []
        elif cur and (line.startswith("    ") or not line.strip()):
            out[cur].append(line[4:])
        else:
            cur = None
    assert len(out) == 3, sorted(out)
    return {k: "\n".join(v).strip() + "\n" for k, v in out.items()}


def promtool(*args):
    r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "promtool %s: exit %d\n%s\n%s" % (args, r.returncode, r.stdout,
                                                                 r.stderr)
    return r.stdout


def check_configs(tmp):
    b = blocks()
    token = os.path.join(tmp, "inspectd.token")
    with open(token, "w") as f:
        f.write("secret\n")
    site = b["prometheus.yml on each site"].replace("/etc/prometheus/inspectd.token", token)
    for name, text in (("prometheus.yml", site), ("inspectd-rules.yml", b["inspectd-rules.yml"]),
                       ("central.yml", b["prometheus.yml centrally"])):
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    promtool("check", "config", os.path.join(tmp, "prometheus.yml"))
    promtool("check", "rules", os.path.join(tmp, "inspectd-rules.yml"))
    promtool("check", "config", os.path.join(tmp, "central.yml"))
    return set(re.findall(r"\binspectd_[a-z_]+", b["inspectd-rules.yml"]))


def metrics(tmp):
    db, token = os.path.join(tmp, "d.db"), os.path.join(tmp, "token")
    port = free_port()
    conf = os.path.join(tmp, "d.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, token=token, db=db))
    log_path = os.path.join(tmp, "d.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    url = "http://127.0.0.1:%d/metrics" % port
    try:
        deadline = time.time() + 30
        while "listening on" not in open(log_path).read():
            assert time.time() < deadline and proc.poll() is None, open(log_path).read()
            time.sleep(0.1)
        try:
            urllib.request.urlopen(url, timeout=10)
            raise AssertionError("/metrics beyond loopback without the token")
        except urllib.error.HTTPError as e:
            assert e.code == 401, e.code
        with open(token) as f:
            secret = f.read().strip()
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + secret})
        deadline = time.time() + 30
        while True:  # the per-camera and per-reason series appear with the first frames
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read().decode()
            if "inspectd_results_unscored_total{" in text or time.time() > deadline:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        log.close()
    assert rc == 0, open(log_path).read()
    return {line.split("{")[0].split()[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-prometheus-")
    named = check_configs(tmp)
    served = metrics(tmp)
    assert named and named <= served, named - served
    print("ok: promtool accepts the README's configs; the rules' metrics %s are served" %
          ", ".join(sorted(named)))


if __name__ == "__main__":
    main()
