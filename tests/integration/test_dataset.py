"""test_dataset.py — `inspectd export --dataset DIR` writes one MVTec AD category of a database:
a synthetic line (a fifth of its parts drawn with defects) is captured, alerts of each state are
written on some frames, and the export is checked against sqlite3 queries of the same file:
train/good holds exactly --normals frames, every one normal (never flagged, no alert, not drawn with
a defect) and spread evenly over the normal frames in capture order; test/good holds the false
positives and a held-out quarter of N of the other normal frames; test/defect the confirmed
defects; every image is the stored bytes and manifest.jsonl lists exactly the files. --since/--until
filter capture time, --normals all takes every normal frame, more than there are is exit 1 naming
how many, a non-empty DIR or an unknown camera is exit 1 (DIR untouched), bad values exit 64.
`inspectd eval --mvtec DIR` reads the category as a single-category root. Python standard library
only."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from dataset_db import capture, flag  # noqa: E402

BIN = os.environ["INSPECTD_BIN"]


def export(*args):
    return subprocess.run([BIN, "export", *args], capture_output=True, text=True, timeout=120)


def normals(db, since=None, until=None):
    """Ids of the normal frames in capture order."""
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT f.id FROM frames f WHERE f.defect = 'none' AND f.id NOT IN (SELECT frame_id "
        "FROM alerts) AND f.id NOT IN (SELECT frame_id FROM results WHERE flagged = 1) "
        "AND captured_at >= ? AND captured_at < ? ORDER BY captured_at, id",
        (since or 0, until or 2**62)).fetchall()
    con.close()
    return [i for i, in rows]


def listing(root, sub):
    d = os.path.join(root, sub)
    return sorted(int(n.split(".")[0]) for n in os.listdir(d))


def check_category(db, root, n, normal_ids, flagged):
    m = len(normal_ids)
    train = listing(root, "train/good")
    assert len(train) == n, (len(train), n)
    want = [normal_ids[(2 * k + 1) * m // (2 * n)] for k in range(n)]
    assert train == sorted(want), (train, want)
    held = min((n + 3) // 4, m - n)
    good = listing(root, "test/good")
    fps = flagged.get("false_positive", [])
    assert set(fps) <= set(good) and len(good) == len(fps) + held, (good, fps, held)
    assert not (set(good) - set(fps)) & set(train)
    assert set(good) - set(fps) <= set(normal_ids)
    assert listing(root, "test/defect") == sorted(flagged.get("defect", []))
    con = sqlite3.connect(db)
    rows = [json.loads(line) for line in open(os.path.join(root, "manifest.jsonl"))]
    files = {r["image"] for r in rows}
    on_disk = {os.path.join(s, f) for s in ("train/good", "test/good", "test/defect")
               for f in os.listdir(os.path.join(root, s))}
    assert files == on_disk and len(rows) == len(files), (files ^ on_disk)
    for r in rows:
        blob, fmt, defect = con.execute("SELECT image, format, defect FROM frames WHERE id = ?",
                                        (r["frame_id"],)).fetchone()
        with open(os.path.join(root, r["image"]), "rb") as f:
            assert f.read() == blob, r
        assert r["image"].endswith(".png" if fmt == "png" else ".jpg"), r
        assert r["camera"] == "line" and r["recipe"] == "line" and r["defect"] == defect, r
        assert r["captured_at"].endswith("Z"), r
        assert (r["split"], r["label"]) == tuple(r["image"].split("/")[:2]), r
        assert r["kind"] == ("defect" if r["label"] == "defect" else
                             "false_positive" if r["frame_id"] in fps else "normal"), r
        assert (r["alert_id"] is None) == (r["kind"] == "normal"), r
    con.close()


def main():
    tmp = tempfile.mkdtemp(prefix="inspectd-dataset-")
    db = os.path.join(tmp, "line.db")
    capture(BIN, tmp, db, 80)
    flagged, flagged_only = flag(db, ["new", "defect", "defect", "false_positive",
                                      "false_positive", "false_positive"])
    ids = normals(db)
    assert flagged_only not in ids and len(ids) > 30, len(ids)

    root = os.path.join(tmp, "line")
    r = export("--dataset", root, "--db", db, "--normals", "20")
    assert r.returncode == 0, r.stderr
    assert "train/good 20 of %d normal frames" % len(ids) in r.stderr, r.stderr
    check_category(db, root, 20, ids, flagged)
    assert not [n for n in os.listdir(tmp) if ".partial-" in n]

    # all of them, into an empty directory that exists
    every = os.path.join(tmp, "every")
    os.mkdir(every)
    r = export("--dataset", every, "--db", db, "--normals", "all", "--camera", "line",
               "--recipe", "line")
    assert r.returncode == 0, r.stderr
    assert listing(every, "train/good") == sorted(ids)

    # capture time filters
    con = sqlite3.connect(db)
    times = [t for t, in con.execute("SELECT captured_at FROM frames ORDER BY captured_at")]
    con.close()
    since, until = times[len(times) // 4], times[3 * len(times) // 4]
    part = normals(db, since, until)
    window = os.path.join(tmp, "window")
    r = export("--dataset", window, "--db", db, "--normals", str(len(part) - 3),
               "--since", str(since), "--until", str(until))
    assert r.returncode == 0, r.stderr
    got = listing(window, "train/good") + listing(window, "test/good")
    assert set(got) <= set(part) | set(flagged["false_positive"]), got
    assert len(listing(window, "train/good")) == len(part) - 3

    # too few, a non-empty target, an unknown camera, bad values
    r = export("--dataset", os.path.join(tmp, "many"), "--db", db, "--normals",
               str(len(ids) + 1))
    assert r.returncode == 1 and "only %d normal frames match" % len(ids) in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(tmp, "many"))
    r = export("--dataset", root, "--db", db, "--normals", "5")
    assert r.returncode == 1 and "not empty" in r.stderr, r.stderr
    assert len(listing(root, "train/good")) == 20
    r = export("--dataset", os.path.join(tmp, "x"), "--db", db, "--camera", "nope")
    assert r.returncode == 1 and "no camera named 'nope'" in r.stderr, r.stderr
    for bad in (["--normals", "0"], ["--normals", "many"], ["--out", "x.tar"],
                ["--state", "new"], ["--since", "yesterday"]):
        r = export("--dataset", os.path.join(tmp, "y"), "--db", db, *bad)
        assert r.returncode == 64, (bad, r.returncode, r.stderr)
    r = export("--db", db, "--out", os.path.join(tmp, "z.tar"), "--normals", "3")
    assert r.returncode == 64, r.stderr

    # the category is a single-category root for inspectd eval
    r = subprocess.run([BIN, "eval", "--mvtec", root + "/", "--size", "16", "--patch", "4",
                        "--dim", "16", "--depth", "1", "--heads", "2", "--batch", "8",
                        "--locals", "2", "--epochs", "1", "--minutes", "0.05"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [line for line in r.stdout.splitlines() if line.startswith("line ")], r.stdout
    print("ok: train/good 20 of %d normal frames, %d false positives, %d defects" %
          (len(ids), len(flagged["false_positive"]), len(flagged["defect"])))


if __name__ == "__main__":
    main()
