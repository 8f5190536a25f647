-- Vouchers bought online (docs/payments.md, "Voucher purchases"): the
-- purchase waits for its payment intent (kind voucher_purchase, subject
-- the purchase's id); approval issues the voucher with the same id. The
-- recipient's name, the message and the issued code are sealed under the
-- buyer's data key. Times are TIMESTAMPTZ; money is BIGINT minor units
-- (COP). Accepted by PostgreSQL and CockroachDB; IF NOT EXISTS because
-- several nodes may migrate at once.
CREATE TABLE IF NOT EXISTS voucher_purchases (
	id             TEXT        PRIMARY KEY,
	client_id      TEXT        NOT NULL,
	amount_minor   BIGINT      NOT NULL CHECK (amount_minor > 0),
	recipient_name TEXT        NOT NULL,
	message        TEXT        NOT NULL,
	code           TEXT        NOT NULL, -- '' until issued
	created_at     TIMESTAMPTZ NOT NULL,
	issued_at      TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS voucher_purchases_client ON voucher_purchases (client_id, id);
