-- Shop orders, returns and the client credit ledger. Times are INTEGER unix
-- microseconds, UTC (NULL for none); money INTEGER COP minor units. The
-- order state machine is enforced above the store; status changes here are
-- conditional UPDATEs on the status the caller read.

CREATE TABLE IF NOT EXISTS orders (
	id                   TEXT    NOT NULL PRIMARY KEY,
	client_id            TEXT    NOT NULL,
	cart_id              TEXT    NOT NULL, -- '' for an order made at the desk
	status               TEXT    NOT NULL,
	subtotal_minor       INTEGER NOT NULL,
	tax_minor            INTEGER NOT NULL,
	credit_applied_minor INTEGER NOT NULL,
	total_minor          INTEGER NOT NULL,
	fulfilment           TEXT    NOT NULL,
	shipping             TEXT    NOT NULL, -- JSON address, '' for pickup; PII
	created_at           INTEGER NOT NULL,
	updated_at           INTEGER NOT NULL,
	expires_at           INTEGER, -- NULL: never expires
	version              INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS orders_cart ON orders (cart_id) WHERE cart_id <> '';
CREATE INDEX IF NOT EXISTS orders_client ON orders (client_id, id);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status, id);
CREATE INDEX IF NOT EXISTS orders_pending_expiry ON orders (expires_at) WHERE status = 'pending_payment';

CREATE TABLE IF NOT EXISTS order_lines (
	id               TEXT    NOT NULL PRIMARY KEY,
	order_id         TEXT    NOT NULL REFERENCES orders (id),
	variant_id       TEXT    NOT NULL,
	sku              TEXT    NOT NULL,
	name             TEXT    NOT NULL,
	qty              INTEGER NOT NULL,
	unit_price_minor INTEGER NOT NULL,
	tax_rate_bps     INTEGER NOT NULL,
	reservation_id   TEXT    NOT NULL,
	returned_qty     INTEGER NOT NULL, -- includes units under a pending return
	CONSTRAINT order_lines_returned CHECK (returned_qty >= 0 AND returned_qty <= qty)
);
CREATE INDEX IF NOT EXISTS order_lines_order ON order_lines (order_id, id);

CREATE TABLE IF NOT EXISTS returns (
	id           TEXT    NOT NULL PRIMARY KEY,
	order_id     TEXT    NOT NULL REFERENCES orders (id),
	client_id    TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	reason       TEXT    NOT NULL,
	refund_minor INTEGER NOT NULL,
	requested_by TEXT    NOT NULL,
	processed_by TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	version      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS returns_order ON returns (order_id, id);
CREATE INDEX IF NOT EXISTS returns_client ON returns (client_id, id);
CREATE INDEX IF NOT EXISTS returns_status ON returns (status, id);

CREATE TABLE IF NOT EXISTS return_lines (
	return_id     TEXT    NOT NULL REFERENCES returns (id),
	order_line_id TEXT    NOT NULL REFERENCES order_lines (id),
	qty           INTEGER NOT NULL,
	damaged       INTEGER NOT NULL, -- 0 or 1
	PRIMARY KEY (return_id, order_line_id)
);

CREATE TABLE IF NOT EXISTS credit_grants (
	id              TEXT    NOT NULL PRIMARY KEY,
	client_id       TEXT    NOT NULL,
	amount_minor    INTEGER NOT NULL,
	remaining_minor INTEGER NOT NULL,
	reason          TEXT    NOT NULL,
	return_id       TEXT    NOT NULL, -- '' for a manual grant
	granted_by      TEXT    NOT NULL,
	expires_at      INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	CONSTRAINT credit_grants_remaining CHECK (remaining_minor >= 0 AND remaining_minor <= amount_minor)
);
CREATE INDEX IF NOT EXISTS credit_grants_client ON credit_grants (client_id, expires_at, id);
CREATE INDEX IF NOT EXISTS credit_grants_open ON credit_grants (expires_at) WHERE remaining_minor > 0;
CREATE UNIQUE INDEX IF NOT EXISTS credit_grants_return ON credit_grants (return_id) WHERE return_id <> '';

CREATE TABLE IF NOT EXISTS credit_entries (
	id           TEXT    NOT NULL PRIMARY KEY,
	client_id    TEXT    NOT NULL,
	grant_id     TEXT    NOT NULL REFERENCES credit_grants (id),
	kind         TEXT    NOT NULL, -- grant, use, expiry, reversal
	amount_minor INTEGER NOT NULL, -- signed: + grant/reversal, - use/expiry
	order_id     TEXT    NOT NULL, -- '' unless use or reversal
	reversed     INTEGER NOT NULL, -- 1 for a use given back by a reversal
	at           INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_entries_client ON credit_entries (client_id, id);
CREATE INDEX IF NOT EXISTS credit_entries_order ON credit_entries (order_id) WHERE order_id <> '';
