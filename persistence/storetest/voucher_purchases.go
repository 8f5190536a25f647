package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// voucherPurchaseTests are the conformance tests of
// persistence.VoucherPurchaseStore.
var voucherPurchaseTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"VoucherPurchases", testVoucherPurchases},
	{"VoucherPurchaseSealed", testVoucherPurchaseSealed},
}

func voucherPurchase(id, client string, amount int64) persistence.VoucherPurchase {
	return persistence.VoucherPurchase{ID: id, ClientID: client, AmountMinor: amount, RecipientName: "Lucía",
		Message: "¡Feliz cumpleaños!", CreatedAt: base}
}

// testVoucherPurchases: a purchase reads back as stored and not issued;
// issuing it stores its voucher and its code together, once, and only a
// voucher matching it (id, balance, the code's hash).
func testVoucherPurchases(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	p := voucherPurchase("vp-1", "c1", 5_000_000)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.VoucherPurchaseCreate(ctx, p) })
	want := p
	want.CreatedAt = ct(base)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.VoucherPurchaseGet(ctx, p.ID)
		wantEqual(t, "purchase read back", got, want)
		if got.Issued() {
			t.Error("a new purchase reads issued")
		}
		return err
	})
	for name, c := range map[string]struct {
		p    persistence.VoucherPurchase
		want error
	}{
		"duplicate id": {voucherPurchase("vp-1", "c2", 1), persistence.ErrConflict},
		"no buyer":     {voucherPurchase("vp-2", "", 1), persistence.ErrInvalid},
		"zero amount":  {voucherPurchase("vp-2", "c1", 0), persistence.ErrInvalid},
		"over money":   {voucherPurchase("vp-2", "c1", 1_000_000_000_001), persistence.ErrInvalid},
		"created w/ code": {func() persistence.VoucherPurchase {
			x := voucherPurchase("vp-2", "c1", 1)
			x.Code = "SPA-1"
			return x
		}(), persistence.ErrInvalid},
	} {
		wantErr(t, name, txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.VoucherPurchaseCreate(ctx, c.p)
		}), c.want)
	}

	issuedAt := base.Add(time.Hour)
	v := voucher("vp-1", "SPA-AAAA-BBBB-CCCC", 5_000_000, base.Add(365*24*time.Hour))
	v.CreatedAt, v.UpdatedAt = issuedAt, issuedAt
	for name, c := range map[string]struct {
		v    persistence.Voucher
		code string
		want error
	}{
		"other balance":    {voucher("vp-1", "SPA-X", 4_999_999, v.ExpiresAt), "SPA-X", persistence.ErrInvalid},
		"other code":       {v, "SPA-AAAA-BBBB-CCCD", persistence.ErrInvalid},
		"no such purchase": {voucher("vp-9", "SPA-X", 5_000_000, v.ExpiresAt), "SPA-X", persistence.ErrNotFound},
	} {
		wantErr(t, name, txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.VoucherPurchaseIssue(ctx, c.v, c.code)
			return err
		}), c.want)
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.VoucherGet(ctx, "vp-1"); err == nil {
			t.Error("a refused issue left a voucher")
		}
		got, err := tx.VoucherPurchaseIssue(ctx, v, " spa-aaaa-bbbb-cccc ")
		if err != nil {
			return err
		}
		if got.Code != "SPA-AAAA-BBBB-CCCC" || !got.IssuedAt.Equal(ct(issuedAt)) || !got.Issued() {
			t.Errorf("issued purchase %+v", got)
		}
		return nil
	})
	wantErr(t, "issued twice", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.VoucherPurchaseIssue(ctx, v, "SPA-AAAA-BBBB-CCCC")
		return err
	}), persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.VoucherGet(ctx, "vp-1")
		if err != nil || got.BalanceMinor != 5_000_000 || got.ClientID != "" || got.CodeHash != v.CodeHash {
			t.Errorf("VoucherGet: %+v, %v", got, err)
		}
		byCode, err := tx.VoucherGetByCode(ctx, "spa-aaaa-bbbb-cccc", issuedAt)
		if err != nil || byCode.ID != "vp-1" {
			t.Errorf("the issued code does not find its voucher: %+v, %v", byCode, err)
		}
		_, err = tx.VoucherGet(ctx, "vp-9")
		wantErr(t, "VoucherGet of nothing", err, persistence.ErrNotFound)
		_, err = tx.VoucherPurchaseGet(ctx, "vp-9")
		wantErr(t, "VoucherPurchaseGet of nothing", err, persistence.ErrNotFound)
		return nil
	})

	// A buyer's list: newest first, paged by id, another buyer's left out.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, x := range []persistence.VoucherPurchase{voucherPurchase("vp-2", "c1", 2_000_000),
			voucherPurchase("vp-3", "c2", 3_000_000), voucherPurchase("vp-4", "c1", 4_000_000)} {
			if err := tx.VoucherPurchaseCreate(ctx, x); err != nil {
				return err
			}
		}
		return nil
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		ids := func(ps []persistence.VoucherPurchase) []string {
			out := []string{}
			for _, p := range ps {
				out = append(out, p.ID)
			}
			return out
		}
		all, err := tx.VoucherPurchaseList(ctx, "c1", "", 10)
		if err != nil {
			return err
		}
		wantEqual(t, "c1's purchases", ids(all), []string{"vp-4", "vp-2", "vp-1"})
		if all[2].Code != "SPA-AAAA-BBBB-CCCC" || all[0].RecipientName != "Lucía" {
			t.Errorf("listed purchases not read as stored: %+v", all)
		}
		page, err := tx.VoucherPurchaseList(ctx, "c1", "vp-4", 1)
		if err != nil {
			return err
		}
		wantEqual(t, "c1's page after vp-4", ids(page), []string{"vp-2"})
		none, err := tx.VoucherPurchaseList(ctx, "c9", "", 10)
		if err != nil || none == nil || len(none) != 0 {
			t.Errorf("nobody's purchases: %v, %v", none, err)
		}
		_, err = tx.VoucherPurchaseList(ctx, "c1", "", persistence.MaxVoucherPurchaseListLimit+1)
		wantErr(t, "limit over the maximum", err, persistence.ErrInvalid)
		return nil
	})
}

