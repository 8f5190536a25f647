-- Vouchers bought online (docs/payments.md, "Voucher purchases"): the
-- purchase waits for its payment intent (kind voucher_purchase, subject
-- the purchase's id); approval issues the voucher with the same id. The
-- recipient's name, the message and the issued code are sealed under the
-- buyer's data key. Times are INTEGER unix microseconds, UTC; money is
-- INTEGER minor units (COP).
CREATE TABLE IF NOT EXISTS voucher_purchases (
	id             TEXT    PRIMARY KEY,
	client_id      TEXT    NOT NULL,
	amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
	recipient_name TEXT    NOT NULL,
	message        TEXT    NOT NULL,
	code           TEXT    NOT NULL, -- '' until issued
	created_at     INTEGER NOT NULL,
	issued_at      INTEGER
);
CREATE INDEX IF NOT EXISTS voucher_purchases_client ON voucher_purchases (client_id, id);
