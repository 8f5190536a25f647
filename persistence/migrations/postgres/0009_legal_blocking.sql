-- Legal documents and consents; IP and person blocklists. Accepted by both
-- PostgreSQL and CockroachDB: no sequences, advisory locks, LISTEN/NOTIFY or
-- exclusion constraints.
--
-- legal_documents_one_active is what keeps exactly one active version per
-- slug even if two activations race: the partial unique index refuses a
-- second active row, whatever the application got wrong.

CREATE TABLE IF NOT EXISTS legal_documents (
	slug         TEXT        NOT NULL,
	version      INT8        NOT NULL,
	title        TEXT        NOT NULL,
	body         TEXT        NOT NULL,
	active       BOOL        NOT NULL DEFAULT false,
	created_by   TEXT        NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	activated_at TIMESTAMPTZ, -- NULL until first activated
	PRIMARY KEY (slug, version),
	CONSTRAINT legal_documents_version CHECK (version > 0)
);
CREATE UNIQUE INDEX IF NOT EXISTS legal_documents_one_active ON legal_documents (slug) WHERE active;

CREATE TABLE IF NOT EXISTS legal_consents (
	id           TEXT        NOT NULL PRIMARY KEY,
	subject_kind TEXT        NOT NULL, -- 'user' or 'device'
	subject_id   TEXT        NOT NULL,
	slug         TEXT        NOT NULL,
	version      INT8        NOT NULL,
	accepted_at  TIMESTAMPTZ NOT NULL,
	request_id   TEXT        NOT NULL,
	FOREIGN KEY (slug, version) REFERENCES legal_documents (slug, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS legal_consents_once ON legal_consents (subject_kind, subject_id, slug, version);
CREATE INDEX IF NOT EXISTS legal_consents_document ON legal_consents (slug, version, id);

CREATE TABLE IF NOT EXISTS blocks (
	id         TEXT        NOT NULL PRIMARY KEY,
	kind       TEXT        NOT NULL, -- 'ip', 'phone' or 'document'
	value      TEXT        NOT NULL, -- canonical CIDR for ip; hex blind index otherwise, never plaintext
	label      TEXT        NOT NULL, -- what an admin sees: the CIDR, or the masked value
	reason     TEXT        NOT NULL,
	created_by TEXT        NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ -- NULL: until removed
);
CREATE UNIQUE INDEX IF NOT EXISTS blocks_kind_value ON blocks (kind, value);
CREATE INDEX IF NOT EXISTS blocks_kind_id ON blocks (kind, id);
