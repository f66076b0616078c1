"""flagged.py — many flagged frames, made quickly, for export tests and benches: the frames a short
daemon run stored are copied (same image bytes) until there are n, each with a result, a heatmap
grid and an alert of a varied state, camera and note, written straight into the SQLite file while
no daemon runs. The model they name is 'retired', so a daemon started on the file scores nothing
with it. Python standard library only."""
import random
import sqlite3
import struct

GRID = 8  # patch grid of the heatmaps (8 x 8 float32)
NOTES = [None, None, "scratch near the edge", 'two, "quoted", words', "line one\nline two",
         " edge spaces ", "señal ✓"]
STATES = ["new", "defect", "false_positive"]


def populate(db, n, seed=0, cameras=("line", "side"), start_us=1_800_000_000_000_000):
    """Adds n flagged frames (alerts 1..n newest last, flagged one millisecond apart from
    start_us). Returns the model id."""
    rng = random.Random(seed)
    con = sqlite3.connect(db)
    images = con.execute("SELECT format, image, width, height FROM frames ORDER BY id").fetchall()
    assert images, "populate needs at least one stored frame to copy"
    cam_ids = []
    for name in cameras:
        row = con.execute("SELECT id FROM cameras WHERE name = ?", (name,)).fetchone()
        if row is None:
            row = (con.execute("INSERT INTO cameras (name, driver, created_at) VALUES (?, ?, ?)",
                               (name, "synthetic", start_us)).lastrowid,)
        cam_ids.append(row[0])
    model = con.execute(
        "INSERT INTO models (version, path, created_at, threshold, meta, status) "
        "VALUES (?, '/nonexistent.safetensors', ?, 0.5, '{}', 'retired')",
        ("export-test-%d" % seed, start_us)).lastrowid
    for i in range(n):
        fmt, image, w, h = images[i % len(images)]
        cam = cam_ids[i % len(cam_ids)]
        t = start_us + i * 1000
        fid = con.execute(
            "INSERT INTO frames (camera_id, seq, captured_at, width, height, format, image, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cam, i, t - 500, w, h, fmt, image, t)).lastrowid
        score = 0.5 + rng.random()
        grid = [rng.random() for _ in range(GRID * GRID)]
        con.execute("INSERT INTO results (frame_id, model_id, score, score_norm, flagged, "
                    "latency_us, created_at) VALUES (?, ?, ?, ?, 1, 1000, ?)",
                    (fid, model, score, score / 0.5, t))
        con.execute("INSERT INTO heatmaps (frame_id, model_id, grid_w, grid_h, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (fid, model, GRID, GRID, struct.pack("<%df" % (GRID * GRID), *grid)))
        state = STATES[rng.randrange(3)]
        con.execute("INSERT INTO alerts (frame_id, model_id, camera_id, created_at, score, "
                    "score_norm, threshold, state, note, reviewed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, 0.5, ?, ?, ?)",
                    (fid, model, cam, t, score, score / 0.5, state,
                     rng.choice(NOTES) if state != "new" else None,
                     t + 1 if state != "new" else None))
    con.commit()
    con.close()
    return model
