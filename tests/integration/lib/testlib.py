"""testlib.py — what the integration tests, the soak and the daemon benchmarks share: a free
loopback port for a daemon to listen on, the tiny model the tests train (`inspectd train`
options: 64 px RGB, patch 8, 32 wide, 2 blocks of 2 heads, batch 16, 2 local crops, 2 epochs),
waiting for a training child by the work it does rather than by the clock (on a busy CPU the
child, at idle priority, may get little of it), systemd's side of sd_notify, and the bounds on a
daemon's start and stop."""
import os
import signal
import socket
import subprocess
import threading
import time

# How long a daemon without a model or a training child may take to answer after its start, or to
# exit 0 after SIGTERM. Idle, a start takes well under a second, and a stop (capture threads end
# within their 200 ms poll, the writer commits at most a queue of 256 frames, the scorer and the
# HTTP threads end) about 0.1 s; the bounds leave room for a CPU shared with many other processes.
START_S = 60
STOP_S = 60


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (as of now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_train(epochs=2):
    """The `inspectd train` options of the tests' model."""
    return ["--size", "64", "--patch", "8", "--channels", "3", "--dim", "32", "--depth", "2",
            "--heads", "2", "--batch", "16", "--locals", "2", "--epochs", str(epochs),
            "--threads", "2"]


def children_cpu(pid):
    """CPU seconds the live children of process pid have used (0 when there are none)."""
    ticks = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0.0
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                with open("/proc/%d/stat" % kid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_while_training(pred, pid, what, stall=120, limit=1800):
    """Waits until pred() holds. Fails when for `stall` seconds neither pred held nor the training
    children of process pid used any CPU (nothing is getting on), or after `limit` seconds."""
    start = last = time.monotonic()
    cpu = children_cpu(pid)
    while time.monotonic() - last < stall and time.monotonic() - start < limit:
        try:
            if pred():
                return
        except OSError:
            pass
        now = children_cpu(pid)
        if now != cpu:
            cpu, last = now, time.monotonic()
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (no training progress for %d s, or %d s in "
                         "all)" % (what, stall, limit))


def stop_daemon(proc, timeout=STOP_S):
    """SIGTERM, then the exit code within timeout seconds, which must be 0."""
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the daemon did not stop within %d s of SIGTERM" % timeout)
    assert rc == 0, "the daemon exited with %s after SIGTERM" % rc
    return time.monotonic() - t0


class Notifications:
    """systemd's side of sd_notify: a Unix datagram socket at path, read all along by a thread, as
    systemd reads its own. A socket read only now and then would not do: once ten datagrams wait
    in it (net.unix.max_dgram_qlen), the daemon's sd_notify() blocks, and with it the main thread
    that takes SIGTERM and SIGHUP."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.path = path
        self._messages = []  # (monotonic time of arrival, text)
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if self._closed:
                return
            with self._lock:
                self._messages.append((time.monotonic(), data.decode()))

    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    def collect(self, seconds):
        """Lets the daemon run for `seconds` while its messages arrive."""
        time.sleep(seconds)

    def since(self, t0):
        return [(t, m) for t, m in self.messages if t >= t0]

    def text(self):
        return "\n".join(m for _, m in self.messages)

    def close(self):
        self._closed = True
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader
        self.sock.close()
        self._thread.join(timeout=5)
