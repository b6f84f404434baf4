-- Event streams filter by queue and type: serve both from an index, in id order.
CREATE INDEX events_queue ON events (queue, id);
CREATE INDEX events_type ON events (type, id);
