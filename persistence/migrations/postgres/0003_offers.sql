-- Offers: waitlist, prepaid session packages and vouchers. Accepted by both
-- PostgreSQL and CockroachDB: no sequences, advisory locks, LISTEN/NOTIFY or
-- exclusion constraints. Rules that span rows (one waiting entry per client,
-- service, staff and overlapping window) are checked by the driver inside
-- the serializable transaction; the partial unique indexes below keep one
-- redemption (debit) in force per appointment (per voucher and appointment).
-- Money is INT8 COP minor units, lists JSON in TEXT. No foreign keys to
-- appointments: the booking flow may redeem in the transaction that inserts
-- the appointment.

CREATE TABLE IF NOT EXISTS waitlist_entries (
	id                     TEXT        NOT NULL PRIMARY KEY,
	client_id              TEXT        NOT NULL,
	service_id             TEXT        NOT NULL,
	staff_id               TEXT        NOT NULL, -- '' for any staff member
	from_at                TIMESTAMPTZ NOT NULL,
	to_at                  TIMESTAMPTZ NOT NULL,
	status                 TEXT        NOT NULL,
	offered_appointment_id TEXT        NOT NULL, -- '' when none
	version                INT8        NOT NULL,
	created_at             TIMESTAMPTZ NOT NULL,
	updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS waitlist_entries_client ON waitlist_entries (client_id, created_at, id);
CREATE INDEX IF NOT EXISTS waitlist_entries_waiting ON waitlist_entries (created_at, id) WHERE status = 'waiting';
CREATE INDEX IF NOT EXISTS waitlist_entries_waiting_to ON waitlist_entries (to_at) WHERE status = 'waiting';

CREATE TABLE IF NOT EXISTS packages (
	id             TEXT        NOT NULL PRIMARY KEY,
	client_id      TEXT        NOT NULL,
	name           TEXT        NOT NULL,
	service_ids    TEXT        NOT NULL, -- JSON array, sorted
	sessions_total INT8        NOT NULL,
	sessions_used  INT8        NOT NULL,
	expires_at     TIMESTAMPTZ NOT NULL,
	version        INT8        NOT NULL,
	created_at     TIMESTAMPTZ NOT NULL,
	updated_at     TIMESTAMPTZ NOT NULL,
	CONSTRAINT packages_sessions CHECK (sessions_used >= 0 AND sessions_used <= sessions_total)
);
CREATE INDEX IF NOT EXISTS packages_client ON packages (client_id, expires_at, id);

CREATE TABLE IF NOT EXISTS package_redemptions (
	id             TEXT        NOT NULL PRIMARY KEY,
	package_id     TEXT        NOT NULL REFERENCES packages (id),
	appointment_id TEXT        NOT NULL,
	at             TIMESTAMPTZ NOT NULL,
	released_at    TIMESTAMPTZ -- NULL while in force
);
CREATE UNIQUE INDEX IF NOT EXISTS package_redemptions_in_force ON package_redemptions (appointment_id) WHERE released_at IS NULL;
CREATE INDEX IF NOT EXISTS package_redemptions_appointment ON package_redemptions (appointment_id);
CREATE INDEX IF NOT EXISTS package_redemptions_package ON package_redemptions (package_id, at);

CREATE TABLE IF NOT EXISTS vouchers (
	id            TEXT        NOT NULL PRIMARY KEY,
	code_hash     TEXT        NOT NULL UNIQUE, -- SHA-256 hex of the normalised code
	client_id     TEXT        NOT NULL, -- '' for a bearer voucher
	balance_minor INT8        NOT NULL,
	expires_at    TIMESTAMPTZ NOT NULL,
	version       INT8        NOT NULL,
	created_at    TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL,
	CONSTRAINT vouchers_balance CHECK (balance_minor >= 0)
);

CREATE TABLE IF NOT EXISTS voucher_debits (
	id             TEXT        NOT NULL PRIMARY KEY,
	voucher_id     TEXT        NOT NULL REFERENCES vouchers (id),
	appointment_id TEXT        NOT NULL,
	amount_minor   INT8        NOT NULL,
	at             TIMESTAMPTZ NOT NULL,
	reversed_at    TIMESTAMPTZ, -- NULL while in force
	CONSTRAINT voucher_debits_amount CHECK (amount_minor > 0)
);
CREATE UNIQUE INDEX IF NOT EXISTS voucher_debits_in_force ON voucher_debits (voucher_id, appointment_id) WHERE reversed_at IS NULL;
CREATE INDEX IF NOT EXISTS voucher_debits_appointment ON voucher_debits (appointment_id);
CREATE INDEX IF NOT EXISTS voucher_debits_voucher ON voucher_debits (voucher_id, at);
