package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Shop: catalogue, stock, reservations and carts. The rules (stock covers
// the units held at now; a reservation changes state only while live) are
// checked on rows read in the same transaction: SERIALIZABLE on PostgreSQL,
// so a concurrent change retries it; BEGIN IMMEDIATE on SQLite, which holds
// the write lock.

// ---- Categories ----

const shopCategoryColumns = `id, name, active, version, updated_at`

func (t *txn) scanShopCategory(r row) (persistence.ShopCategory, error) {
	var c persistence.ShopCategory
	err := r.Scan(&c.ID, &c.Name, &c.Active, &c.Version, t.at(&c.UpdatedAt))
	return c, err
}

func (t *txn) ShopCategoryPut(ctx context.Context, c persistence.ShopCategory) (persistence.ShopCategory, error) {
	c, err := persistence.NormalizeShopCategory(c)
	if err != nil {
		return c, err
	}
	var n int
	if c.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO shop_categories (name, active, updated_at, id, version) VALUES (?, ?, ?, ?, 1)`,
			c.Name, c.Active, t.ts(c.UpdatedAt), c.ID)
	} else {
		n, err = t.exec(ctx, `UPDATE shop_categories SET name = ?, active = ?, updated_at = ?, version = version + 1
			WHERE id = ? AND version = ?`, c.Name, c.Active, t.ts(c.UpdatedAt), c.ID, c.Version)
	}
	if err != nil {
		return c, err
	}
	if n == 0 {
		return c, persistence.VersionConflict("category", c.ID, c.Version)
	}
	c.Version++
	return c, nil
}

func (t *txn) ShopCategoryGet(ctx context.Context, id string) (persistence.ShopCategory, error) {
	c, err := t.scanShopCategory(t.queryRow(ctx, `SELECT `+shopCategoryColumns+` FROM shop_categories WHERE id = ?`, id))
	return c, t.mapErr(err)
}

func (t *txn) ShopCategoryList(ctx context.Context, activeOnly bool) ([]persistence.ShopCategory, error) {
	return queryList(ctx, t, t.scanShopCategory, `SELECT `+shopCategoryColumns+` FROM shop_categories
		WHERE active OR NOT ? ORDER BY id`, activeOnly)
}

// ---- Products ----

const productColumns = `id, name, description, category_id, images, active, version, updated_at`

func (t *txn) scanProduct(r row) (persistence.Product, error) {
	var p persistence.Product
	var images string
	if err := r.Scan(&p.ID, &p.Name, &p.Description, &p.CategoryID, &images, &p.Active, &p.Version, t.at(&p.UpdatedAt)); err != nil {
		return p, err
	}
	var err error
	p.Images, err = persistence.DecodeImages(images)
	return p, err
}

func (t *txn) ProductPut(ctx context.Context, p persistence.Product) (persistence.Product, error) {
	p, err := persistence.NormalizeProduct(p)
	if err != nil {
		return p, err
	}
	args := []any{p.Name, p.Description, p.CategoryID, persistence.EncodeImages(p.Images), p.Active, t.ts(p.UpdatedAt), p.ID}
	var n int
	if p.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO shop_products (name, description, category_id, images, active, updated_at, id, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE shop_products SET name = ?, description = ?, category_id = ?, images = ?, active = ?,
			updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`, append(args, p.Version)...)
	}
	if err != nil {
		return p, err
	}
	if n == 0 {
		return p, persistence.VersionConflict("product", p.ID, p.Version)
	}
	p.Version++
	return p, nil
}

func (t *txn) ProductGet(ctx context.Context, id string) (persistence.Product, error) {
	p, err := t.scanProduct(t.queryRow(ctx, `SELECT `+productColumns+` FROM shop_products WHERE id = ?`, id))
	return p, t.mapErr(err)
}

func (t *txn) ProductList(ctx context.Context, categoryID string, activeOnly bool) ([]persistence.Product, error) {
	return queryList(ctx, t, t.scanProduct, `SELECT `+productColumns+` FROM shop_products
		WHERE (category_id = ? OR ? = '') AND (active OR NOT ?) ORDER BY id`, categoryID, categoryID, activeOnly)
}

