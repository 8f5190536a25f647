-- Shop: catalogue (categories, products, variants), stock per variant with
-- an append-only movement log, reservations held by carts, and carts.
-- A variant's inventory row and reservations are written by its inventory
-- actor under the fencing epoch of calendar 'inventory/<variant>'; only
-- checkout consumes reservations outside it, conditionally. Money is INT8
-- COP minor units; images and attributes JSON in TEXT. Accepted by
-- PostgreSQL and CockroachDB.

CREATE TABLE IF NOT EXISTS shop_categories (
	id         TEXT        NOT NULL PRIMARY KEY,
	name       TEXT        NOT NULL,
	active     BOOLEAN     NOT NULL,
	version    INT8        NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS shop_products (
	id          TEXT        NOT NULL PRIMARY KEY,
	name        TEXT        NOT NULL,
	description TEXT        NOT NULL,
	category_id TEXT        NOT NULL, -- '' when uncategorised
	images      TEXT        NOT NULL, -- JSON array of image metadata
	active      BOOLEAN     NOT NULL,
	version     INT8        NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS shop_products_category ON shop_products (category_id, id);

CREATE TABLE IF NOT EXISTS shop_variants (
	id                  TEXT        NOT NULL PRIMARY KEY,
	product_id          TEXT        NOT NULL REFERENCES shop_products (id),
	sku                 TEXT        NOT NULL UNIQUE,
	attributes          TEXT        NOT NULL, -- JSON object
	price_minor         INT8        NOT NULL,
	vip_price_minor     INT8        NOT NULL,
	tax_rate_bp         INT8        NOT NULL,
	low_stock_threshold INT8        NOT NULL,
	active              BOOLEAN     NOT NULL,
	version             INT8        NOT NULL,
	updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS shop_variants_product ON shop_variants (product_id, id);

CREATE TABLE IF NOT EXISTS shop_stock (
	variant_id TEXT        NOT NULL PRIMARY KEY REFERENCES shop_variants (id),
	on_hand    INT8        NOT NULL,
	reserved   INT8        NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	CONSTRAINT shop_stock_nonnegative CHECK (on_hand >= 0 AND reserved >= 0)
);

CREATE TABLE IF NOT EXISTS shop_stock_movements (
	id         TEXT        NOT NULL PRIMARY KEY,
	variant_id TEXT        NOT NULL,
	kind       TEXT        NOT NULL,
	qty        INT8        NOT NULL,
	actor_id   TEXT        NOT NULL,
	reason     TEXT        NOT NULL,
	reference  TEXT        NOT NULL,
	at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS shop_stock_movements_variant ON shop_stock_movements (variant_id, id);

CREATE TABLE IF NOT EXISTS shop_reservations (
	id         TEXT        NOT NULL PRIMARY KEY,
	cart_id    TEXT        NOT NULL,
	variant_id TEXT        NOT NULL,
	qty        INT8        NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	state      TEXT        NOT NULL,
	order_id   TEXT        NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL,
	CONSTRAINT shop_reservations_qty CHECK (qty > 0)
);
CREATE INDEX IF NOT EXISTS shop_reservations_live_variant ON shop_reservations (variant_id, id) WHERE state = 'live';
CREATE INDEX IF NOT EXISTS shop_reservations_live_cart ON shop_reservations (cart_id, id) WHERE state = 'live';

CREATE TABLE IF NOT EXISTS shop_carts (
	id          TEXT        NOT NULL PRIMARY KEY,
	owner_id    TEXT        NOT NULL, -- '' for an anonymous cart
	token_hash  BYTEA       NOT NULL,
	state       TEXT        NOT NULL,
	order_id    TEXT        NOT NULL,
	merged_into TEXT        NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	version     INT8        NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL
);
-- One open cart per signed-in client: a second concurrent create conflicts.
CREATE UNIQUE INDEX IF NOT EXISTS shop_carts_open_owner ON shop_carts (owner_id) WHERE state = 'open' AND owner_id <> '';

-- Clients who pay VIP prices (Variant.VIPPriceMinor), managed by admins.
CREATE TABLE IF NOT EXISTS shop_vip_clients (
	client_id  TEXT        NOT NULL PRIMARY KEY,
	granted_by TEXT        NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
