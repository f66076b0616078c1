-- 0007_recipes.sql — recipes: the product variant a camera inspects, with its own frames, models
-- and sensitivity. Every frame records the recipe its camera had when it was captured; a recipe's active
-- model is recipes.model_id (NULL while it is learning), so the single-active-model index goes and
-- models.status 'active' now means "a recipe's active model". The model states 'training' and
-- 'validating', which nothing wrote (a run registers its model at its end, active or rejected),
-- leave the schema with it. Migrations run with foreign keys off and are checked before they
-- commit (store.c), so the models table is rebuilt in place, ids and all.

CREATE TABLE recipes (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,   -- [recipe.NAME], or a camera's own name by default
    model_id    INTEGER REFERENCES models (id),  -- the model that scores its frames; NULL: none
    created_at  INTEGER NOT NULL,
    -- Sensitivity in force (the config's [recipe.NAME] false_alarm_rate and threshold, or those
    -- set over the API): the share of normal frames allowed above the threshold, and a fixed
    -- threshold in raw score units (NULL: the false-alarm rate's quantile of the model's
    -- calibration scores). sensitivity_file is set while an API change holds: the config's values
    -- at that time, as text; a reload that changes them ends it.
    false_alarm_rate REAL CHECK (false_alarm_rate IS NULL OR
                                 (false_alarm_rate > 0 AND false_alarm_rate < 1)),
    threshold   REAL CHECK (threshold IS NULL OR threshold > 0),
    sensitivity_file TEXT
);

-- A camera's recipe switched over the API (POST /api/v1/cameras/{name}/recipe): it holds while
-- the config file still says recipe_file for that camera; a reload that changes it ends it.
ALTER TABLE cameras ADD COLUMN recipe TEXT;
ALTER TABLE cameras ADD COLUMN recipe_file TEXT;

ALTER TABLE frames ADD COLUMN recipe_id INTEGER REFERENCES recipes (id);

CREATE TABLE models_new (
    id           INTEGER PRIMARY KEY,
    version      TEXT    NOT NULL UNIQUE,  -- unique across recipes
    path         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    threshold    REAL,
    meta         TEXT,
    -- 'active' (some recipe's model_id names it), 'retired' (replaced) or 'rejected' (failed
    -- validation: meta says why)
    status       TEXT    NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'retired', 'rejected')),
    frames_used  INTEGER,
    loss         REAL,
    activated_at INTEGER,
    recipe_id    INTEGER REFERENCES recipes (id)  -- the recipe it was trained for; NULL: a model
                                                   -- from before recipes, trained on every camera
);
INSERT INTO models_new (id, version, path, created_at, threshold, meta, status, frames_used, loss,
                        activated_at)
    SELECT id, version, path, created_at, threshold, meta,
           CASE WHEN status IN ('training', 'validating') THEN 'rejected' ELSE status END,
           frames_used, loss, activated_at
    FROM models;
DROP TABLE models;
ALTER TABLE models_new RENAME TO models;

CREATE TRIGGER events_model_new AFTER INSERT ON models BEGIN
    INSERT INTO events (kind, ref, created_at)
        VALUES ('model', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
    DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - 10000;
END;

CREATE TRIGGER events_model_status AFTER UPDATE OF status ON models
    WHEN OLD.status IS NOT NEW.status BEGIN
    INSERT INTO events (kind, ref, created_at)
        VALUES ('model', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
    DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - 10000;
END;

-- Every camera's default recipe (its own name) exists, its frames are its own, and the model that
-- scored them all becomes the model of each: nothing is lost, and each recipe trains on its own
-- from its next run (a warm start from that model).
INSERT INTO recipes (name, model_id, created_at)
    SELECT name, (SELECT id FROM models WHERE status = 'active' ORDER BY id DESC LIMIT 1),
           created_at
    FROM cameras ORDER BY id;
UPDATE frames SET recipe_id =
    (SELECT r.id FROM recipes r JOIN cameras c ON c.name = r.name WHERE c.id = frames.camera_id);
-- more than one 'active' row could only come from a database edited by hand: the newest stays
UPDATE models SET status = 'retired'
    WHERE status = 'active' AND id <> (SELECT max(id) FROM models WHERE status = 'active');

CREATE INDEX frames_by_recipe ON frames (recipe_id, id);
CREATE INDEX models_by_recipe ON models (recipe_id, id);
