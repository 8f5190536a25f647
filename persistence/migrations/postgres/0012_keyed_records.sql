-- Idempotency records written by the actor that decided the request, in
-- the group commit of its change: owner names the actor's calendar
-- ("staff/<id>", "cart/<id>"), so an activation loads the keys it
-- answered. '' for records the HTTP edge writes.
ALTER TABLE idempotency_records ADD COLUMN IF NOT EXISTS owner TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS idempotency_records_owner ON idempotency_records (owner, expires_at);
