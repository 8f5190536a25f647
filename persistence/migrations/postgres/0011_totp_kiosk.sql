-- TOTP second factor and studio kiosks. A factor's secret is stored only
-- encrypted; last_step is the replay guard that must survive a restart;
-- recovery holds the recovery codes' hashes. Challenges (the step between
-- the login code and the TOTP code) and kiosks are found by hash and id.
-- Accepted by PostgreSQL and CockroachDB.

CREATE TABLE IF NOT EXISTS totp_factors (
	user_id       TEXT        PRIMARY KEY,
	secret_cipher BYTEA       NOT NULL,
	confirmed_at  TIMESTAMPTZ,
	last_step     BIGINT      NOT NULL,
	recovery      BYTEA,
	failures      BIGINT      NOT NULL,
	locked_until  TIMESTAMPTZ,
	version       BIGINT      NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS mfa_challenges (
	challenge_hash BYTEA       PRIMARY KEY,
	user_id        TEXT        NOT NULL,
	device         TEXT        NOT NULL,
	user_agent     TEXT        NOT NULL,
	ip             TEXT        NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL,
	used_at        TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS mfa_challenges_expires ON mfa_challenges (expires_at);

CREATE TABLE IF NOT EXISTS kiosks (
	id         TEXT        PRIMARY KEY,
	label      TEXT        NOT NULL,
	created_by TEXT        NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	revoked_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS kiosks_expires ON kiosks (expires_at);
