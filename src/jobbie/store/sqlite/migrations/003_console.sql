-- The web console's data: each failed job's error signature (jobbie.store.signature), so the
-- failures page groups failures and `error_signature` filters searches through an index.
ALTER TABLE jobs ADD COLUMN error_signature TEXT;

CREATE INDEX jobs_error_signature ON jobs (error_signature, state)
    WHERE error_signature IS NOT NULL;
