-- Event ids must never be handed out twice: SSE clients resume after the last id they saw.
-- Without AUTOINCREMENT, SQLite reuses ids from 1 once pruning empties the table, so a
-- resuming stream would miss every new event until the ids caught up. Rebuild the table
-- with AUTOINCREMENT (its high-water mark survives deletes), keeping every row and index.
CREATE TABLE events_new (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    type   TEXT    NOT NULL,
    job_id TEXT,
    queue  TEXT,
    data   TEXT,
    at     INTEGER NOT NULL
);
INSERT INTO events_new (id, type, job_id, queue, data, at)
    SELECT id, type, job_id, queue, data, at FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_at ON events (at);
CREATE INDEX events_job ON events (job_id);
CREATE INDEX events_queue ON events (queue, id);
CREATE INDEX events_type ON events (type, id);
