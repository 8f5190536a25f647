-- Client profiles: every personal field sealed with AES-256-GCM under a key
-- id (gateway/auth/pii; the key id travels inside each ciphertext), with
-- keyed blind indexes for the equality lookups the desk needs. The phone is
-- not repeated here: it is users.phone_cipher, found by users.phone_index.
-- A NULL cipher is an empty field. anonymised_at is set when the right to
-- be forgotten scrubbed the row. Times are INTEGER unix microseconds, UTC.

CREATE TABLE IF NOT EXISTS client_profiles (
	user_id           TEXT    NOT NULL PRIMARY KEY,
	name_cipher       BLOB,
	email_cipher      BLOB,
	email_index       BLOB,
	document_cipher   BLOB, -- "type:number"
	document_index    BLOB,
	birth_date_cipher BLOB,
	notes_cipher      BLOB, -- clinical notes
	anonymised_at     INTEGER,
	version           INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS client_profiles_email_index ON client_profiles (email_index);
CREATE INDEX IF NOT EXISTS client_profiles_document_index ON client_profiles (document_index);