// ---- Variants ----

const variantColumns = `id, product_id, sku, attributes, price_minor, vip_price_minor, tax_rate_bp,
	low_stock_threshold, active, version, updated_at`

func (t *txn) scanVariant(r row) (persistence.Variant, error) {
	var v persistence.Variant
	var attrs string
	if err := r.Scan(&v.ID, &v.ProductID, &v.SKU, &attrs, &v.PriceMinor, &v.VIPPriceMinor, &v.TaxRateBP,
		&v.LowStockThreshold, &v.Active, &v.Version, t.at(&v.UpdatedAt)); err != nil {
		return v, err
	}
	var err error
	v.Attributes, err = persistence.DecodeAttributes(attrs)
	return v, err
}

func (t *txn) VariantPut(ctx context.Context, v persistence.Variant) (persistence.Variant, error) {
	v, err := persistence.NormalizeVariant(v)
	if err != nil {
		return v, err
	}
	if _, err := t.ProductGet(ctx, v.ProductID); err != nil {
		return v, err
	}
	args := []any{v.ProductID, v.SKU, persistence.EncodeAttributes(v.Attributes), v.PriceMinor, v.VIPPriceMinor,
		v.TaxRateBP, v.LowStockThreshold, v.Active, t.ts(v.UpdatedAt), v.ID}
	var n int
	if v.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO shop_variants (product_id, sku, attributes, price_minor, vip_price_minor,
			tax_rate_bp, low_stock_threshold, active, updated_at, id, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`, args...)
		if err == nil {
			_, err = t.exec(ctx, `INSERT INTO shop_stock (variant_id, on_hand, reserved, updated_at) VALUES (?, 0, 0, ?)`,
				v.ID, t.ts(v.UpdatedAt))
		}
	} else {
		n, err = t.exec(ctx, `UPDATE shop_variants SET product_id = ?, sku = ?, attributes = ?, price_minor = ?,
			vip_price_minor = ?, tax_rate_bp = ?, low_stock_threshold = ?, active = ?, updated_at = ?,
			version = version + 1 WHERE id = ? AND version = ?`, append(args, v.Version)...)
	}
	if err != nil {
		return v, err
	}
	if n == 0 {
		return v, persistence.VersionConflict("variant", v.ID, v.Version)
	}
	v.Version++
	return v, nil
}

func (t *txn) VariantGet(ctx context.Context, id string) (persistence.Variant, error) {
	v, err := t.scanVariant(t.queryRow(ctx, `SELECT `+variantColumns+` FROM shop_variants WHERE id = ?`, id))
	return v, t.mapErr(err)
}

func (t *txn) VariantList(ctx context.Context, productID string, activeOnly bool) ([]persistence.Variant, error) {
	return queryList(ctx, t, t.scanVariant, `SELECT `+variantColumns+` FROM shop_variants
		WHERE (product_id = ? OR ? = '') AND (active OR NOT ?) ORDER BY id`, productID, productID, activeOnly)
}

// ---- Stock ----

func (t *txn) StockGet(ctx context.Context, variantID string) (persistence.Stock, error) {
	s := persistence.Stock{VariantID: variantID}
	err := t.queryRow(ctx, `SELECT on_hand, reserved, updated_at FROM shop_stock WHERE variant_id = ?`, variantID).
		Scan(&s.OnHand, &s.Reserved, t.at(&s.UpdatedAt))
	return s, t.mapErr(err)
}

// addStock changes a variant's counters and logs the movement.
func (t *txn) addStock(ctx context.Context, m persistence.StockMovement, onHand, reserved int64) error {
	n, err := t.exec(ctx, `UPDATE shop_stock SET on_hand = on_hand + ?, reserved = reserved + ?, updated_at = ?
		WHERE variant_id = ?`, onHand, reserved, t.ts(m.At), m.VariantID)
	if err != nil {
		return err
	}
	if n == 0 {
		return persistence.StockMissing(m.VariantID)
	}
	_, err = t.exec(ctx, `INSERT INTO shop_stock_movements (id, variant_id, kind, qty, actor_id, reason, reference, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, m.VariantID, string(m.Kind), m.Qty, m.ActorID, m.Reason, m.Reference, t.ts(m.At))
	return err
}

func (t *txn) StockMove(ctx context.Context, m persistence.StockMovement) (persistence.Stock, error) {
	m, delta, err := persistence.NormalizeStockMove(m)
	if err != nil {
		return persistence.Stock{}, err
	}
	s, err := t.StockGet(ctx, m.VariantID)
	if err != nil {
		return s, err
	}
	if s.OnHand+delta < 0 {
		return s, persistence.StockShort(m.VariantID, -delta, s.OnHand)
	}
	if err := t.addStock(ctx, m, delta, 0); err != nil {
		return s, err
	}
	s.OnHand += delta
	s.UpdatedAt = m.At
	return s, nil
}

func (t *txn) scanMovement(r row) (persistence.StockMovement, error) {
	var m persistence.StockMovement
	var kind string
	err := r.Scan(&m.ID, &m.VariantID, &kind, &m.Qty, &m.ActorID, &m.Reason, &m.Reference, t.at(&m.At))
	m.Kind = persistence.MovementKind(kind)
	return m, err
}

func (t *txn) StockMovementList(ctx context.Context, variantID string, limit int) ([]persistence.StockMovement, error) {
	if err := persistence.CheckLimit("movement list", limit, persistence.MaxAuditListLimit); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanMovement, `SELECT id, variant_id, kind, qty, actor_id, reason, reference, at
		FROM shop_stock_movements WHERE variant_id = ? ORDER BY id DESC LIMIT ?`, variantID, limit)
}

