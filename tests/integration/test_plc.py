"""test_plc.py — the PLC handshake over Modbus TCP, read by a real client (Debian's
python3-pymodbus) while the synthetic camera runs: the counters equal the database's, every
verdict code the registers showed matches its frame's row, a part id written before a trigger
comes back on its result, writes outside the writable registers (or to a read-only map) are
refused; with [plc] window_ms a scorer that cannot keep up turns parts into unscored (late) at the
deadline, and the score that comes afterwards is stored beside that verdict. Bad [plc] keys exit
78, a port in use exits 1. Python standard library and pymodbus."""
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

from pymodbus.client import ModbusTcpClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import free_port, tiny_train  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # its refused connects while we wait
VERDICTS = {1: "ok", 2: "ng", 3: "unscored"}
REASONS = {0: None, 1: "no_model", 2: "skipped", 3: "undecodable", 4: "no_image", 5: "error",
           6: "late"}

CONFIG = """[http]
listen = 127.0.0.1:{port}
[store]
path = {db}
[pipeline]
max_score_lag_s = 0
[trainer]
enabled = false
[plc]
listen = 127.0.0.1:{plc}
{extra}
[recipe.line]
number = 1
[recipe.other]
number = 7
[camera.line]
driver = synthetic
fps = {fps}
frames = {frames}
width = 64
height = 64
defect_rate = 0.3
seed = {seed}
"""


def start(tmp, db, plc, frames, fps, seed, extra=""):
    port = free_port()
    conf = os.path.join(tmp, "run-%d.conf" % seed)
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, db=db, plc=plc, frames=frames, fps=fps, seed=seed,
                              extra=extra))
    log = open(os.path.join(tmp, "run-%d.log" % seed), "w+")
    daemon = subprocess.Popen([BIN, "run", "--config", conf], stdout=log, stderr=log)
    # running (signals are the daemon's from here on) before a test may stop it
    wait_for(lambda: get(port, "/api/v1/status"), 120, "the API")
    return daemon, port


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as r:
        return json.loads(r.read())


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def stop(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0, "daemon did not stop cleanly"


def u32(regs, at):
    return regs[at] << 16 | regs[at + 1]


def text(regs):
    return bytes(b for r in regs for b in (r >> 8, r & 255)).split(b"\0")[0].decode()


def text_regs(s):
    raw = s.encode().ljust(64, b"\0")
    return [raw[i] << 8 | raw[i + 1] for i in range(0, 64, 2)]


def connect(port):
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=10)
    wait_for(client.connect, 60, "the Modbus server")
    return client


def read(client, addr, n):
    r = client.read_holding_registers(addr, n, slave=1)
    assert not r.isError(), r
    return r.registers


class Poller:
    """Reads camera 0's result block and keeps one snapshot per result counter value."""

    def __init__(self, client):
        self.client, self.snaps, self.last = client, {}, None

    def poll(self):
        regs = read(self.client, 100, 42)
        if regs[0] != self.last and regs[1]:
            self.last = regs[0]
            self.snaps[regs[0]] = (regs[1], regs[2], u32(regs, 8), text(regs[10:42]), regs[5])


