"""Frame captured -> the line told: the synthetic camera at 20 fps (640x480 JPEG frames), a model
with a 64 px input already registered, a training run beside the daemon the whole time
(`inspectd train --db` at nice 19, as in latency.py), and the daemon's line outputs read by test
clients, as a PLC and a plant system would:

- MQTT: Debian's mosquitto broker on a loopback port, started here, and a mosquitto_sub subscriber
  on inspectd/line/result that stamps each message as it arrives (-F %U); latency = arrival minus
  the frame's captured_at_us;
- Modbus TCP ([plc] listen): a pymodbus client (Debian python3-pymodbus) reading the status
  register and camera 0's result block in one request every 2 ms; latency = the first read showing
  a frame's result (its sequence number in B+8, the result counter changed) minus the frame's
  captured_at; the share of those reads with ResultValid set is printed beside it.

Then the broker is killed and the capture rate measured again with it down (frames stored per
second by captured_at, over the same length of time), beside the rate with it up.

    /usr/bin/python3 tests/bench/line_latency.py [BUILD_DIR] [--seconds S] [--down-seconds S]
Ends with `line_mqtt_p99_ms: X modbus_p99_ms: Y`."""
import argparse
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from pymodbus.client import ModbusTcpClient

from benchlib import first_model, free_port, run_daemon, status

MOSQUITTO = "/usr/sbin/mosquitto"
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

LINE = """[mqtt]
host = 127.0.0.1
port = {mqtt}
client_id = inspectd-bench-line
[plc]
listen = 127.0.0.1:{plc}
"""


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def start_broker(tmp, port):
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    broker = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
             30, "the broker")
    return broker


