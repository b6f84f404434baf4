-- The console's failure groups (dashboard, failures page) without aggregating every failed
-- job: live counts of dead and retrying jobs per error signature, state and queue, kept by the
-- statement triggers below like queue_counts, in slots (count_slot()) so that servers failing
-- jobs of one kind at once do not all update one hot row; a reader sums the slots. Only the
-- counts are kept; a group's first and last failure are read exactly from jobs_failures (one
-- index seek each per signature, state and queue). A slot row may go negative (a job counted
-- in one slot, uncounted in another) or sum to 0 with its siblings: readers keep the cells
-- whose sum is positive; maintenance deletes cells summing to 0 (sweep.compact_failure_counts)
-- and a forgotten or deleted queue's rows go with it.
CREATE TABLE failure_counts (
    signature text     NOT NULL,
    state     text     NOT NULL,  -- 'dead' or 'retrying'
    queue     text     NOT NULL,
    slot      smallint NOT NULL,
    n         bigint   NOT NULL,
    PRIMARY KEY (signature, state, queue, slot)
);

INSERT INTO failure_counts (signature, state, queue, slot, n)
    SELECT error_signature, state, queue, 0, count(*) FROM jobs
    WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying')
    GROUP BY error_signature, state, queue;

-- Inserts never carry an error signature (inserts.py), so only updates and deletes count.
-- A job leaves a group when its state, queue or signature changes (retry, promotion of a
-- retrying job, move, a new failure) or when it is deleted (delete, retention pruning).
-- Statements that touch no failed job (claims, acks, heartbeats) stop at the first check.
CREATE FUNCTION jobs_failure_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows
                   WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying'))
       AND NOT EXISTS (SELECT 1 FROM new_rows
                       WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying'))
    THEN
        RETURN NULL;
    END IF;
    INSERT INTO failure_counts (signature, state, queue, slot, n)
        SELECT signature, state, queue, count_slot(), sum(delta) FROM (
            SELECT o.error_signature AS signature, o.state, o.queue, -1 AS delta
                FROM old_rows o JOIN new_rows n USING (seq)
                WHERE o.error_signature IS NOT NULL AND o.state IN ('dead', 'retrying')
                AND (o.state <> n.state OR o.queue <> n.queue
                     OR o.error_signature IS DISTINCT FROM n.error_signature)
            UNION ALL
            SELECT n.error_signature, n.state, n.queue, 1
                FROM old_rows o JOIN new_rows n USING (seq)
                WHERE n.error_signature IS NOT NULL AND n.state IN ('dead', 'retrying')
                AND (o.state <> n.state OR o.queue <> n.queue
                     OR o.error_signature IS DISTINCT FROM n.error_signature)
        ) AS changes
        GROUP BY signature, state, queue HAVING sum(delta) <> 0
        ORDER BY signature, state, queue
        ON CONFLICT (signature, state, queue, slot)
        DO UPDATE SET n = failure_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION jobs_failure_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO failure_counts (signature, state, queue, slot, n)
        SELECT error_signature, state, queue, count_slot(), -count(*) FROM old_rows
        WHERE error_signature IS NOT NULL AND state IN ('dead', 'retrying')
        GROUP BY error_signature, state, queue ORDER BY error_signature, state, queue
        ON CONFLICT (signature, state, queue, slot)
        DO UPDATE SET n = failure_counts.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_failure_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_failure_update();
CREATE TRIGGER jobs_failure_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_failure_delete();