// ---- Reservations ----

const reservationColumns = `id, cart_id, variant_id, qty, expires_at, state, order_id, created_at, updated_at`

func (t *txn) scanReservation(r row) (persistence.Reservation, error) {
	var v persistence.Reservation
	var state string
	err := r.Scan(&v.ID, &v.CartID, &v.VariantID, &v.Qty, t.at(&v.ExpiresAt), &state, &v.OrderID, t.at(&v.CreatedAt), t.at(&v.UpdatedAt))
	v.State = persistence.ReservationState(state)
	return v, err
}

func (t *txn) ReservationGet(ctx context.Context, id string) (persistence.Reservation, error) {
	r, err := t.scanReservation(t.queryRow(ctx, `SELECT `+reservationColumns+` FROM shop_reservations WHERE id = ?`, id))
	return r, t.mapErr(err)
}

func (t *txn) ReservationPut(ctx context.Context, r persistence.Reservation, actorID string, now time.Time) error {
	r, err := persistence.NormalizeReservation(r)
	if err != nil {
		return err
	}
	now = persistence.CanonicalTime(now)
	old, err := t.ReservationGet(ctx, r.ID)
	exists := err == nil
	switch {
	case errors.Is(err, persistence.ErrNotFound):
	case err != nil:
		return err
	case old.State != persistence.ReservationLive || old.VariantID != r.VariantID || old.CartID != r.CartID:
		return persistence.ReservationNotLive(r.ID)
	}
	if !exists {
		if err := t.cartTakesReservations(ctx, r.CartID); err != nil {
			return err
		}
	}
	s, err := t.StockGet(ctx, r.VariantID)
	if err != nil {
		return err
	}
	held, err := t.heldByOthers(ctx, r.VariantID, r.ID, now)
	if err != nil {
		return err
	}
	if held+r.Qty > s.OnHand {
		return persistence.StockShort(r.VariantID, r.Qty, max(s.OnHand-held, 0))
	}
	delta := r.Qty
	if exists {
		delta -= old.Qty
		_, err = t.exec(ctx, `UPDATE shop_reservations SET qty = ?, expires_at = ?, updated_at = ? WHERE id = ?`,
			r.Qty, t.ts(r.ExpiresAt), t.ts(now), r.ID)
	} else {
		_, err = t.exec(ctx, `INSERT INTO shop_reservations (`+reservationColumns+`) VALUES (?, ?, ?, ?, ?, 'live', '', ?, ?)`,
			r.ID, r.CartID, r.VariantID, r.Qty, t.ts(r.ExpiresAt), t.ts(now), t.ts(now))
	}
	if err != nil || delta == 0 {
		return err
	}
	return t.addStock(ctx, persistence.ReservationMovement(r, delta, actorID, now), 0, delta)
}

