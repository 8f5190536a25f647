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

func (t *txn) VoucherPurchaseGet(ctx context.Context, id string) (persistence.VoucherPurchase, error) {
	var p persistence.VoucherPurchase
	err := t.queryRow(ctx, `SELECT `+voucherPurchaseColumns+` FROM voucher_purchases WHERE id = ?`, id).Scan(
		&p.ID, &p.ClientID, &p.AmountMinor, &p.RecipientName, &p.Message, &p.Code, t.at(&p.CreatedAt), t.at(&p.IssuedAt))
	if err != nil {
		return p, t.mapErr(err)
	}
	// Opened after the row is read: a query cannot run while another's
	// rows are open on PostgreSQL.
	for _, f := range []struct {
		place string
		v     *string
	}{{purchaseRecipientPlace(id), &p.RecipientName}, {purchaseMessagePlace(id), &p.Message}, {purchaseCodePlace(id), &p.Code}} {
		if *f.v, err = t.openText(ctx, p.ClientID, f.place, *f.v); err != nil {
			return p, err
		}
	}
	return p, nil
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
