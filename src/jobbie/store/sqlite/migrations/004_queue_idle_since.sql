-- When the maintenance sweep first found a queue empty with its default configuration (NULL
-- while it has jobs); such a queue is forgotten once idle past JOBBIE_RETENTION_QUEUES.
ALTER TABLE queues ADD COLUMN idle_since INTEGER;
