-- 0002_scoring.sql — what scoring adds: the life of a model version, the heatmap of every flagged
-- frame, and one alert per flagged frame with the operator's verdict. Times are Unix microseconds.

-- A model is 'training' while its child runs, 'validating' while it is checked, then 'active' (the
-- one that scores; at most one), 'retired' (replaced) or 'rejected' (failed validation: meta says
-- why). Rows written before this migration were active models.
ALTER TABLE models ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('training', 'validating', 'active', 'retired', 'rejected'));
ALTER TABLE models ADD COLUMN frames_used INTEGER;   -- frames the model was trained on
ALTER TABLE models ADD COLUMN loss REAL;             -- final training loss
ALTER TABLE models ADD COLUMN activated_at INTEGER;  -- when it started scoring (NULL: never)
CREATE UNIQUE INDEX models_one_active ON models (status) WHERE status = 'active';

-- Patch-score grid of a scored frame (stored for flagged frames): float32 little-endian,
-- row-major (grid_h, grid_w), raw patch distances in the units of results.score.
CREATE TABLE heatmaps (
    frame_id    INTEGER NOT NULL REFERENCES frames (id) ON DELETE CASCADE,
    model_id    INTEGER NOT NULL REFERENCES models (id),
    grid_w      INTEGER NOT NULL CHECK (grid_w > 0),
    grid_h      INTEGER NOT NULL CHECK (grid_h > 0),
    data        BLOB    NOT NULL CHECK (length(data) = 4 * grid_w * grid_h),
    PRIMARY KEY (frame_id, model_id)
) WITHOUT ROWID;

-- One alert per flagged frame. state: 'new' until an operator marks it 'defect' or
-- 'false_positive'. A false positive joins the normal bank and calibration set; a confirmed defect
-- is kept out of training and banks and validates new models.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    frame_id    INTEGER NOT NULL UNIQUE REFERENCES frames (id) ON DELETE CASCADE,
    model_id    INTEGER NOT NULL REFERENCES models (id),
    camera_id   INTEGER NOT NULL REFERENCES cameras (id),
    created_at  INTEGER NOT NULL,
    score       REAL    NOT NULL,
    score_norm  REAL    NOT NULL,
    threshold   REAL    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'new'
        CHECK (state IN ('new', 'defect', 'false_positive')),
    note        TEXT,
    reviewed_at INTEGER
);
CREATE INDEX alerts_by_state ON alerts (state, id);
CREATE INDEX alerts_by_camera ON alerts (camera_id, id);
