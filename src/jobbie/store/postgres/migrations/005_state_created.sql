-- Searches and console pages filtered by state alone (e.g. every dead job, newest first) read
-- this index in order instead of sorting every job in that state.
CREATE INDEX jobs_state_created ON jobs (state, created_at);
