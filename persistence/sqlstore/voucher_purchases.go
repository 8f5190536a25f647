package sqlstore

import (
	"context"
	"fmt"

	"github.com/spa-engine/spa/persistence"
)

// Places of a purchase's sealed columns (see personal.go).
func purchaseRecipientPlace(id string) string { return "voucher_purchases.recipient_name/" + id }
func purchaseMessagePlace(id string) string   { return "voucher_purchases.message/" + id }
func purchaseCodePlace(id string) string      { return "voucher_purchases.code/" + id }

const voucherPurchaseColumns = `id, client_id, amount_minor, recipient_name, message, code, created_at, issued_at`

func (t *txn) VoucherPurchaseCreate(ctx context.Context, p persistence.VoucherPurchase) error {
	p, err := persistence.NormalizeVoucherPurchase(p)
	if err != nil {
		return err
	}
	recipient, err := t.sealText(ctx, p.ClientID, purchaseRecipientPlace(p.ID), p.RecipientName)
	if err != nil {
		return err
	}
	message, err := t.sealText(ctx, p.ClientID, purchaseMessagePlace(p.ID), p.Message)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO voucher_purchases (`+voucherPurchaseColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.ClientID, p.AmountMinor, recipient, message, "", t.ts(p.CreatedAt), nil)
	return err
}

func (t *txn) scanVoucherPurchase(r row) (persistence.VoucherPurchase, error) {
	var p persistence.VoucherPurchase
	err := r.Scan(&p.ID, &p.ClientID, &p.AmountMinor, &p.RecipientName, &p.Message, &p.Code, t.at(&p.CreatedAt), t.at(&p.IssuedAt))
	return p, err
}

// openPurchase opens p's sealed columns. It runs after the rows are read:
// a query cannot run while another's rows are open on PostgreSQL.
func (t *txn) openPurchase(ctx context.Context, p *persistence.VoucherPurchase) error {
	for _, f := range []struct {
		place string
		v     *string
	}{{purchaseRecipientPlace(p.ID), &p.RecipientName}, {purchaseMessagePlace(p.ID), &p.Message}, {purchaseCodePlace(p.ID), &p.Code}} {
		var err error
		if *f.v, err = t.openText(ctx, p.ClientID, f.place, *f.v); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) VoucherPurchaseGet(ctx context.Context, id string) (persistence.VoucherPurchase, error) {
	p, err := t.scanVoucherPurchase(t.queryRow(ctx, `SELECT `+voucherPurchaseColumns+` FROM voucher_purchases WHERE id = ?`, id))
	if err != nil {
		return p, t.mapErr(err)
	}
	return p, t.openPurchase(ctx, &p)
}

func (t *txn) VoucherPurchaseList(ctx context.Context, clientID, beforeID string, limit int) ([]persistence.VoucherPurchase, error) {
	if err := persistence.CheckLimit("voucher purchases", limit, persistence.MaxVoucherPurchaseListLimit); err != nil {
		return nil, err
	}
	q, args := `SELECT `+voucherPurchaseColumns+` FROM voucher_purchases WHERE client_id = ?`, []any{clientID}
	if beforeID != "" {
		q, args = q+` AND id < ?`, append(args, beforeID)
	}
	ps, err := queryList(ctx, t, t.scanVoucherPurchase, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if err := t.openPurchase(ctx, &ps[i]); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func (t *txn) VoucherPurchaseIssue(ctx context.Context, v persistence.Voucher, code string) (persistence.VoucherPurchase, error) {
	p, err := t.VoucherPurchaseGet(ctx, v.ID)
	if err != nil {
		return p, err
	}
	if p.Issued() {
		return p, fmt.Errorf("voucher purchase %s was issued already: %w", p.ID, persistence.ErrConflict)
	}
	if err := persistence.CheckVoucherPurchaseIssue(p, v, code); err != nil {
		return p, err
	}
	if err := t.VoucherIssue(ctx, v); err != nil {
		return p, err
	}
	sealed, err := t.sealText(ctx, p.ClientID, purchaseCodePlace(p.ID), persistence.NormalizeVoucherCode(code))
	if err != nil {
		return p, err
	}
	// Conditional on issued_at still NULL, so two issues racing in
	// SQLite's or PostgreSQL's serial order cannot both record a code.
	n, err := t.exec(ctx, `UPDATE voucher_purchases SET code = ?, issued_at = ? WHERE id = ? AND issued_at IS NULL`,
		sealed, t.ts(persistence.CanonicalTime(v.CreatedAt)), p.ID)
	if err != nil {
		return p, err
	}
	if n == 0 {
		return p, fmt.Errorf("voucher purchase %s changed meanwhile: %w", p.ID, persistence.ErrConflict)
	}
	return t.VoucherPurchaseGet(ctx, p.ID)
}

func (t *txn) VoucherGet(ctx context.Context, id string) (persistence.Voucher, error) {
	v, err := t.scanVoucher(t.queryRow(ctx, `SELECT `+voucherColumns+` FROM vouchers WHERE id = ?`, id))
	return v, t.mapErr(err)
}
