-- 0003_operator.sql — what the operator's side needs: a log of what happened, for the live feed
-- (GET /api/v1/events replays it from a client's last event id), written by triggers so every
-- writer (the scorer, the HTTP API, `inspectd train --register`) feeds it without knowing.
-- kind 'alert': a new alert (ref = alerts.id); 'review': an alert's state or note changed;
-- 'model': a model was added or changed status (ref = models.id). The newest 10 000 are kept.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('alert', 'review', 'model')),
    ref         INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TRIGGER events_alert AFTER INSERT ON alerts BEGIN
    INSERT INTO events (kind, ref, created_at)
        VALUES ('alert', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
    DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - 10000;
END;

CREATE TRIGGER events_review AFTER UPDATE OF state, note ON alerts
    WHEN OLD.state IS NOT NEW.state OR OLD.note IS NOT NEW.note BEGIN
    INSERT INTO events (kind, ref, created_at)
        VALUES ('review', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));
    DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - 10000;
END;

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

-- The alert list's filters: by time, and by state and camera newest first.
CREATE INDEX alerts_by_time ON alerts (created_at);
