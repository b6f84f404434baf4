-- Searches (pg-ops): reading JSON text columns as jsonb, and job id prefixes.

-- jsonb cannot hold U+0000, which JSON text may (as the escape \u0000): such a character reads
-- as U+FFFD, so one job's payload never makes a whole search fail. (A string holding the six
-- characters backslash-u-0-0-0-0, escaped as "\\u0000", reads as "\ufffd" likewise.)
CREATE FUNCTION jobbie_jsonb(doc text) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT replace(doc, '\u0000', '\ufffd')::jsonb $$;

-- job_id_prefix is a range in code point order (COLLATE "C"), whatever the database's
-- collation; the unique index on id has the database's collation and cannot serve it.
CREATE INDEX jobs_id_prefix ON jobs (id COLLATE "C");
