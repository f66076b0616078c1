-- 0005_results.sql — a result for every part: every frame stored from now on gets one verdict,
-- 'ok', 'ng' (flagged) or 'unscored' with the reason (no model yet, skipped for lag, undecodable,
-- no image left to score, an error, or too late for the line's inspection window). The line
-- treats 'unscored' as a reject, so no frame goes without one. Verdicts are numbered in the order
-- they were reached (id), which is the order the line outputs and the live feed follow; a
-- frame's verdict is the one of record (what the line was told): a score that arrives after a
-- 'late' verdict is stored beside it (score, model_id, scored_at), the verdict stays.
-- Times are Unix microseconds.

-- The part id the line gave for the frame (POST /api/v1/parts, MQTT, Modbus); NULL: the part is
-- known by the camera's sequence number.
ALTER TABLE frames ADD COLUMN part_id TEXT
    CHECK (part_id IS NULL OR length(CAST(part_id AS BLOB)) BETWEEN 1 AND 64);

CREATE TABLE verdicts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    frame_id    INTEGER NOT NULL UNIQUE REFERENCES frames (id) ON DELETE CASCADE,
    camera_id   INTEGER NOT NULL REFERENCES cameras (id),
    captured_at INTEGER NOT NULL,          -- the frame's, for the time filters and the summary
    verdict     TEXT    NOT NULL CHECK (verdict IN ('ok', 'ng', 'unscored')),
    reason      TEXT    CHECK ((verdict = 'unscored') = (reason IS NOT NULL) AND
                               (reason IS NULL OR reason IN ('no_model', 'skipped', 'undecodable',
                                                             'no_image', 'error', 'late'))),
    model_id    INTEGER REFERENCES models (id),  -- NULL: not scored
    score       REAL,                      -- NULL: not scored
    score_norm  REAL,
    threshold   REAL,
    created_at  INTEGER NOT NULL,          -- when the verdict was reached
    scored_at   INTEGER                    -- when a score reached an 'unscored' verdict
);
CREATE INDEX verdicts_by_camera ON verdicts (camera_id, id);
CREATE INDEX verdicts_by_time ON verdicts (captured_at);

-- Frames up to this id were stored before verdicts existed and have none.
CREATE TABLE verdicts_start (frame_id INTEGER NOT NULL);
INSERT INTO verdicts_start SELECT coalesce(max(id), 0) FROM frames;
