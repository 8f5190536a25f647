-- What every booking writes, made leaner (docs/benchmarks-notes.md).
--
-- Each table's strongest lock is taken first (DROP INDEX locks the table
-- exclusively): two nodes migrating at once then queue on the first
-- statement instead of each holding a weaker lock the other must upgrade
-- past (a deadlock).
--
-- Appointments by resource: most appointments use none (resource_id ''),
-- and each of them paid an entry in this index that no query reads.
DROP INDEX IF EXISTS appointments_resource_start;
CREATE INDEX IF NOT EXISTS appointments_resource_start_used ON appointments (resource_id, start_at) WHERE resource_id <> '';

-- The outbox holds only what is still to publish: the relay deletes an
-- event once the stream has acknowledged it (it used to mark the row, a new
-- row version and an index entry, and sweep it a day later). Rows marked by
-- an older version go now; one still running during a rolling upgrade
-- marks its own and sweeps them.
DROP INDEX IF EXISTS outbox_published_at;
DELETE FROM outbox WHERE published_at IS NOT NULL;
