-- Check-in: when the client arrived at the studio (NULL until then). Times
-- are INTEGER unix microseconds, UTC.
ALTER TABLE appointments ADD COLUMN checked_in_at INTEGER;
