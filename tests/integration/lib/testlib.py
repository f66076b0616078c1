"""testlib.py — what the integration tests, the soak and the daemon benchmarks share: a free
loopback port for a daemon to listen on, the tiny model the tests train (`inspectd train`
options: 64 px RGB, patch 8, 32 wide, 2 blocks of 2 heads, batch 16, 2 local crops, 2 epochs),
and waiting for a training child by the work it does rather than by the clock (on a busy CPU the
child, at idle priority, may get little of it)."""
import os
import socket
import time


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
