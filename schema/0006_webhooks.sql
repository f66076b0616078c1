-- 0006_webhooks.sql — the webhooks' outbox ([webhook.NAME]): every event a webhook asked for
-- waits here until its receiver took it (a 2xx answer), so a receiver that is down for an hour,
-- or a daemon that restarts meanwhile, loses nothing; each webhook's rows are sent one at a time
-- in id order, the oldest first. Bounded per webhook by max_pending rows and max_age (the oldest
-- dropped first, counted). Times are Unix microseconds.
CREATE TABLE webhook_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hook        TEXT    NOT NULL,          -- NAME of [webhook.NAME]
    kind        TEXT    NOT NULL CHECK (kind IN ('alert', 'review', 'model', 'result')),
    body        TEXT    NOT NULL,          -- the JSON sent, as signed
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL DEFAULT 0 -- not tried again before this
);
CREATE INDEX webhook_outbox_by_hook ON webhook_outbox (hook, id);