// testVoucherPurchaseSealed: with a PersonalSealer the recipient, the
// message and the code read back in the clear but are not stored so (a
// handle without the sealer cannot read them); the buyer's anonymisation
// clears them while the voucher stays spendable by its code.
func testVoucherPurchaseSealed(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{Personal: fakeSealer{}})
	u := newProfileUser(t, s, 60)
	p := voucherPurchase("vp-sealed", u.ID, 2_000_000)
	v := voucher(p.ID, "SPA-SEAL-SEAL-SEAL", p.AmountMinor, base.Add(365*24*time.Hour))
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.VoucherPurchaseCreate(ctx, p); err != nil {
			return err
		}
		_, err := tx.VoucherPurchaseIssue(ctx, v, "SPA-SEAL-SEAL-SEAL")
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.VoucherPurchaseGet(ctx, p.ID)
		if err == nil && (got.RecipientName != p.RecipientName || got.Message != p.Message || got.Code != "SPA-SEAL-SEAL-SEAL") {
			t.Errorf("sealed purchase read back: %+v", got)
		}
		return err
	})
	plain := open(t, persistence.Options{})
	if err := txErr(t, plain, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.VoucherPurchaseGet(ctx, p.ID)
		if err == nil && (got.Code == "SPA-SEAL-SEAL-SEAL" || got.RecipientName == p.RecipientName) {
			t.Error("the purchase's code or recipient is stored in the clear")
		}
		return err
	}); err == nil {
		t.Error("a handle without the sealer read a sealed purchase")
	}

	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		rep, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: bytes.Repeat([]byte{0xcc}, 32),
			IdempotencyScope: "sub:" + u.ID, At: base.Add(2 * time.Hour)})
		if err == nil && rep["voucher_purchases"] != 1 {
			t.Errorf("report %v: want the purchase scrubbed", rep)
		}
		return err
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.VoucherPurchaseGet(ctx, p.ID)
		if err == nil && (got.RecipientName != "" || got.Message != "" || got.Code != "" || !got.Issued()) {
			t.Errorf("purchase after the buyer's anonymisation: %+v", got)
		}
		if byCode, err := tx.VoucherGetByCode(ctx, "SPA-SEAL-SEAL-SEAL", base); err != nil || byCode.BalanceMinor != p.AmountMinor {
			t.Errorf("the voucher after its buyer's anonymisation: %+v, %v", byCode, err)
		}
		return err
	})
}