// cartTakesReservations refuses a new reservation for a cart that is no
// longer open. A stale activation of a cart that another activation
// checked out still sees its line; the inventory actor, told the line's
// reservation was consumed, no longer knows it, so the stale line's next
// reservation would be new and hold a second unit for the closed cart.
// Checkout closes the cart in the transaction that consumes, so the two
// serialize. A cart the store does not hold (the inventory's own callers)
// is not checked.
func (t *txn) cartTakesReservations(ctx context.Context, cartID string) error {
	c, err := t.CartGet(ctx, cartID)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil
	case err != nil:
		return err
	case c.State != persistence.CartOpen:
		return persistence.CartNotOpen(cartID, c.State)
	}
	return nil
}

// heldByOthers is the units the variant's live reservations other than
// except hold at now.
func (t *txn) heldByOthers(ctx context.Context, variantID, except string, now time.Time) (int64, error) {
	var held int64
	err := t.queryRow(ctx, `SELECT CAST(COALESCE(SUM(qty), 0) AS BIGINT) FROM shop_reservations
		WHERE variant_id = ? AND state = 'live' AND expires_at > ? AND id <> ?`,
		variantID, t.ts(now), except).Scan(&held)
	return held, t.mapErr(err)
}

func (t *txn) ReservationRelease(ctx context.Context, id, actorID, reason string, now time.Time) (bool, error) {
	r, err := t.ReservationGet(ctx, id)
	if err != nil || r.State != persistence.ReservationLive {
		return false, err
	}
	now = persistence.CanonicalTime(now)
	if _, err := t.exec(ctx, `UPDATE shop_reservations SET state = 'released', updated_at = ? WHERE id = ? AND state = 'live'`,
		t.ts(now), id); err != nil {
		return false, err
	}
	m := persistence.ReservationMovement(r, -r.Qty, actorID, now)
	m.Reason = reason
	return true, t.addStock(ctx, m, 0, -r.Qty)
}

func (t *txn) ReservationConsume(ctx context.Context, id, orderID, actorID string, now time.Time) (persistence.Reservation, error) {
	if orderID == "" {
		return persistence.Reservation{}, persistence.ErrInvalid
	}
	now = persistence.CanonicalTime(now)
	r, err := t.ReservationGet(ctx, id)
	if err != nil {
		return r, err
	}
	if !r.Holds(now) {
		return r, persistence.ReservationNotLive(id)
	}
	// The inventory actor may have seen r expire (its clock ahead of
	// ours, or our transaction begun just before the expiry) and given
	// its units to another cart: then on hand no longer covers r.
	s, err := t.StockGet(ctx, r.VariantID)
	if err != nil {
		return r, err
	}
	held, err := t.heldByOthers(ctx, r.VariantID, r.ID, now)
	if err != nil {
		return r, err
	}
	if held+r.Qty > s.OnHand {
		return r, persistence.ReservationNotLive(id)
	}
	if _, err := t.exec(ctx, `UPDATE shop_reservations SET state = 'consumed', order_id = ?, updated_at = ?
		WHERE id = ? AND state = 'live'`, orderID, t.ts(now), id); err != nil {
		return r, err
	}
	r.State, r.OrderID, r.UpdatedAt = persistence.ReservationConsumed, orderID, now
	return r, t.addStock(ctx, persistence.SaleMovement(r, actorID, now), -r.Qty, -r.Qty)
}

