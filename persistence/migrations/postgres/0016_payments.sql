-- Payments (docs/payments.md): one intent per thing paid online, the raw
-- log of the provider's events (stored before they are applied), a
-- double-entry journal and the exceptions reconciliation leaves for a
-- human. Times are TIMESTAMPTZ; money is BIGINT minor
-- units (COP). Accepted by PostgreSQL and CockroachDB.

CREATE TABLE IF NOT EXISTS payment_intents (
	id             TEXT    PRIMARY KEY,
	kind           TEXT    NOT NULL,
	subject_id     TEXT    NOT NULL,
	client_id      TEXT    NOT NULL,
	amount_minor   BIGINT NOT NULL CHECK (amount_minor > 0),
	currency       TEXT    NOT NULL,
	status         TEXT    NOT NULL,
	transaction_id TEXT    NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL,
	updated_at     TIMESTAMPTZ NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL,
	version        BIGINT NOT NULL
);
-- One live (pending) intent per thing paid.
CREATE UNIQUE INDEX IF NOT EXISTS payment_intents_live ON payment_intents (kind, subject_id) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS payment_intents_subject ON payment_intents (kind, subject_id, id);
CREATE INDEX IF NOT EXISTS payment_intents_status ON payment_intents (status, id);
CREATE INDEX IF NOT EXISTS payment_intents_updated ON payment_intents (updated_at);

CREATE TABLE IF NOT EXISTS payment_events (
	event_key      TEXT    PRIMARY KEY,
	provider       TEXT    NOT NULL,
	received_at    TIMESTAMPTZ NOT NULL,
	body           BYTEA    NOT NULL,
	transaction_id TEXT    NOT NULL,
	status         TEXT    NOT NULL,
	amount_minor   BIGINT NOT NULL,
	reference      TEXT    NOT NULL,
	applied_at     TIMESTAMPTZ,
	outcome        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_events_unapplied ON payment_events (received_at) WHERE applied_at IS NULL;

CREATE TABLE IF NOT EXISTS payment_movements (
	id           TEXT    PRIMARY KEY,
	intent_id    TEXT    NOT NULL,
	movement_key TEXT    NOT NULL,
	memo         TEXT    NOT NULL,
	at           TIMESTAMPTZ NOT NULL,
	UNIQUE (intent_id, movement_key)
);

CREATE TABLE IF NOT EXISTS payment_ledger (
	id           TEXT    PRIMARY KEY,
	movement_id  TEXT    NOT NULL REFERENCES payment_movements (id),
	intent_id    TEXT    NOT NULL,
	account      TEXT    NOT NULL,
	amount_minor BIGINT NOT NULL CHECK (amount_minor <> 0),
	at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_ledger_intent ON payment_ledger (intent_id, id);
CREATE INDEX IF NOT EXISTS payment_ledger_account ON payment_ledger (account);

CREATE TABLE IF NOT EXISTS payment_exceptions (
	id             TEXT    PRIMARY KEY,
	class          TEXT    NOT NULL,
	state          TEXT    NOT NULL,
	dedupe         TEXT    NOT NULL UNIQUE,
	intent_id      TEXT    NOT NULL,
	reference      TEXT    NOT NULL,
	transaction_id TEXT    NOT NULL,
	amount_minor   BIGINT NOT NULL,
	detail         TEXT    NOT NULL,
	opened_at      TIMESTAMPTZ NOT NULL,
	resolved_at    TIMESTAMPTZ,
	resolved_by    TEXT    NOT NULL,
	resolution     TEXT    NOT NULL,
	version        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_exceptions_state ON payment_exceptions (state, class, id);
