"""testlib.py — what the integration tests, the soak and the daemon benchmarks share: a free
loopback port for a daemon to listen on, and the tiny model the tests train (`inspectd train`
options: 64 px RGB, patch 8, 32 wide, 2 blocks of 2 heads, batch 16, 2 local crops, 2 epochs)."""
import socket


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
