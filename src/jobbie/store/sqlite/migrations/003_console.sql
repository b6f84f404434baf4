-- The web console's data: each failed job's error signature (jobbie.store.signature), so the
-- failures page groups failures and `error_signature` filters searches through an index.
ALTER TABLE jobs ADD COLUMN error_signature TEXT;

CREATE INDEX jobs_error_signature ON jobs (error_signature, state)
    WHERE error_signature IS NOT NULL;

-- Every management action through the API or the console, newest first by id; entries older
-- than the audit retention are pruned as new ones are written.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    affected INTEGER,
    source TEXT NOT NULL
);

CREATE INDEX audit_log_at ON audit_log (at);

-- Per-minute snapshots of each queue for the console's charts: cumulative totals (so a
-- minute's throughput is the difference from the minute before) and the waiting depth. The
-- latest snapshot of a minute replaces earlier ones; rows older than 7 days are pruned.
CREATE TABLE queue_history (
    queue     TEXT    NOT NULL,
    minute    INTEGER NOT NULL,
    completed INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    depth     INTEGER NOT NULL,
    PRIMARY KEY (minute, queue)
) WITHOUT ROWID;
