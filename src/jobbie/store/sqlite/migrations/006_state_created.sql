-- The console's jobs page filtered by state alone (every dead job, across queues) sorts by
-- created_at, newest first: without this index SQLite read every job in that state and sorted
-- them (350 ms for 100,000 dead jobs in a 1,000,000-job store) to draw 50 rows.
CREATE INDEX jobs_state_created ON jobs (state, created_at);
