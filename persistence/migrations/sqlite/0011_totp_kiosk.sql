-- TOTP second factor and studio kiosks. A factor's secret is stored only
-- encrypted; last_step is the replay guard that must survive a restart;
-- recovery holds the recovery codes' hashes. Challenges (the step between
-- the login code and the TOTP code) and kiosks are found by hash and id.
-- Times are INTEGER unix microseconds, UTC.

CREATE TABLE IF NOT EXISTS totp_factors (
	user_id       TEXT    PRIMARY KEY,
	secret_cipher BLOB    NOT NULL,
	confirmed_at  INTEGER,
	last_step     INTEGER NOT NULL,
	recovery      BLOB,
	failures      INTEGER NOT NULL,
	locked_until  INTEGER,
	version       INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS mfa_challenges (
	challenge_hash BLOB    PRIMARY KEY,
	user_id        TEXT    NOT NULL,
	device         TEXT    NOT NULL,
	user_agent     TEXT    NOT NULL,
	ip             TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL,
	used_at        INTEGER
);
CREATE INDEX IF NOT EXISTS mfa_challenges_expires ON mfa_challenges (expires_at);

CREATE TABLE IF NOT EXISTS kiosks (
	id         TEXT    PRIMARY KEY,
	label      TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	revoked_at INTEGER
);
CREATE INDEX IF NOT EXISTS kiosks_expires ON kiosks (expires_at);
