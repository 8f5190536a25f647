-- Check-in: when the client arrived at the studio (NULL until then).
ALTER TABLE appointments ADD COLUMN IF NOT EXISTS checked_in_at TIMESTAMPTZ;