def db_rows(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute("SELECT f.seq, f.part_id, v.verdict, v.reason, v.score, v.scored_at, "
                           "(SELECT name FROM recipes WHERE id = f.recipe_id) FROM verdicts v "
                           "JOIN frames f ON f.id = v.frame_id ORDER BY v.id").fetchall()
    finally:
        con.close()


def frames(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute("SELECT count(*) FROM frames").fetchone()[0]
    finally:
        con.close()


def check_bad_config(tmp):
    for body, what, code in (("listen = 10.1.2.3:1502\n", "allow_remote", 78),
                             ("listen = 127.0.0.1:99999\n", "port", 78),
                             ("listen = plc.local:1502\n", "numeric", 78),
                             ("window_ms = -1\n", "window_ms", 78),
                             ("writeable = false\n", "unknown key", 78)):
        conf = os.path.join(tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("[plc]\n" + body + "[camera.a]\ndriver = synthetic\n")
        r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == code and what in r.stderr and "bad.conf" in r.stderr, (body, r)
    with socket.socket() as s:  # a port in use: exit 1 at start
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with open(conf, "w") as f:
            f.write("[store]\npath = %s/busy.db\n[plc]\nlisten = 127.0.0.1:%d\n[camera.a]\n"
                    "driver = synthetic\n" % (tmp, s.getsockname()[1]))
        r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and "cannot listen" in r.stderr, r


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-plc-")
    db = os.path.join(tmp, "line.db")
    check_bad_config(tmp)

    # 1. no model: the registers follow every result; a part id written before a trigger
    plc = free_port()
    daemon, port = start(tmp, db, plc, 80, 10, 1)
    try:
        client = connect(plc)
        head = read(client, 0, 12)
        assert head[1] == 1 and head[2] == 1, head  # map version, cameras
        assert client.write_register(5, 1, slave=1).isError()  # a read-only register
        assert client.write_registers(99, [1, 2], slave=1).isError()
        poller = Poller(client)
        wait_for(lambda: poller.poll() or len(poller.snaps) >= 5, 120, "results")
        assert not client.write_registers(150, text_regs("PLC-0042"), slave=1).isError()
        assert read(client, 150, 32) == [0] * 32  # taken for the next frame, and cleared
        assert not client.write_register(182, 7, slave=1).isError()  # recipe select: other
        wait_for(lambda: poller.poll() or read(client, 105, 1) == [7], 120, "recipe 7's results")
        assert not client.write_register(182, 1, slave=1).isError()  # and back to line
        ended = lambda: get(port, "/api/v1/status")["cameras"][0]["state"] == "ended"
        wait_for(lambda: poller.poll() or (ended() and len(db_rows(db)) >= 80), 300,
                 "80 verdicts")
        time.sleep(0.3)
        poller.poll()
        head = read(client, 0, 12)
        rows = db_rows(db)
        counts = {v: sum(r[2] == v for r in rows) for v in ("ok", "ng", "unscored")}
        assert u32(head, 4) == len(rows) == 80, (head, len(rows))
        assert (u32(head, 6), u32(head, 8), u32(head, 10)) == (counts["ok"], counts["ng"],
                                                                counts["unscored"]), head
        assert head[0] & 16 and head[0] & 1, head  # Learning, Ready
        by_seq = {r[0]: r for r in rows}
        assert len(poller.snaps) >= 10, len(poller.snaps)
        numbers = [snap[4] for _, snap in sorted(poller.snaps.items())]
        assert 7 in numbers and numbers[0] == 1 and numbers[-1] == 1, numbers
        for counter, (verdict, reason, seq, part, number) in poller.snaps.items():
            row = by_seq[seq]
            assert VERDICTS[verdict] == row[2] and REASONS[reason] == row[3], (verdict, row)
            assert part == (row[1] or str(seq)), (part, row)
            assert number == {"line": 1, "other": 7}[row[6]], (number, row)
        assert read(client, 100, 1)[0] == 80, "the result counter"
        tagged = [r for r in rows if r[1] == "PLC-0042"]
        assert len(tagged) == 1, tagged
        res = get(port, "/api/v1/results?limit=100")["results"]
        assert [r["part_id"] for r in res].count("PLC-0042") == 1
        assert get(port, "/api/v1/status")["line"]["plc"]["listening"]
        client.close()
    finally:
        stop(daemon)

    # 2. read-only: every write refused
    plc = free_port()
    daemon, port = start(tmp, db, plc, 5, 10, 2, "writable = false")
    try:
        client = connect(plc)
        assert client.write_registers(150, text_regs("X"), slave=1).isError()
        assert client.write_register(21, 1, slave=1).isError()
        assert read(client, 21, 1) == [0]
        client.close()
    finally:
        stop(daemon)

    # 3. a model, and a window shorter than scoring takes: parts go unscored (late) at the
    # deadline, and their scores are stored beside afterwards
    r = subprocess.run([BIN, "train", "--db", db, "--out", os.path.join(tmp, "m.safetensors"),
                        "--register", "--recipe", "line", *tiny_train()], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    before, stored = len(db_rows(db)), frames(db)
    plc = free_port()
    daemon, port = start(tmp, db, plc, 60, 30, 3, "window_ms = 1")
    try:
        client = connect(plc)
        poller = Poller(client)
        wait_for(lambda: poller.poll() or (frames(db) == stored + 60 and
                                           len(db_rows(db)) == frames(db)), 300,
                 "a verdict for every frame")
        late = lambda: [r for r in db_rows(db)[before:] if r[3] == "late"]
        wait_for(lambda: all(r[4] is not None for r in late()), 300, "the late parts' scores")
        rows = db_rows(db)[before:]
        assert len(late()) >= 30, [r[2:4] for r in rows]
        bad = [r for r in late() if r[2] != "unscored" or r[4] is None or r[5] is None]
        assert not bad, bad[:3]
        assert any(s[0] == 3 and s[1] == 6 for s in poller.snaps.values()), poller.snaps
        unscored = sum(r[2] == "unscored" for r in db_rows(db))
        wait_for(lambda: u32(read(client, 0, 12), 10) == unscored, 60, "the unscored counter")
        wait_for(lambda: u32(read(client, 0, 12), 4) == len(db_rows(db)), 60, "the parts counter")
        client.close()
    finally:
        stop(daemon)
    print("test_plc: ok")


if __name__ == "__main__":
    main()
