-- The process that holds an in-progress key at the HTTP edge: the node's
-- incarnation (a random id per process start; "<node>/<incarnation>" in a
-- cluster). A retry that finds the key in progress takes it over at once
-- when that incarnation is gone (the node crashed or restarted) instead of
-- waiting for locked_until. '' (records written before, and completed
-- ones): wait for locked_until as before.
ALTER TABLE idempotency_records ADD COLUMN IF NOT EXISTS holder TEXT NOT NULL DEFAULT '';
