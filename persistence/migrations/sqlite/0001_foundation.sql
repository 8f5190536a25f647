-- Foundation schema. Times are INTEGER unix microseconds, UTC (the
-- precision PostgreSQL keeps); NULL is the zero time where allowed.

CREATE TABLE IF NOT EXISTS idempotency_records (
	scope                 TEXT    NOT NULL,
	key                   TEXT    NOT NULL,
	request_hash          BLOB,
	state                 TEXT    NOT NULL,
	locked_until          INTEGER,
	response_status       INTEGER NOT NULL DEFAULT 0,
	response_content_type TEXT    NOT NULL DEFAULT '',
	response_body         BLOB,
	created_at            INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL,
	PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_records_expires_at ON idempotency_records (expires_at);

CREATE TABLE IF NOT EXISTS audit_log (
	id         TEXT    NOT NULL PRIMARY KEY,
	at         INTEGER NOT NULL,
	actor_id   TEXT    NOT NULL,
	actor_role TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	request_id TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	detail     BLOB
);
CREATE INDEX IF NOT EXISTS audit_log_subject_id ON audit_log (subject, id);

CREATE TABLE IF NOT EXISTS outbox (
	id           TEXT    NOT NULL PRIMARY KEY,
	subject      TEXT    NOT NULL,
	type         TEXT    NOT NULL,
	payload      BLOB,
	created_at   INTEGER NOT NULL,
	published_at INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS studios (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	time_zone  TEXT    NOT NULL,
	currency   TEXT    NOT NULL,
	phone      TEXT    NOT NULL,
	email      TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