class ModbusPoller(threading.Thread):
    """Reads registers 0..109 every 2 ms; keeps (first time seen, ResultValid) per sequence
    number of camera 0's result."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.client = ModbusTcpClient("127.0.0.1", port=port, timeout=5)
        wait_for(self.client.connect, 30, "the Modbus server")
        self.seen, self.reads, self.stop = {}, 0, False

    def run(self):
        last = None
        while not self.stop:
            r = self.client.read_holding_registers(0, 110, slave=1)
            now = time.time()
            if not r.isError():
                self.reads += 1
                regs = r.registers
                counter, seq = regs[100], regs[108] << 16 | regs[109]
                if regs[101] and counter != last:
                    last = counter
                    self.seen.setdefault(seq, (now, bool(regs[0] & 4)))
            time.sleep(0.002)
        self.client.close()


def pct(v, q):
    return v[min(len(v) - 1, int(q * len(v)))]


def capture_rate(con, t0_us, t1_us):
    n = con.execute("SELECT COUNT(*) FROM frames WHERE captured_at >= ? AND captured_at < ?",
                    (t0_us, t1_us)).fetchone()[0]
    return n / ((t1_us - t0_us) / 1e6)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--down-seconds", type=float, default=30)
    args = ap.parse_args()
    exe = os.path.join(args.build, "inspectd")
    tmp = tempfile.mkdtemp(prefix="inspectd-line-latency-")
    db = os.path.join(tmp, "line.db")
    first_model(exe, tmp, db)

    mqtt, plc = free_port(), free_port()
    broker = start_broker(tmp, mqtt)
    sub_path = os.path.join(tmp, "results.txt")
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt), "-t",
                            "inspectd/line/result", "-F", "%U %p", "-i", "bench-line"],
                           stdout=open(sub_path, "w"), stderr=subprocess.DEVNULL)
    frames = int((args.seconds + args.down_seconds) * 20) + 200
    d, port = run_daemon(exe, tmp, db, 20, frames, 0.05, 2,
                         extra=LINE.format(mqtt=mqtt, plc=plc))
    trainer = subprocess.Popen(["nice", "-n", "19", exe, "train", "--db", db, "--out",
                                os.path.join(tmp, "busy.safetensors"), "--size", "64",
                                "--threads", "1", "--minutes",
                                str((args.seconds + args.down_seconds) / 60 + 5)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    poller = ModbusPoller(plc)
    poller.start()
    time.sleep(3)  # connected, trainer under way
    con = sqlite3.connect(db)
    start_id = con.execute("SELECT MAX(id) FROM frames").fetchone()[0]
    up0 = int(time.time() * 1e6)
    time.sleep(args.seconds)
    up1 = int(time.time() * 1e6)
    end_id = con.execute("SELECT MAX(id) FROM frames").fetchone()[0]
    time.sleep(2)  # the last frames of the window reach the line
    poller.stop = True
    poller.join()
    st_up = status(port)

    broker.kill()
    broker.wait()
    time.sleep(2)
    down0 = int(time.time() * 1e6)
    time.sleep(args.down_seconds)
    down1 = int(time.time() * 1e6)
    st_down = status(port)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    d.send_signal(signal.SIGTERM)
    d.wait()
    sub.terminate()
    sub.wait()

    rows = con.execute("SELECT id, seq, captured_at FROM frames WHERE id > ? AND id <= ?",
                       (start_id, end_id)).fetchall()
    captured = {r[0]: r[2] for r in rows}
    by_seq = {r[1]: r[2] for r in rows}
    scored = con.execute("SELECT COUNT(*) FROM results WHERE frame_id > ? AND frame_id <= ?",
                         (start_id, end_id)).fetchone()[0]
    unscored = con.execute("SELECT reason, COUNT(*) FROM verdicts WHERE frame_id > ? AND "
                           "frame_id <= ? AND verdict = 'unscored' GROUP BY reason",
                           (start_id, end_id)).fetchall()
    mqtt_ms = []
    with open(sub_path) as f:
        for line in f:
            stamp, _, payload = line.partition(" ")
            try:
                msg = json.loads(payload)
            except ValueError:
                continue
            if msg["frame_id"] in captured:
                mqtt_ms.append((float(stamp) * 1e6 - msg["captured_at_us"]) / 1000)
    modbus_ms, valid = [], 0
    for seq, (t, ok) in poller.seen.items():
        if seq in by_seq:
            modbus_ms.append((t * 1e6 - by_seq[seq]) / 1000)
            valid += ok
    mqtt_ms.sort()
    modbus_ms.sort()
    rate_up, rate_down = capture_rate(con, up0, up1), capture_rate(con, down0, down1)
    if not mqtt_ms or not modbus_ms:
        print("no result reached the line: MQTT %d, Modbus %d" % (len(mqtt_ms), len(modbus_ms)),
              file=sys.stderr)
        sys.exit(1)
    print("synthetic camera 640x480 at 20 fps, model input 64 px, a training run beside it, "
          "%.0f s with the broker up, %.0f s down" % (args.seconds, args.down_seconds))
    print("frames stored %d, scored %d, unscored %s, dropped by the queue %d" % (
        len(rows), scored, dict(unscored) or 0,
        sum(c["frames_dropped"] for c in st_up["cameras"])))
    print("frame captured -> MQTT result received: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
          "(%d of %d frames)" % (pct(mqtt_ms, 0.5), pct(mqtt_ms, 0.99), mqtt_ms[-1],
                                 len(mqtt_ms), len(rows)))
    print("frame captured -> Modbus result read: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
          "(%d of %d frames seen by a 2 ms poll, %d reads; ResultValid set in %.1f %% of them)"
          % (pct(modbus_ms, 0.5), pct(modbus_ms, 0.99), modbus_ms[-1], len(modbus_ms),
             len(rows), poller.reads, 100.0 * valid / len(modbus_ms)))
    print("capture rate: broker up %.2f frames/s, broker down %.2f frames/s "
          "(dropped by the queue: %d up, %d by the end)" % (
              rate_up, rate_down, sum(c["frames_dropped"] for c in st_up["cameras"]),
              sum(c["frames_dropped"] for c in st_down["cameras"])))
    mq = st_down["line"]["mqtt"] or {}
    print("MQTT while down: %s" % {k: mq.get(k) for k in ("state", "dropped", "queued")})
    print("line_mqtt_p99_ms: %.1f modbus_p99_ms: %.1f" % (pct(mqtt_ms, 0.99),
                                                          pct(modbus_ms, 0.99)))


if __name__ == "__main__":
    main()
