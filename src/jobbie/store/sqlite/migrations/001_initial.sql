-- Jobbie schema, version 1. Timestamps are integer epoch milliseconds (UTC); durations are ms.

CREATE TABLE jobs (
    seq                 INTEGER PRIMARY KEY,      -- enqueue order: the FIFO key
    id                  TEXT    NOT NULL UNIQUE,
    queue               TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    payload             TEXT    NOT NULL,
    priority            INTEGER NOT NULL,         -- 0 critical, 1 high, 2 normal
    attempt             INTEGER NOT NULL DEFAULT 0,
    max_retries         INTEGER NOT NULL,
    extra_attempts      INTEGER NOT NULL DEFAULT 0, -- granted by requeue, on top of max_retries
    retry_backoff       TEXT    NOT NULL,
    retry_base_delay_ms INTEGER NOT NULL,
    retry_max_delay_ms  INTEGER NOT NULL,
    unique_key          TEXT,
    unique_period_ms    INTEGER,
    batch_id            TEXT,
    batch_counted       INTEGER NOT NULL DEFAULT 0, -- 1 once the job's first finish was counted
    tags                TEXT    NOT NULL DEFAULT '{}',
    progress            TEXT,
    checkpoint          TEXT,
    result              TEXT,
    last_error          TEXT,
    worker_id           TEXT,
    worker_hostname     TEXT,
    lease_duration_ms   INTEGER,
    created_at          INTEGER NOT NULL,
    scheduled_at        INTEGER,
    started_at          INTEGER,
    completed_at        INTEGER,
    failed_at           INTEGER,
    expire_at           INTEGER,
    lease_expires_at    INTEGER,
    cancel_requested    INTEGER NOT NULL DEFAULT 0
);

-- The fetch path: one index range scan per queue, most urgent then oldest first.
CREATE INDEX jobs_pending ON jobs (queue, priority, seq) WHERE state = 'pending';
-- Promotion of scheduled and retrying jobs.
CREATE INDEX jobs_due ON jobs (scheduled_at) WHERE state IN ('scheduled', 'retrying');
-- Lease reaper.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'active';
-- Expiry sweep of waiting jobs.
CREATE INDEX jobs_expiry ON jobs (expire_at)
    WHERE expire_at IS NOT NULL AND state IN ('pending', 'scheduled', 'retrying');
-- Search by queue and state, and retention pruning by state and finish time.
CREATE INDEX jobs_queue_state ON jobs (queue, state, created_at);
CREATE INDEX jobs_state_completed ON jobs (state, completed_at);
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;

CREATE TABLE job_errors (
    id        INTEGER PRIMARY KEY,
    job_id    TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt   INTEGER NOT NULL,
    error     TEXT    NOT NULL,
    backtrace TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX job_errors_job ON job_errors (job_id, attempt);

CREATE TABLE unique_locks (
    queue      TEXT    NOT NULL,
    unique_key TEXT    NOT NULL,
    job_id     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (queue, unique_key)
) WITHOUT ROWID;
CREATE INDEX unique_locks_expiry ON unique_locks (expires_at);

CREATE TABLE batches (
    id               TEXT    PRIMARY KEY,
    total            INTEGER NOT NULL,
    pending          INTEGER NOT NULL,
    succeeded        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    callback_queue   TEXT,
    callback_payload TEXT,
    callback_job_id  TEXT,
    created_at       INTEGER NOT NULL,
    completed_at     INTEGER
) WITHOUT ROWID;

CREATE TABLE queues (
    name            TEXT    PRIMARY KEY,
    paused          INTEGER NOT NULL DEFAULT 0,
    draining        INTEGER NOT NULL DEFAULT 0,
    max_concurrency INTEGER,
    rate_limit      INTEGER,
    rate_window_ms  INTEGER,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- Running totals per queue (never decremented).
CREATE TABLE queue_stats (
    queue     TEXT    PRIMARY KEY,
    enqueued  INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    dead      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Live job counts per queue and state, so that queue listing and concurrency limits never
-- scan the jobs table. Inserts are counted by the one insert path (inserts.py, one upsert per
-- queue and state for a whole batch); state and queue changes and deletes by the triggers.
CREATE TABLE queue_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
END;

CREATE TRIGGER jobs_count_update AFTER UPDATE OF state, queue ON jobs
    WHEN OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue
BEGIN
    UPDATE queue_counts SET n = n - 1 WHERE queue = OLD.queue AND state = OLD.state;
    INSERT INTO queue_counts (queue, state, n) VALUES (NEW.queue, NEW.state, 1)
        ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;
END;

-- Sliding-window throttle: one row per job handed out.
CREATE TABLE rate_limit_window (
    id    INTEGER PRIMARY KEY,
    queue TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX rate_limit_window_queue ON rate_limit_window (queue, at);

CREATE TABLE schedules (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    queue       TEXT    NOT NULL,
    cron        TEXT    NOT NULL,
    timezone    TEXT    NOT NULL DEFAULT 'UTC',
    payload     TEXT    NOT NULL DEFAULT 'null',
    priority    INTEGER NOT NULL DEFAULT 2,
    max_retries INTEGER NOT NULL DEFAULT 3,
    tags        TEXT    NOT NULL DEFAULT '{}',
    paused      INTEGER NOT NULL DEFAULT 0,
    last_run    INTEGER,
    next_run    INTEGER,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX schedules_next_run ON schedules (next_run) WHERE paused = 0;

CREATE TABLE workers (
    id         TEXT    PRIMARY KEY,
    hostname   TEXT,
    queues     TEXT    NOT NULL DEFAULT '[]',
    last_seen  INTEGER NOT NULL,
    started_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    type   TEXT    NOT NULL,
    job_id TEXT,
    queue  TEXT,
    data   TEXT,
    at     INTEGER NOT NULL
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_job ON events (job_id);

CREATE TABLE bulk_operations (
    id              TEXT    PRIMARY KEY,
    action          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    estimated_total INTEGER NOT NULL,
    affected        INTEGER NOT NULL DEFAULT 0,
    skipped         INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,
    request         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER
) WITHOUT ROWID;
