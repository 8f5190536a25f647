-- A data key per client (crypto-shredding): personal free text about the
-- client (shipping addresses, cancellation and return reasons, reasons in
-- events) is sealed under it, and the key itself is stored sealed under
-- the PII keyring. Anonymisation deletes the row, so every copy of that
-- text (events in the stream, backups) stops opening. Times are INTEGER
-- unix microseconds, UTC.

CREATE TABLE IF NOT EXISTS client_keys (
	client_id  TEXT    NOT NULL PRIMARY KEY,
	key_cipher BLOB    NOT NULL,
	created_at INTEGER NOT NULL
);
