-- Fair queueing and per-key limits: a job may carry a `key` (its tenant). A queue serves its
-- keys in FIFO order (the default) or in turn (round_robin), and may cap each key's active
-- jobs and hand-out rate. See jobbie.store.fairness.
ALTER TABLE jobs ADD COLUMN key text;
ALTER TABLE schedules ADD COLUMN key text;
ALTER TABLE queues ADD COLUMN fairness text NOT NULL DEFAULT 'fifo';
ALTER TABLE queues ADD COLUMN key_concurrency integer;
ALTER TABLE queues ADD COLUMN key_rate_limit integer;
ALTER TABLE queues ADD COLUMN key_rate_window_ms bigint;

-- One key's ready jobs, most urgent then oldest: the fair claim reads a key at a time (jobs
-- without a key too, as key IS NULL).
CREATE INDEX jobs_key_pending ON jobs (queue, key, priority, seq) WHERE state = 'pending';
-- Search by key.
CREATE INDEX jobs_key ON jobs (key, created_at) WHERE key IS NOT NULL;

-- Each key of a queue with its turn: `served` grows each time the fair claim serves the key,
-- so the least recently served key has the smallest. '' stands for the jobs without a key.
-- Written by enqueues only when the key is new, and by claims of that queue (which take turns
-- under the queue's advisory lock). Rows of keys with no unfinished jobs are pruned; a
-- statement that finds or makes the row of a key with a waiting job holds the shared side of
-- the queue's key lock until commit, and the sweep forgets keys only of queues whose lock it
-- gets (so a key with ready jobs never loses its row).
CREATE TABLE queue_keys (
    queue  text   NOT NULL,
    key    text   NOT NULL,
    served bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, key)
);
-- The keys in turn order, ties by key (as the round robin reads them: no sort).
CREATE INDEX queue_keys_turn ON queue_keys (queue, served, key COLLATE "C");

-- Jobs per queue, key and state (keyed jobs only), slotted like queue_counts so concurrent
-- transactions on one key do not share a hot row; a reader sums the slots.
CREATE TABLE key_counts (
    queue text     NOT NULL,
    key   text     NOT NULL,
    state text     NOT NULL,
    slot  smallint NOT NULL,
    n     bigint   NOT NULL,
    PRIMARY KEY (queue, key, state, slot)
);
CREATE INDEX key_counts_state ON key_counts (queue, state);

-- Completions per queue, key and minute (epoch ms / 60000), for "completed in the last
-- minute"; older minutes are pruned.
CREATE TABLE key_done (
    queue  text     NOT NULL,
    key    text     NOT NULL,
    minute bigint   NOT NULL,
    slot   smallint NOT NULL,
    n      bigint   NOT NULL,
    PRIMARY KEY (queue, key, minute, slot)
);
CREATE INDEX key_done_minute ON key_done (minute);

-- Per-key sliding-window throttle: one row per keyed job handed out by a queue with one.
CREATE TABLE key_rate_window (
    id    bigserial PRIMARY KEY,
    queue text      NOT NULL,
    key   text      NOT NULL,
    at    bigint    NOT NULL
);
CREATE INDEX key_rate_window_key ON key_rate_window (queue, key, at);
CREATE INDEX key_rate_window_at ON key_rate_window (at);

-- Statement triggers like the queue counters'; statements touching no keyed job only scan
-- their transition tables.
CREATE FUNCTION jobs_key_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('jobbie.keys:' || queue))
        FROM (SELECT DISTINCT queue FROM new_rows WHERE key IS NOT NULL ORDER BY 1) AS q;
    INSERT INTO queue_keys (queue, key)
        SELECT DISTINCT n.queue, n.key FROM new_rows n
        WHERE n.key IS NOT NULL AND NOT EXISTS
            (SELECT FROM queue_keys k WHERE k.queue = n.queue AND k.key = n.key)
        ORDER BY 1, 2 ON CONFLICT DO NOTHING;
    INSERT INTO key_counts (queue, key, state, slot, n)
        SELECT queue, key, state, count_slot(), count(*) FROM new_rows WHERE key IS NOT NULL
        GROUP BY queue, key, state ORDER BY queue, key, state
        ON CONFLICT (queue, key, state, slot) DO UPDATE SET n = key_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_key_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO key_counts (queue, key, state, slot, n)
        SELECT queue, key, state, count_slot(), -count(*) FROM old_rows WHERE key IS NOT NULL
        GROUP BY queue, key, state ORDER BY queue, key, state
        ON CONFLICT (queue, key, state, slot) DO UPDATE SET n = key_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_key_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Most updates touch no keyed job (or change nothing a key counter depends on).
    IF NOT EXISTS (SELECT FROM new_rows WHERE key IS NOT NULL)
        AND NOT EXISTS (SELECT FROM old_rows WHERE key IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    -- A keyed job that starts waiting (enqueued elsewhere, retried, moved) needs its key's
    -- turn row: the key may have been forgotten while it had no unfinished jobs.
    PERFORM pg_advisory_xact_lock_shared(hashtext('jobbie.keys:' || queue))
        FROM (SELECT DISTINCT n.queue FROM old_rows o JOIN new_rows n USING (seq)
            WHERE n.key IS NOT NULL AND n.state IN ('scheduled', 'pending', 'retrying')
                AND (o.state <> n.state OR o.queue <> n.queue OR o.key IS DISTINCT FROM n.key)
            ORDER BY 1) AS q;
    INSERT INTO queue_keys (queue, key)
        SELECT DISTINCT n.queue, n.key FROM old_rows o JOIN new_rows n USING (seq)
        WHERE n.key IS NOT NULL AND n.state IN ('scheduled', 'pending', 'retrying')
            AND (o.state <> n.state OR o.queue <> n.queue OR o.key IS DISTINCT FROM n.key)
            AND NOT EXISTS (SELECT FROM queue_keys k WHERE k.queue = n.queue AND k.key = n.key)
        ORDER BY 1, 2 ON CONFLICT DO NOTHING;
    INSERT INTO key_counts (queue, key, state, slot, n)
        SELECT queue, key, state, count_slot(), sum(delta) FROM (
            SELECT o.queue, o.key, o.state, -1 AS delta FROM old_rows o JOIN new_rows n USING (seq)
                WHERE o.key IS NOT NULL
                    AND (o.state <> n.state OR o.queue <> n.queue OR o.key IS DISTINCT FROM n.key)
            UNION ALL
            SELECT n.queue, n.key, n.state, 1 FROM old_rows o JOIN new_rows n USING (seq)
                WHERE n.key IS NOT NULL
                    AND (o.state <> n.state OR o.queue <> n.queue OR o.key IS DISTINCT FROM n.key)
        ) AS changes
        GROUP BY queue, key, state HAVING sum(delta) <> 0 ORDER BY queue, key, state
        ON CONFLICT (queue, key, state, slot) DO UPDATE SET n = key_counts.n + excluded.n;
    INSERT INTO key_done (queue, key, minute, slot, n)
        SELECT n.queue, n.key, n.completed_at / 60000, count_slot(), count(*)
        FROM old_rows o JOIN new_rows n USING (seq)
        WHERE n.key IS NOT NULL AND n.state = 'completed' AND o.state <> 'completed'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (queue, key, minute, slot) DO UPDATE SET n = key_done.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_key_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_key_insert();
CREATE TRIGGER jobs_key_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_key_delete();
CREATE TRIGGER jobs_key_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_key_update();
