-- Fair queueing and per-key limits: a job may carry a `key` (its tenant). A queue serves its
-- keys in FIFO order (the default) or in turn (round_robin), and may cap each key's active
-- jobs and hand-out rate. See jobbie.store.fairness.
ALTER TABLE jobs ADD COLUMN key TEXT;
ALTER TABLE schedules ADD COLUMN key TEXT;
ALTER TABLE queues ADD COLUMN fairness TEXT NOT NULL DEFAULT 'fifo';
ALTER TABLE queues ADD COLUMN key_concurrency INTEGER;
ALTER TABLE queues ADD COLUMN key_rate_limit INTEGER;
ALTER TABLE queues ADD COLUMN key_rate_window_ms INTEGER;

-- One key's ready jobs, most urgent then oldest: the fair claim reads a key at a time (jobs
-- without a key too, as key IS NULL).
CREATE INDEX jobs_key_pending ON jobs (queue, key, priority, seq) WHERE state = 'pending';
-- Search by key.
CREATE INDEX jobs_key ON jobs (key, created_at) WHERE key IS NOT NULL;

-- Each key of a queue with its turn: `served` grows each time the fair claim serves the key,
-- so the least recently served key has the smallest. '' stands for the jobs without a key.
-- Rows of keys with no unfinished jobs are pruned by the sweep.
CREATE TABLE queue_keys (
    queue  TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    served INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;
CREATE INDEX queue_keys_turn ON queue_keys (queue, served);

-- Jobs per queue, key and state (keyed jobs only), kept by the triggers below.
CREATE TABLE key_counts (
    queue TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, key, state)
) WITHOUT ROWID;
-- The busiest keys of a queue (most pending first).
CREATE INDEX key_counts_busiest ON key_counts (queue, state, n);

-- Completions per queue, key and minute (epoch ms // 60000), for "completed in the last
-- minute"; minutes older than the previous one are pruned.
CREATE TABLE key_done (
    queue  TEXT    NOT NULL,
    key    TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (queue, key, minute)
) WITHOUT ROWID;
CREATE INDEX key_done_minute ON key_done (minute);

-- Per-key sliding-window throttle: one row per keyed job handed out by a queue with one.
CREATE TABLE key_rate_window (
    id    INTEGER PRIMARY KEY,
    queue TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX key_rate_window_key ON key_rate_window (queue, key, at);
CREATE INDEX key_rate_window_at ON key_rate_window (at);

-- Row triggers that do nothing for jobs without a key (the WHEN clause), so queues that do
-- not use keys pay nothing.
CREATE TRIGGER jobs_key_insert AFTER INSERT ON jobs WHEN NEW.key IS NOT NULL BEGIN
    INSERT INTO queue_keys (queue, key) VALUES (NEW.queue, NEW.key) ON CONFLICT DO NOTHING;
    INSERT INTO key_counts (queue, key, state, n) VALUES (NEW.queue, NEW.key, NEW.state, 1)
        ON CONFLICT (queue, key, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_key_delete AFTER DELETE ON jobs WHEN OLD.key IS NOT NULL BEGIN
    UPDATE key_counts SET n = n - 1
        WHERE queue = OLD.queue AND key = OLD.key AND state = OLD.state;
END;

CREATE TRIGGER jobs_key_update AFTER UPDATE OF state, queue, key ON jobs
    WHEN (OLD.key IS NOT NULL OR NEW.key IS NOT NULL)
        AND (OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue OR OLD.key IS NOT NEW.key)
BEGIN
    UPDATE key_counts SET n = n - 1
        WHERE queue = OLD.queue AND key = OLD.key AND state = OLD.state;
    INSERT INTO queue_keys (queue, key) SELECT NEW.queue, NEW.key WHERE NEW.key IS NOT NULL
        ON CONFLICT DO NOTHING;
    INSERT INTO key_counts (queue, key, state, n)
        SELECT NEW.queue, NEW.key, NEW.state, 1 WHERE NEW.key IS NOT NULL
        ON CONFLICT (queue, key, state) DO UPDATE SET n = n + 1;
    INSERT INTO key_done (queue, key, minute, n)
        SELECT NEW.queue, NEW.key, NEW.completed_at / 60000, 1
        WHERE NEW.key IS NOT NULL AND NEW.state = 'completed'
        ON CONFLICT (queue, key, minute) DO UPDATE SET n = n + 1;
END;
