-- Identity: users found by a keyed blind index of their phone (the number
-- itself only encrypted), the OTP state each phone's session actor must not
-- lose in a restart (failure counts, lockout ladder, sends inside their
-- window, the hashed code), and refresh-token families (one per signed-in
-- device) with their rotating tokens, stored by hash. Times are INTEGER
-- unix microseconds, UTC.

CREATE TABLE IF NOT EXISTS users (
	id           TEXT    PRIMARY KEY,
	phone_index  BLOB    NOT NULL UNIQUE,
	phone_cipher BLOB    NOT NULL,
	roles        TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS otp_states (
	phone_key    TEXT    PRIMARY KEY,
	state        BLOB    NOT NULL,
	locked_until INTEGER,
	version      INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS login_sessions (
	id            TEXT    PRIMARY KEY,
	user_id       TEXT    NOT NULL,
	device        TEXT    NOT NULL,
	user_agent    TEXT    NOT NULL,
	ip            TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	last_seen_at  INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	revoked_at    INTEGER,
	revoke_reason TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS login_sessions_user ON login_sessions (user_id, last_seen_at);
CREATE INDEX IF NOT EXISTS login_sessions_revoked ON login_sessions (revoked_at);

CREATE TABLE IF NOT EXISTS refresh_tokens (
	token_hash  BLOB    PRIMARY KEY,
	session_id  TEXT    NOT NULL,
	parent_hash BLOB,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	used_at     INTEGER
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