func (t *txn) ReservationList(ctx context.Context, variantID string) ([]persistence.Reservation, error) {
	return queryList(ctx, t, t.scanReservation, `SELECT `+reservationColumns+` FROM shop_reservations
		WHERE variant_id = ? AND state = 'live' ORDER BY id`, variantID)
}

func (t *txn) ReservationListByCart(ctx context.Context, cartID string) ([]persistence.Reservation, error) {
	return queryList(ctx, t, t.scanReservation, `SELECT `+reservationColumns+` FROM shop_reservations
		WHERE cart_id = ? AND state = 'live' ORDER BY id`, cartID)
}

// ---- Carts ----

const cartColumns = `id, owner_id, token_hash, state, order_id, merged_into, expires_at, version, created_at, updated_at`

func (t *txn) scanCart(r row) (persistence.Cart, error) {
	var c persistence.Cart
	var state string
	err := r.Scan(&c.ID, &c.OwnerID, &c.TokenHash, &state, &c.OrderID, &c.MergedInto, t.at(&c.ExpiresAt), &c.Version, t.at(&c.CreatedAt), t.at(&c.UpdatedAt))
	c.State = persistence.CartState(state)
	if len(c.TokenHash) == 0 {
		c.TokenHash = nil
	}
	return c, err
}

func (t *txn) CartPut(ctx context.Context, c persistence.Cart) (persistence.Cart, error) {
	c, err := persistence.NormalizeCart(c)
	if err != nil {
		return c, err
	}
	hash := c.TokenHash
	if hash == nil {
		hash = []byte{}
	}
	args := []any{c.OwnerID, hash, string(c.State), c.OrderID, c.MergedInto, t.ts(c.ExpiresAt), t.ts(c.UpdatedAt), c.ID}
	var n int
	if c.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO shop_carts (owner_id, token_hash, state, order_id, merged_into, expires_at,
			updated_at, id, created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`, append(args, t.ts(c.CreatedAt))...)
	} else {
		n, err = t.exec(ctx, `UPDATE shop_carts SET owner_id = ?, token_hash = ?, state = ?, order_id = ?, merged_into = ?,
			expires_at = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`, append(args, c.Version)...)
	}
	if err != nil {
		return c, err
	}
	if n == 0 {
		return c, persistence.VersionConflict("cart", c.ID, c.Version)
	}
	return t.CartGet(ctx, c.ID)
}

func (t *txn) CartGet(ctx context.Context, id string) (persistence.Cart, error) {
	c, err := t.scanCart(t.queryRow(ctx, `SELECT `+cartColumns+` FROM shop_carts WHERE id = ?`, id))
	return c, t.mapErr(err)
}

func (t *txn) CartOpenByOwner(ctx context.Context, ownerID string) (persistence.Cart, error) {
	if ownerID == "" {
		return persistence.Cart{}, persistence.ErrInvalid
	}
	c, err := t.scanCart(t.queryRow(ctx, `SELECT `+cartColumns+` FROM shop_carts
		WHERE owner_id = ? AND state = 'open' ORDER BY created_at DESC, id LIMIT 1`, ownerID))
	return c, t.mapErr(err)
}

// ---- VIP clients ----

func (t *txn) ShopVIPSet(ctx context.Context, clientID string, vip bool, by string, at time.Time) error {
	if clientID == "" || (vip && by == "") {
		return persistence.ErrInvalid
	}
	if !vip {
		_, err := t.exec(ctx, `DELETE FROM shop_vip_clients WHERE client_id = ?`, clientID)
		return err
	}
	_, err := t.exec(ctx, `INSERT INTO shop_vip_clients (client_id, granted_by, created_at) VALUES (?, ?, ?)
		ON CONFLICT (client_id) DO NOTHING`, clientID, by, t.ts(at))
	return err
}

func (t *txn) ShopVIPIs(ctx context.Context, clientID string) (bool, error) {
	var n int64
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM shop_vip_clients WHERE client_id = ?`, clientID).Scan(&n)
	return n > 0, t.mapErr(err)
}
