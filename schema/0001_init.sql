-- 0001_init.sql — the first schema: cameras, the frames they delivered, the models that scored them
-- and one result per (frame, model). Times are Unix microseconds (UTC). store.c applies this file
-- once, in a transaction, and sets PRAGMA user_version = 1 (auto_vacuum is set before it runs).

CREATE TABLE cameras (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,   -- the NAME of the [camera.NAME] config section
    driver      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE frames (
    id          INTEGER PRIMARY KEY,
    camera_id   INTEGER NOT NULL REFERENCES cameras (id),
    seq         INTEGER NOT NULL,          -- the source's sequence number (gaps: lost frames)
    captured_at INTEGER NOT NULL,          -- capture time, camera clock when it has one
    width       INTEGER NOT NULL CHECK (width > 0),
    height      INTEGER NOT NULL CHECK (height > 0),
    format      TEXT    NOT NULL CHECK (format IN ('jpeg', 'png')),
    image       BLOB    NOT NULL,          -- the encoded image, as received or JPEG-encoded
    created_at  INTEGER NOT NULL,          -- when the row was written
    -- Ground truth, known only for synthetic frames (NULL otherwise): the defect drawn and its
    -- bounding box [x0, x1) x [y0, y1) in pixels (NULL box for a good product).
    defect      TEXT    CHECK (defect IN ('none', 'scratch', 'hole', 'stain')),
    defect_x0   INTEGER,
    defect_y0   INTEGER,
    defect_x1   INTEGER,
    defect_y1   INTEGER
);
CREATE INDEX frames_by_camera ON frames (camera_id, id);

CREATE TABLE models (
    id          INTEGER PRIMARY KEY,
    version     TEXT    NOT NULL UNIQUE,   -- what results name as the model that produced them
    path        TEXT    NOT NULL,          -- the .safetensors checkpoint
    created_at  INTEGER NOT NULL,
    threshold   REAL,                      -- raw score above which a frame is flagged
    meta        TEXT                       -- JSON: training settings, bank size, calibration
);

CREATE TABLE results (
    frame_id    INTEGER NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    model_id    INTEGER NOT NULL REFERENCES models (id),
    score       REAL    NOT NULL,          -- the worst patch's k-NN distance to the bank
    score_norm  REAL    NOT NULL,          -- score / threshold: 1.0 is the flagging line
    flagged     INTEGER NOT NULL CHECK (flagged IN (0, 1)),
    latency_us  INTEGER NOT NULL,          -- decode + embed + k-NN time
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (frame_id, model_id)
) WITHOUT ROWID;
CREATE INDEX results_flagged ON results (model_id, flagged, frame_id);
