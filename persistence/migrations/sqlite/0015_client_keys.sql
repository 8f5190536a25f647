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

-- An audit entry's free-text reason written about a client (a return or
-- an order cancellation in the client's words) is sealed under that
-- client's key; reason_client names the client ('' for a reason in the
-- clear).
ALTER TABLE audit_log ADD COLUMN reason_client TEXT NOT NULL DEFAULT '';
