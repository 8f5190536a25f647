-- The second factor staff roles must hold (docs/identity-2fa-kiosk.md):
-- users.second_factor_due is when a user of a staff role without a
-- confirmed factor stops being able to enrol with the login code alone
-- (NULL: not yet set; set at promotion or at the first such sign-in);
-- login_sessions.second_factor records that the session passed the TOTP
-- step, so its refreshed tokens keep the claim; totp_factors.enrolment_key
-- is the hash of the Idempotency-Key a pending enrolment was started
-- under, so a retry answers that enrolment instead of a new secret.
-- Times are INTEGER unix microseconds, UTC; booleans 0/1.
ALTER TABLE users ADD COLUMN second_factor_due INTEGER;
ALTER TABLE login_sessions ADD COLUMN second_factor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE totp_factors ADD COLUMN enrolment_key BLOB;
