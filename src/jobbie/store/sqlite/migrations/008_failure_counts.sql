-- The console's failure groups (dashboard, failures page) without aggregating every failed
-- job: live counts of dead and retrying jobs per error signature, state and queue, kept by the
-- triggers below like queue_counts. Only the counts are kept; a group's first and last
-- failure are read exactly from jobs_failures (one index seek each per row here).
-- A row is deleted when its count reaches 0, so the table holds only live combinations.
CREATE TABLE failure_counts (
    signature TEXT    NOT NULL,
    state     TEXT    NOT NULL,  -- 'dead' or 'retrying'
    queue     TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (signature, state, queue)
) WITHOUT ROWID;

INSERT INTO failure_counts (signature, state, queue, n)
    SELECT error_signature, state, queue, count(*) FROM jobs
    WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying')
    GROUP BY error_signature, state, queue;

-- Inserts never carry an error signature (inserts.py), so only updates and deletes count.
-- A job leaves a group when its state, queue or signature changes (retry, promotion of a
-- retrying job, move, a new failure) or when it is deleted (delete, retention pruning).
CREATE TRIGGER jobs_failure_leave AFTER UPDATE OF state, queue, error_signature ON jobs
    WHEN OLD.error_signature IS NOT NULL AND OLD.state IN ('dead', 'retrying')
        AND (OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue
             OR OLD.error_signature IS NOT NEW.error_signature)
BEGIN
    UPDATE failure_counts SET n = n - 1
        WHERE signature = OLD.error_signature AND state = OLD.state AND queue = OLD.queue;
    DELETE FROM failure_counts
        WHERE signature = OLD.error_signature AND state = OLD.state AND queue = OLD.queue
        AND n <= 0;
END;

CREATE TRIGGER jobs_failure_enter AFTER UPDATE OF state, queue, error_signature ON jobs
    WHEN NEW.error_signature IS NOT NULL AND NEW.state IN ('dead', 'retrying')
        AND (OLD.state IS NOT NEW.state OR OLD.queue IS NOT NEW.queue
             OR OLD.error_signature IS NOT NEW.error_signature)
BEGIN
    INSERT INTO failure_counts (signature, state, queue, n)
        VALUES (NEW.error_signature, NEW.state, NEW.queue, 1)
        ON CONFLICT (signature, state, queue) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER jobs_failure_delete AFTER DELETE ON jobs
    WHEN OLD.error_signature IS NOT NULL AND OLD.state IN ('dead', 'retrying')
BEGIN
    UPDATE failure_counts SET n = n - 1
        WHERE signature = OLD.error_signature AND state = OLD.state AND queue = OLD.queue;
    DELETE FROM failure_counts
        WHERE signature = OLD.error_signature AND state = OLD.state AND queue = OLD.queue
        AND n <= 0;
END;
