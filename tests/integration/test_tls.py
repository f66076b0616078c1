"""test_tls.py — HTTPS from the config: with [http] tls_cert and tls_key the daemon answers over
TLS (the certificate it presents is the configured one) and not in clear; a missing key file is
a start-up error that names it. Needs the openssl command for a throw-away certificate."""
import http.client
import os
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from testlib import START_S, free_port, stop_daemon  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-tls-")
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=inspectd-test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    port = free_port()
    conf = os.path.join(tmp, "tls.conf")
    with open(conf, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:%d\ntls_cert = %s\ntls_key = %s\n[store]\npath = %s\n"
                "[trainer]\nenabled = false\n[camera.a]\ndriver = synthetic\nfps = 5\n"
                % (port, cert, key, os.path.join(tmp, "t.db")))
    proc = subprocess.Popen([BIN, "run", "--config", conf], stderr=subprocess.PIPE, text=True)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        deadline, status = time.time() + START_S, None
        while time.time() < deadline and status is None:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
                c.request("GET", "/healthz")
                status = c.getresponse().status
                c.close()
            except (OSError, ssl.SSLError):
                time.sleep(0.1)
        assert status == 200, status  # the certificate verified against the configured one
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/healthz")
            c.getresponse()
            raise AssertionError("answered in clear")
        except (OSError, http.client.HTTPException):
            pass
        stop_daemon(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = open(conf).read().replace(key, os.path.join(tmp, "missing.pem"))
    with open(conf, "w") as f:
        f.write(text)
    r = subprocess.run([BIN, "run", "--config", conf], capture_output=True, text=True,
                       timeout=START_S)
    assert r.returncode == 1 and "missing.pem" in r.stderr, (r.returncode, r.stderr[-500:])
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
