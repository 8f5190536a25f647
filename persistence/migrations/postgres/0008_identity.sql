-- Identity: users found by a keyed blind index of their phone (the number
-- itself only encrypted), the OTP state each phone's session actor must not
-- lose in a restart (failure counts, lockout ladder, sends inside their
-- window, the hashed code), and refresh-token families (one per signed-in
-- device) with their rotating tokens, stored by hash. Accepted by
-- PostgreSQL and CockroachDB.

CREATE TABLE IF NOT EXISTS users (
	id           TEXT        PRIMARY KEY,
	phone_index  BYTEA       NOT NULL UNIQUE,
	phone_cipher BYTEA       NOT NULL,
	roles        TEXT        NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS otp_states (
	phone_key    TEXT        PRIMARY KEY,
	state        BYTEA       NOT NULL,
	locked_until TIMESTAMPTZ,
	version      BIGINT      NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS login_sessions (
	id            TEXT        PRIMARY KEY,
	user_id       TEXT        NOT NULL,
	device        TEXT        NOT NULL,
	user_agent    TEXT        NOT NULL,
	ip            TEXT        NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	last_seen_at  TIMESTAMPTZ NOT NULL,
	expires_at    TIMESTAMPTZ NOT NULL,
	revoked_at    TIMESTAMPTZ,
	revoke_reason TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS login_sessions_user ON login_sessions (user_id, last_seen_at);
CREATE INDEX IF NOT EXISTS login_sessions_revoked ON login_sessions (revoked_at);

CREATE TABLE IF NOT EXISTS refresh_tokens (
	token_hash  BYTEA       PRIMARY KEY,
	session_id  TEXT        NOT NULL,
	parent_hash BYTEA,
	issued_at   TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	used_at     TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
