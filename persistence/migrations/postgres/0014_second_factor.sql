-- The second factor staff roles must hold (docs/identity-2fa-kiosk.md):
-- users.second_factor_due is when a user of a staff role without a
-- confirmed factor stops being able to enrol with the login code alone
-- (NULL: not yet set; set at promotion or at the first such sign-in);
-- login_sessions.second_factor records that the session passed the TOTP
-- step, so its refreshed tokens keep the claim; totp_factors.enrolment_key
-- is the hash of the Idempotency-Key a pending enrolment was started
-- under, so a retry answers that enrolment instead of a new secret.
-- Accepted by PostgreSQL and CockroachDB.
ALTER TABLE users ADD COLUMN IF NOT EXISTS second_factor_due TIMESTAMPTZ;
ALTER TABLE login_sessions ADD COLUMN IF NOT EXISTS second_factor BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE totp_factors ADD COLUMN IF NOT EXISTS enrolment_key BYTEA;
