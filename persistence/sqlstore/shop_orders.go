package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Shop orders, returns and the client credit ledger. The rules (totals,
// allocation of a spend across grants, resolving a return) are evaluated
// by package persistence on rows read in the same transaction; the
// conditional UPDATEs and CHECK constraints are a second line.

// ---- Orders ----

const orderColumns = `id, client_id, cart_id, status, subtotal_minor, tax_minor, credit_applied_minor,
	total_minor, fulfilment, shipping, created_at, updated_at, expires_at, version`

const orderLineColumns = `id, variant_id, sku, name, qty, unit_price_minor, tax_rate_bps,
	reservation_id, returned_qty`

func (t *txn) scanOrder(r row) (persistence.Order, error) {
	var o persistence.Order
	var status, fulfilment, shipping string
	if err := r.Scan(&o.ID, &o.ClientID, &o.CartID, &status, &o.SubtotalMinor, &o.TaxMinor,
		&o.CreditAppliedMinor, &o.TotalMinor, &fulfilment, &shipping, t.at(&o.CreatedAt), t.at(&o.UpdatedAt), t.at(&o.ExpiresAt),
		&o.Version); err != nil {
		return o, err
	}
	o.Status, o.Fulfilment = persistence.OrderStatus(status), persistence.Fulfilment(fulfilment)
	if strings.HasPrefix(shipping, sealedTextMark) { // opened by withLines, once the rows are closed
		if t.sealedShipping == nil {
			t.sealedShipping = map[string]string{}
		}
		t.sealedShipping[o.ID] = shipping
		return o, nil
	}
	var err error
	o.Shipping, err = persistence.DecodeShipping(shipping)
	return o, err
}

// openShipping opens the sealed shipping addresses of orders read.
func (t *txn) openShipping(ctx context.Context, orders []persistence.Order) error {
	for i := range orders {
		o := &orders[i]
		stored, ok := t.sealedShipping[o.ID]
		if !ok {
			continue
		}
		delete(t.sealedShipping, o.ID)
		v, err := t.openText(ctx, o.ClientID, shippingPlace(o.ID), stored)
		if err != nil {
			return err
		}
		if o.Shipping, err = persistence.DecodeShipping(v); err != nil {
			return err
		}
	}
	return nil
}

// withLines loads the lines of the orders in one query (and opens their
// shipping addresses).
func (t *txn) withLines(ctx context.Context, orders []persistence.Order) ([]persistence.Order, error) {
	if len(orders) == 0 {
		return orders, nil
	}
	if err := t.openShipping(ctx, orders); err != nil {
		return nil, err
	}
	at := make(map[string]int, len(orders))
	ids := make([]string, len(orders))
	for i, o := range orders {
		at[o.ID], ids[i] = i, o.ID
	}
	in, args := t.in("order_id", ids, nil)
	rows, err := t.query(ctx, `SELECT order_id, `+orderLineColumns+` FROM order_lines
		WHERE `+in+` ORDER BY order_id, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var orderID string
		var l persistence.OrderLine
		if err := rows.Scan(&orderID, &l.ID, &l.VariantID, &l.SKU, &l.Name, &l.Qty, &l.UnitPriceMinor,
			&l.TaxRateBps, &l.ReservationID, &l.ReturnedQty); err != nil {
			return nil, t.mapErr(err)
		}
		orders[at[orderID]].Lines = append(orders[at[orderID]].Lines, l)
	}
	return orders, t.mapErr(rows.Err())
}

func (t *txn) OrderCreate(ctx context.Context, o persistence.Order) error {
	o, err := persistence.NormalizeOrder(o)
	if err != nil {
		return err
	}
	shipping, err := t.sealText(ctx, o.ClientID, shippingPlace(o.ID), persistence.EncodeShipping(o.Shipping))
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO orders (`+orderColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		o.ID, o.ClientID, o.CartID, string(o.Status), o.SubtotalMinor, o.TaxMinor, o.CreditAppliedMinor,
		o.TotalMinor, string(o.Fulfilment), shipping, t.ts(o.CreatedAt),
		t.ts(o.UpdatedAt), t.nullTS(o.ExpiresAt), o.Version); err != nil {
		return err
	}
	for _, l := range o.Lines {
		if _, err := t.exec(ctx, `INSERT INTO order_lines (order_id, `+orderLineColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, l.ID, l.VariantID, l.SKU, l.Name, l.Qty, l.UnitPriceMinor, l.TaxRateBps,
			l.ReservationID, l.ReturnedQty); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) OrderGet(ctx context.Context, id string) (persistence.Order, error) {
	o, err := t.scanOrder(t.queryRow(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = ?`, id))
	if err != nil {
		return persistence.Order{}, t.mapErr(err)
	}
	out, err := t.withLines(ctx, []persistence.Order{o})
	if err != nil {
		return persistence.Order{}, err
	}
	return out[0], nil
}

func (t *txn) OrderList(ctx context.Context, p persistence.OrderListParams) ([]persistence.Order, error) {
	if err := persistence.CheckOrderList(p); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if p.ClientID != "" {
		where, args = append(where, "client_id = ?"), append(args, p.ClientID)
	}
	if len(p.Status) > 0 {
		statuses := make([]string, len(p.Status))
		for i, s := range p.Status {
			statuses[i] = string(s)
		}
		var in string
		in, args = t.in("status", statuses, args)
		where = append(where, in)
	}
	if p.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	q := `SELECT ` + orderColumns + ` FROM orders`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	orders, err := queryList(ctx, t, t.scanOrder, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
	if err != nil {
		return nil, err
	}
	return t.withLines(ctx, orders)
}

func (t *txn) OrderTransition(ctx context.Context, tr persistence.OrderTransition) (persistence.Order, error) {
	if err := persistence.CheckOrderTransition(tr); err != nil {
		return persistence.Order{}, err
	}
	n, err := t.exec(ctx, `UPDATE orders SET status = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND status = ?`, string(tr.To), t.ts(tr.At), tr.ID, string(tr.From))
	if err != nil {
		return persistence.Order{}, err
	}
	o, err := t.OrderGet(ctx, tr.ID)
	if err != nil {
		return persistence.Order{}, err
	}
	if n == 0 {
		return persistence.Order{}, persistence.OrderStatusMismatch(tr.ID, tr.From, o.Status)
	}
	return o, nil
}

func (t *txn) OrderListExpired(ctx context.Context, now time.Time, limit int) ([]persistence.Order, error) {
	if err := persistence.CheckLimit("expired orders", limit, persistence.MaxOrderListLimit); err != nil {
		return nil, err
	}
	orders, err := queryList(ctx, t, t.scanOrder, `SELECT `+orderColumns+` FROM orders
		WHERE status = 'pending_payment' AND expires_at IS NOT NULL AND expires_at < ?
		ORDER BY expires_at, id LIMIT ?`, t.ts(now), limit)
	if err != nil {
		return nil, err
	}
	return t.withLines(ctx, orders)
}

// ---- Returns ----

const returnColumns = `id, order_id, client_id, status, reason, refund_minor, requested_by,
	processed_by, created_at, updated_at, version`

func (t *txn) scanReturn(r row) (persistence.Return, error) {
	var x persistence.Return
	var status string
	err := r.Scan(&x.ID, &x.OrderID, &x.ClientID, &status, &x.Reason, &x.RefundMinor, &x.RequestedBy,
		&x.ProcessedBy, t.at(&x.CreatedAt), t.at(&x.UpdatedAt), &x.Version)
	x.Status = persistence.ReturnStatus(status)
	return x, err
}

// withReturnLines loads the lines of the returns in one query (and opens
// their reasons).
func (t *txn) withReturnLines(ctx context.Context, rs []persistence.Return) ([]persistence.Return, error) {
	if len(rs) == 0 {
		return rs, nil
	}
	if err := t.openReasons(ctx, len(rs), func(i int) (string, string, *string) {
		return rs[i].ClientID, returnReasonPlace(rs[i].ID), &rs[i].Reason
	}); err != nil {
		return nil, err
	}
	at := make(map[string]int, len(rs))
	ids := make([]string, len(rs))
	for i, r := range rs {
		at[r.ID], ids[i] = i, r.ID
	}
	in, args := t.in("return_id", ids, nil)
	rows, err := t.query(ctx, `SELECT return_id, order_line_id, qty, damaged FROM return_lines
		WHERE `+in+` ORDER BY return_id, order_line_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var returnID string
		var l persistence.ReturnLine
		if err := rows.Scan(&returnID, &l.OrderLineID, &l.Qty, &l.Damaged); err != nil {
			return nil, t.mapErr(err)
		}
		rs[at[returnID]].Lines = append(rs[at[returnID]].Lines, l)
	}
	return rs, t.mapErr(rows.Err())
}

func (t *txn) ReturnCreate(ctx context.Context, r persistence.Return) error {
	r, err := persistence.NormalizeReturn(r)
	if err != nil {
		return err
	}
	var n int
	if err := t.queryRow(ctx, `SELECT count(*) FROM orders WHERE id = ?`, r.OrderID).Scan(&n); err != nil {
		return t.mapErr(err)
	}
	if n == 0 {
		return persistence.OrderMissing(r.OrderID)
	}
	reason, err := t.sealText(ctx, r.ClientID, returnReasonPlace(r.ID), r.Reason)
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO returns (`+returnColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.OrderID, r.ClientID, string(r.Status), reason, r.RefundMinor, r.RequestedBy, r.ProcessedBy,
		t.ts(r.CreatedAt), t.ts(r.UpdatedAt), r.Version); err != nil {
		return err
	}
	for _, l := range r.Lines {
		var qty, returned int
		err := t.queryRow(ctx, `SELECT qty, returned_qty FROM order_lines WHERE id = ? AND order_id = ?`,
			l.OrderLineID, r.OrderID).Scan(&qty, &returned)
		if err != nil {
			return t.mapErr(err)
		}
		if returned+l.Qty > qty {
			return persistence.ReturnExceeds(l.OrderLineID, l.Qty, qty-returned)
		}
		if _, err := t.exec(ctx, `UPDATE order_lines SET returned_qty = returned_qty + ? WHERE id = ?`,
			l.Qty, l.OrderLineID); err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO return_lines (return_id, order_line_id, qty, damaged)
			VALUES (?, ?, ?, ?)`, r.ID, l.OrderLineID, l.Qty, l.Damaged); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) ReturnGet(ctx context.Context, id string) (persistence.Return, error) {
	r, err := t.scanReturn(t.queryRow(ctx, `SELECT `+returnColumns+` FROM returns WHERE id = ?`, id))
	if err != nil {
		return persistence.Return{}, t.mapErr(err)
	}
	out, err := t.withReturnLines(ctx, []persistence.Return{r})
	if err != nil {
		return persistence.Return{}, err
	}
	return out[0], nil
}

func (t *txn) ReturnList(ctx context.Context, p persistence.ReturnListParams) ([]persistence.Return, error) {
	if err := persistence.CheckReturnList(p); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	for _, f := range []struct{ col, v string }{{"order_id", p.OrderID}, {"client_id", p.ClientID},
		{"status", string(p.Status)}} {
		if f.v != "" {
			where, args = append(where, f.col+" = ?"), append(args, f.v)
		}
	}
	if p.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	q := `SELECT ` + returnColumns + ` FROM returns`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rs, err := queryList(ctx, t, t.scanReturn, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
	if err != nil {
		return nil, err
	}
	return t.withReturnLines(ctx, rs)
}

func (t *txn) ReturnResolve(ctx context.Context, r persistence.Return) (persistence.Return, error) {
	stored, err := t.ReturnGet(ctx, r.ID)
	if err != nil {
		return persistence.Return{}, err
	}
	out, err := persistence.ResolveReturn(stored, r)
	if err != nil {
		return persistence.Return{}, err
	}
	n, err := t.exec(ctx, `UPDATE returns SET status = ?, refund_minor = ?, processed_by = ?, updated_at = ?,
		version = version + 1 WHERE id = ? AND status = 'requested'`,
		string(out.Status), out.RefundMinor, out.ProcessedBy, t.ts(out.UpdatedAt), out.ID)
	if err != nil {
		return persistence.Return{}, err
	}
	if n == 0 { // unreachable: the check read the same row in this transaction
		return persistence.Return{}, persistence.ReturnNotRequested(out.ID)
	}
	for _, l := range out.Lines {
		if _, err := t.exec(ctx, `UPDATE return_lines SET damaged = ? WHERE return_id = ? AND order_line_id = ?`,
			l.Damaged, out.ID, l.OrderLineID); err != nil {
			return persistence.Return{}, err
		}
		if out.Status == persistence.ReturnRejected {
			if _, err := t.exec(ctx, `UPDATE order_lines SET returned_qty = returned_qty - ? WHERE id = ?`,
				l.Qty, l.OrderLineID); err != nil {
				return persistence.Return{}, err
			}
		}
	}
	return out, nil
}

// ---- Credit ----

const grantColumns = `id, client_id, amount_minor, remaining_minor, reason, return_id, granted_by,
	expires_at, created_at`

func (t *txn) scanGrant(r row) (persistence.CreditGrant, error) {
	var g persistence.CreditGrant
	err := r.Scan(&g.ID, &g.ClientID, &g.AmountMinor, &g.RemainingMinor, &g.Reason, &g.ReturnID,
		&g.GrantedBy, t.at(&g.ExpiresAt), t.at(&g.CreatedAt))
	return g, err
}

const entryColumns = `id, client_id, grant_id, kind, amount_minor, order_id, at`

func (t *txn) scanEntry(r row) (persistence.CreditEntry, error) {
	var e persistence.CreditEntry
	var kind string
	err := r.Scan(&e.ID, &e.ClientID, &e.GrantID, &kind, &e.AmountMinor, &e.OrderID, t.at(&e.At))
	e.Kind = persistence.CreditEntryKind(kind)
	return e, err
}

func (t *txn) creditEntry(ctx context.Context, e persistence.CreditEntry) error {
	_, err := t.exec(ctx, `INSERT INTO credit_entries (`+entryColumns+`, reversed) VALUES (?, ?, ?, ?, ?, ?, ?, false)`,
		e.ID, e.ClientID, e.GrantID, string(e.Kind), e.AmountMinor, e.OrderID, t.ts(e.At))
	return err
}

func (t *txn) CreditGrant(ctx context.Context, g persistence.CreditGrant) error {
	g, err := persistence.NormalizeCreditGrant(g)
	if err != nil {
		return err
	}
	reason, err := t.sealText(ctx, g.ClientID, grantReasonPlace(g.ID), g.Reason)
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO credit_grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.ClientID, g.AmountMinor, g.RemainingMinor, reason, g.ReturnID, g.GrantedBy,
		t.ts(g.ExpiresAt), t.ts(g.CreatedAt)); err != nil {
		return err
	}
	return t.creditEntry(ctx, persistence.CreditEntry{ID: g.ID, ClientID: g.ClientID, GrantID: g.ID,
		Kind: persistence.CreditEntryGrant, AmountMinor: g.AmountMinor, At: g.CreatedAt})
}

func (t *txn) CreditGrants(ctx context.Context, clientID string, now time.Time) ([]persistence.CreditGrant, error) {
	gs, err := queryList(ctx, t, t.scanGrant, `SELECT `+grantColumns+` FROM credit_grants
		WHERE client_id = ? AND remaining_minor > 0 AND expires_at >= ?
		ORDER BY expires_at, created_at, id`, clientID, t.ts(now))
	if err != nil {
		return nil, err
	}
	return gs, t.openReasons(ctx, len(gs), func(i int) (string, string, *string) {
		return gs[i].ClientID, grantReasonPlace(gs[i].ID), &gs[i].Reason
	})
}

func (t *txn) CreditSpend(ctx context.Context, clientID string, amount int64, orderID string, now time.Time) error {
	if err := persistence.CheckCreditSpend(clientID, amount, orderID, now); err != nil {
		return err
	}
	grants, err := t.CreditGrants(ctx, clientID, now)
	if err != nil {
		return err
	}
	takes, err := persistence.AllocateCredit(grants, amount)
	if err != nil {
		return err
	}
	for _, tk := range takes {
		n, err := t.exec(ctx, `UPDATE credit_grants SET remaining_minor = remaining_minor - ?
			WHERE id = ? AND remaining_minor >= ?`, tk.AmountMinor, tk.GrantID, tk.AmountMinor)
		if err != nil {
			return err
		}
		if n == 0 { // unreachable: the allocation read the same rows in this transaction
			return persistence.ErrInsufficientCredit
		}
		if err := t.creditEntry(ctx, persistence.CreditEntry{ID: persistence.NewLedgerID(now), ClientID: clientID,
			GrantID: tk.GrantID, Kind: persistence.CreditEntryUse, AmountMinor: -tk.AmountMinor,
			OrderID: orderID, At: now}); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) CreditReverse(ctx context.Context, orderID string, now time.Time) (int64, error) {
	if orderID == "" || now.IsZero() {
		return 0, persistence.CheckCreditSpend("", 0, orderID, now)
	}
	uses, err := queryList(ctx, t, t.scanEntry, `SELECT `+entryColumns+` FROM credit_entries
		WHERE order_id = ? AND kind = 'use' AND reversed = false ORDER BY id`, orderID)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, u := range uses {
		back := -u.AmountMinor
		if _, err := t.exec(ctx, `UPDATE credit_entries SET reversed = true WHERE id = ?`, u.ID); err != nil {
			return 0, err
		}
		if _, err := t.exec(ctx, `UPDATE credit_grants SET remaining_minor = remaining_minor + ? WHERE id = ?`,
			back, u.GrantID); err != nil {
			return 0, err
		}
		if err := t.creditEntry(ctx, persistence.CreditEntry{ID: persistence.NewLedgerID(now), ClientID: u.ClientID,
			GrantID: u.GrantID, Kind: persistence.CreditEntryReversal, AmountMinor: back, OrderID: orderID,
			At: now}); err != nil {
			return 0, err
		}
		total += back
	}
	return total, nil
}

func (t *txn) CreditUsed(ctx context.Context, orderID string) (int64, error) {
	var used int64
	err := t.queryRow(ctx, `SELECT COALESCE(SUM(-amount_minor), 0) FROM credit_entries
		WHERE order_id = ? AND kind = 'use' AND reversed = false`, orderID).Scan(&used)
	return used, t.mapErr(err)
}

func (t *txn) CreditBalance(ctx context.Context, clientID string, now time.Time) (int64, error) {
	var sum int64
	err := t.queryRow(ctx, `SELECT COALESCE(SUM(remaining_minor), 0) FROM credit_grants
		WHERE client_id = ? AND expires_at >= ?`, clientID, t.ts(now)).Scan(&sum)
	return sum, t.mapErr(err)
}

func (t *txn) CreditLedger(ctx context.Context, p persistence.CreditLedgerParams) ([]persistence.CreditEntry, error) {
	if err := persistence.CheckCreditLedger(p); err != nil {
		return nil, err
	}
	q, args := `SELECT `+entryColumns+` FROM credit_entries WHERE client_id = ?`, []any{p.ClientID}
	if p.BeforeID != "" {
		q, args = q+" AND id < ?", append(args, p.BeforeID)
	}
	return queryList(ctx, t, t.scanEntry, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
}

func (t *txn) CreditExpire(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("credit expire", limit, 0); err != nil {
		return 0, err
	}
	grants, err := queryList(ctx, t, t.scanGrant, `SELECT `+grantColumns+` FROM credit_grants
		WHERE remaining_minor > 0 AND expires_at < ? ORDER BY expires_at, id LIMIT ?`, t.ts(now), limit)
	if err != nil {
		return 0, err
	}
	for _, g := range grants {
		if _, err := t.exec(ctx, `UPDATE credit_grants SET remaining_minor = 0 WHERE id = ?`, g.ID); err != nil {
			return 0, err
		}
		if err := t.creditEntry(ctx, persistence.CreditEntry{ID: persistence.NewLedgerID(now), ClientID: g.ClientID,
			GrantID: g.ID, Kind: persistence.CreditEntryExpiry, AmountMinor: -g.RemainingMinor, At: now}); err != nil {
			return 0, err
		}
	}
	return len(grants), nil
}
