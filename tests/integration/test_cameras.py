"""`inspectd cameras` lists Aravis's fake GigE Vision camera (run by this test on loopback) with
its id, vendor, address and formats, as a table and as JSON, and no longer lists it once it is
stopped."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from fakecam import DEVICE_ID, FakeCamera  # noqa: E402

BIN = os.environ.get("INSPECTD_BIN", "build/inspectd")


def cameras(*args):
    r = subprocess.run([BIN, "cameras", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout


def main():
    with FakeCamera() as fake:
        listed = {c["id"]: c for c in json.loads(cameras("--json"))}
        cam = listed.get(DEVICE_ID)
        assert cam, f"{DEVICE_ID} not in {list(listed)}"
        assert cam["driver"] == "aravis" and cam["vendor"] == "Aravis", cam
        assert cam["address"] == "127.0.0.1", cam
        assert cam["formats"].split(",")[:2] == ["Mono8", "RGB8"], cam
        table = cameras()
        row = [line for line in table.splitlines() if DEVICE_ID in line]
        assert row and row[0].split()[0] == "aravis", table
        print(table, end="")
        fake.stop()
        gone = [c["id"] for c in json.loads(cameras("--json"))]
        assert DEVICE_ID not in gone, gone
    print("ok")


if __name__ == "__main__":
    main()
