-- Saved payment sources (docs/payments.md, "Saved payment sources"): a
-- client's card or Nequi account tokenized at Wompi, charged without a
-- checkout page. The payer's e-mail, which Wompi asks with every charge,
-- is sealed under the client's data key (anonymisation shreds it).
CREATE TABLE IF NOT EXISTS payment_sources (
	id           TEXT    PRIMARY KEY,
	client_id    TEXT    NOT NULL,
	provider_id  BIGINT  NOT NULL,
	type         TEXT    NOT NULL,
	label        TEXT    NOT NULL,
	email        TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_sources_client ON payment_sources (client_id, id);
