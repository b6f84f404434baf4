-- Jobbie on PostgreSQL, version 1. The columns keep the neutral shape of jobbie.store.records:
-- times are bigint epoch milliseconds (UTC) from the database clock, durations are ms, JSON
-- columns are text exactly as the client sent it (cast to jsonb only by searches).

CREATE TABLE jobs (
    seq                 bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- FIFO key
    id                  text    NOT NULL UNIQUE,
    queue               text    NOT NULL,
    state               text    NOT NULL,
    payload             text    NOT NULL,
    priority            integer NOT NULL,           -- 0 critical, 1 high, 2 normal
    attempt             integer NOT NULL DEFAULT 0,
    max_retries         integer NOT NULL,
    extra_attempts      integer NOT NULL DEFAULT 0,
    retry_backoff       text    NOT NULL,
    retry_base_delay_ms bigint  NOT NULL,
    retry_max_delay_ms  bigint  NOT NULL,
    unique_key          text,
    unique_period_ms    bigint,
    batch_id            text,
    batch_counted       boolean NOT NULL DEFAULT false,
    tags                text    NOT NULL DEFAULT '{}',
    progress            text,
    checkpoint          text,
    result              text,
    last_error          text,
    error_signature     text,
    worker_id           text,
    worker_hostname     text,
    lease_duration_ms   bigint,
    created_at          bigint  NOT NULL,
    scheduled_at        bigint,
    started_at          bigint,
    completed_at        bigint,
    failed_at           bigint,
    expire_at           bigint,
    lease_expires_at    bigint,
    cancel_requested    boolean NOT NULL DEFAULT false
);

-- The claim: one index range per queue, most urgent then oldest first.
CREATE INDEX jobs_pending ON jobs (queue, priority, seq) WHERE state = 'pending';
CREATE INDEX jobs_due ON jobs (scheduled_at) WHERE state IN ('scheduled', 'retrying');
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'active';
CREATE INDEX jobs_expiry ON jobs (expire_at)
    WHERE expire_at IS NOT NULL AND state IN ('pending', 'scheduled', 'retrying');
CREATE INDEX jobs_queue_state ON jobs (queue, state, created_at);
CREATE INDEX jobs_state_completed ON jobs (state, completed_at);
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_batch ON jobs (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_error_signature ON jobs (error_signature, created_at)
    WHERE error_signature IS NOT NULL;
CREATE INDEX jobs_failures ON jobs (state, error_signature, queue, failed_at)
    WHERE error_signature IS NOT NULL;

CREATE TABLE job_errors (
    id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    text    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt   integer NOT NULL,
    error     text    NOT NULL,
    backtrace text,
    at        bigint  NOT NULL
);
CREATE INDEX job_errors_job ON job_errors (job_id, attempt);

-- Unique jobs: the primary key is the lock; inserts take it with ON CONFLICT, replacing a
-- holder whose period ran out or whose job finished.
CREATE TABLE unique_locks (
    queue      text   NOT NULL,
    unique_key text   NOT NULL,
    job_id     text   NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (queue, unique_key)
);
CREATE INDEX unique_locks_expiry ON unique_locks (expires_at);

CREATE TABLE batches (
    id               text    PRIMARY KEY,
    total            integer NOT NULL,
    pending          integer NOT NULL,
    succeeded        integer NOT NULL DEFAULT 0,
    failed           integer NOT NULL DEFAULT 0,
    callback_queue   text,
    callback_payload text,
    callback_job_id  text,
    created_at       bigint  NOT NULL,
    completed_at     bigint
);

CREATE TABLE queues (
    name            text    PRIMARY KEY,
    paused          boolean NOT NULL DEFAULT false,
    draining        boolean NOT NULL DEFAULT false,
    max_concurrency integer,
    rate_limit      integer,
    rate_window_ms  bigint,
    created_at      bigint  NOT NULL,
    idle_since      bigint
);

-- Counters are split into slots (by server connection) so that concurrent transactions do not
-- all update one hot row; a reader sums the slots of a queue. See count_slot() below.
-- Running totals per queue (never decremented).
CREATE TABLE queue_stats (
    queue     text     NOT NULL,
    slot      smallint NOT NULL,
    enqueued  bigint   NOT NULL DEFAULT 0,
    completed bigint   NOT NULL DEFAULT 0,
    failed    bigint   NOT NULL DEFAULT 0,
    dead      bigint   NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, slot)
);

-- Live job counts per queue and state, kept by the statement triggers below.
CREATE TABLE queue_counts (
    queue text     NOT NULL,
    state text     NOT NULL,
    slot  smallint NOT NULL,
    n     bigint   NOT NULL,
    PRIMARY KEY (queue, state, slot)
);

CREATE FUNCTION count_slot() RETURNS smallint LANGUAGE sql VOLATILE AS
$$ SELECT (pg_backend_pid() % 16)::smallint $$;

-- One upsert per (queue, state) a statement touched, in key order (a fixed lock order).
CREATE FUNCTION jobs_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_counts (queue, state, slot, n)
        SELECT queue, state, count_slot(), count(*) FROM new_rows
        GROUP BY queue, state ORDER BY queue, state
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = queue_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_counts (queue, state, slot, n)
        SELECT queue, state, count_slot(), -count(*) FROM old_rows
        GROUP BY queue, state ORDER BY queue, state
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = queue_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queue_counts (queue, state, slot, n)
        SELECT queue, state, count_slot(), sum(delta) FROM (
            SELECT o.queue, o.state, -1 AS delta FROM old_rows o JOIN new_rows n USING (seq)
                WHERE o.state <> n.state OR o.queue <> n.queue
            UNION ALL
            SELECT n.queue, n.state, 1 FROM old_rows o JOIN new_rows n USING (seq)
                WHERE o.state <> n.state OR o.queue <> n.queue
        ) AS changes
        GROUP BY queue, state HAVING sum(delta) <> 0 ORDER BY queue, state
        ON CONFLICT (queue, state, slot) DO UPDATE SET n = queue_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_insert();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_delete();
CREATE TRIGGER jobs_count_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_count_update();

-- Sliding-window throttle: one row per job handed out.
CREATE TABLE rate_limit_window (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue text   NOT NULL,
    at    bigint NOT NULL
);
CREATE INDEX rate_limit_window_queue ON rate_limit_window (queue, at);

CREATE TABLE schedules (
    id          text    PRIMARY KEY,
    name        text    NOT NULL UNIQUE,
    queue       text    NOT NULL,
    cron        text    NOT NULL,
    timezone    text    NOT NULL DEFAULT 'UTC',
    payload     text    NOT NULL DEFAULT 'null',
    priority    integer NOT NULL DEFAULT 2,
    max_retries integer NOT NULL DEFAULT 3,
    tags        text    NOT NULL DEFAULT '{}',
    paused      boolean NOT NULL DEFAULT false,
    last_run    bigint,
    next_run    bigint,
    created_at  bigint  NOT NULL,
    updated_at  bigint  NOT NULL
);
CREATE INDEX schedules_next_run ON schedules (next_run) WHERE NOT paused;

CREATE TABLE workers (
    id         text   PRIMARY KEY,
    hostname   text,
    queues     text   NOT NULL DEFAULT '[]',
    last_seen  bigint NOT NULL,
    started_at bigint NOT NULL
);

-- Lifecycle events. `id` follows insert order, which in PostgreSQL is not commit order: a
-- stream that resumed after the highest id it saw could skip a row that commits later with a
-- lower id. So streams read by `pos`, handed out after commit by one sequencer at a time
-- (tx.sequence_events, under an advisory lock): a row gets its pos only once committed, and
-- later runs only hand out higher ones, so a stream resuming after pos P misses nothing.
CREATE TABLE events (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pos    bigint UNIQUE,
    type   text   NOT NULL,
    job_id text,
    queue  text,
    data   text,
    at     bigint NOT NULL
);
CREATE SEQUENCE events_pos;
CREATE INDEX events_unsequenced ON events (id) WHERE pos IS NULL;
CREATE INDEX events_at ON events (at);
CREATE INDEX events_job ON events (job_id);
CREATE INDEX events_queue ON events (queue, pos);
CREATE INDEX events_type ON events (type, pos);

CREATE TABLE bulk_operations (
    id              text    PRIMARY KEY,
    action          text    NOT NULL,
    status          text    NOT NULL,
    estimated_total integer NOT NULL,
    affected        integer NOT NULL DEFAULT 0,
    skipped         integer NOT NULL DEFAULT 0,
    errors          integer NOT NULL DEFAULT 0,
    request         text    NOT NULL,
    created_at      bigint  NOT NULL,
    finished_at     bigint,
    node_id         text     -- the server running it; its crash must not touch other nodes'
);

CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       bigint NOT NULL,
    actor    text   NOT NULL,
    action   text   NOT NULL,
    target   text   NOT NULL,
    affected integer,
    source   text   NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE queue_history (
    queue     text   NOT NULL,
    minute    bigint NOT NULL,
    completed bigint NOT NULL,
    failed    bigint NOT NULL,
    depth     bigint NOT NULL,
    PRIMARY KEY (minute, queue)
);

-- The servers sharing this database, for /api/v1/cluster/status: each refreshes its row.
CREATE TABLE nodes (
    id         text   PRIMARY KEY,
    address    text   NOT NULL,
    started_at bigint NOT NULL,
    last_seen  bigint NOT NULL
);

-- The scheduler's leader: one row, held by the node whose lease has not run out.
CREATE TABLE leader (
    name       text   PRIMARY KEY,
    node_id    text   NOT NULL,
    expires_at bigint NOT NULL
);

-- After a commit, a server's announcer (tx.Announcer) calls this in a transaction of its own
-- (synchronous_commit off): give committed events their stream positions under the events
-- lock (457135226882, database.EVENTS_LOCK), then notify the other servers. One statement, so
-- the database-wide locks (ours, and NOTIFY's) are held for the least time.
CREATE FUNCTION jobbie_announce(payload text, sequence boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF sequence THEN
        PERFORM pg_advisory_xact_lock(457135226882);
        UPDATE events SET pos = p.pos
            FROM (SELECT id, nextval('events_pos') AS pos
                  FROM (SELECT id FROM events WHERE pos IS NULL ORDER BY id) AS waiting) AS p
            WHERE events.id = p.id;
    END IF;
    PERFORM pg_notify('jobbie', payload);
END $$;
