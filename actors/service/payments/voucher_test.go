package payments

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
)

// giftAmount is a COP 150,000.00 voucher.
const giftAmount = 15_000_000

func (f *fixture) buy(by service.Caller, in VoucherPurchaseInput) (VoucherPurchase, error) {
	var vp VoucherPurchase
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		vp, err = f.svc.BuyVoucher(context.Background(), tx, by, in)
		return err
	})
	return vp, err
}

func (f *fixture) mustBuy(by service.Caller) VoucherPurchase {
	f.t.Helper()
	vp, err := f.buy(by, VoucherPurchaseInput{AmountMinor: giftAmount, RecipientName: " Lucía ", Message: "¡Feliz cumpleaños!"})
	if err != nil {
		f.t.Fatalf("BuyVoucher: %v", err)
	}
	return vp
}

func (f *fixture) purchase(by service.Caller, id string) VoucherPurchase {
	f.t.Helper()
	vp, err := f.svc.VoucherPurchaseOf(context.Background(), by, id)
	if err != nil {
		f.t.Fatalf("VoucherPurchaseOf: %v", err)
	}
	return vp
}

// vouchers counts the vouchers issued for a purchase (0 or 1: the voucher
// takes the purchase's id).
func (f *fixture) voucherOf(id string) (persistence.Voucher, bool) {
	f.t.Helper()
	var v persistence.Voucher
	var found bool
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		v, err = tx.VoucherGet(ctx, id)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil
		}
		found = err == nil
		return err
	})
	return v, found
}

func (f *fixture) balances() map[string]int64 {
	f.t.Helper()
	var bal map[string]int64
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		bal, err = tx.PaymentLedgerBalances(ctx)
		return err
	})
	return bal
}

// auditMentions reports whether any audit entry's detail or reason holds s.
func (f *fixture) auditMentions(s string) bool {
	f.t.Helper()
	found := false
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		es, err := tx.AuditList(ctx, persistence.AuditListParams{Limit: 1000})
		for _, e := range es {
			if bytes.Contains([]byte(e.Detail), []byte(s)) || strings.Contains(e.Reason, s) {
				found = true
			}
		}
		return err
	})
	return found
}

// TestVoucherPurchaseApprovedIssuesOnce: a client's purchase is pending
// with a 30-minute payment of the amount; approval (its event delivered
// three times) issues one bearer voucher of that balance whose code only
// the buyer reads back, posts wompi → vouchers, and a second approved
// transaction of the same reference goes to suspense without a second
// voucher.
func TestVoucherPurchaseApprovedIssuesOnce(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		vp := f.mustBuy(ana)
		in := vp.Payment
		if vp.Status != PurchasePending || vp.CheckoutURL == "" || in.Kind != persistence.PaymentVoucherPurchase ||
			in.SubjectID != vp.Purchase.ID || in.ClientID != "ana" || in.AmountMinor != giftAmount || in.Status != persistence.IntentPending {
			t.Fatalf("purchase: %+v", vp)
		}
		if w := in.ExpiresAt.Sub(in.CreatedAt); w != VoucherPurchasePayWindow {
			t.Fatalf("pay window %v", w)
		}
		if vp.Purchase.RecipientName != "Lucía" || vp.Purchase.Message != "¡Feliz cumpleaños!" || vp.Purchase.Code != "" || vp.Voucher != nil {
			t.Fatalf("pending purchase: %+v", vp.Purchase)
		}
		if _, ok := f.voucherOf(vp.Purchase.ID); ok {
			t.Fatal("a voucher exists before the payment")
		}
		if got := f.purchase(ana, vp.Purchase.ID); got.Status != PurchasePending || got.Payment.ID != in.ID {
			t.Fatalf("pending purchase read back: %+v", got)
		}

		f.fake.Delivery(in.ID, wompifake.Delivery{Duplicates: 2})
		tx := f.checkout(Checkout{Intent: in, URL: vp.CheckoutURL}, wompifake.Approve)
		got := f.purchase(ana, vp.Purchase.ID)
		if got.Status != PurchaseIssued || got.Voucher == nil || got.Payment.Status != persistence.IntentApproved {
			t.Fatalf("purchase after approval: %+v", got)
		}
		code := got.Purchase.Code
		v := *got.Voucher
		if !strings.HasPrefix(code, "SPA-") || v.ID != vp.Purchase.ID || v.BalanceMinor != giftAmount || v.ClientID != "" ||
			v.CodeHash != persistence.HashVoucherCode(code) || !v.ExpiresAt.After(time.Now().Add(364*24*time.Hour)) {
			t.Fatalf("voucher %+v (code %q)", v, code)
		}
		// The code spends: anyone holding it finds the voucher.
		f.must(func(ctx context.Context, tx persistence.Tx) error {
			byCode, err := tx.VoucherGetByCode(ctx, strings.ToLower(code), time.Now())
			if err == nil && byCode.ID != v.ID {
				t.Errorf("the code finds %s", byCode.ID)
			}
			return err
		})
		for _, other := range []service.Caller{bob, admin} {
			if _, err := f.svc.VoucherPurchaseOf(context.Background(), other, vp.Purchase.ID); servicetest.Code(err) != "not_found" {
				t.Fatalf("%s reads the purchase: %v", other.Subject, err)
			}
		}
		if _, err := f.svc.VoucherPurchaseOf(context.Background(), service.Caller{}, vp.Purchase.ID); servicetest.Code(err) != "unauthenticated" {
			t.Fatalf("anonymous: %v", err)
		}
		es := f.entries(in.ID)
		if len(es) != 2 || es[0].Account != persistence.AccountWompi || es[0].AmountMinor != giftAmount ||
			es[1].Account != persistence.AccountVouchers || es[1].AmountMinor != -giftAmount {
			t.Fatalf("ledger: %+v", es)
		}
		if f.audits("voucher.issue", "voucher/"+v.ID) != 1 || f.audits("payment.approved", "payment/"+in.ID) != 1 {
			t.Fatal("want one voucher.issue and one payment.approved")
		}
		if f.auditMentions(code) || f.auditMentions("Lucía") {
			t.Fatal("the audit log holds the code or the recipient")
		}

		second := wompi.Transaction{ID: tx.ID + "-bis", Reference: in.ID, AmountInCents: giftAmount, Currency: "COP",
			Status: wompi.StatusApproved}
		for range 2 {
			if out, err := f.svc.Apply(context.Background(), Observation{Tx: second, Source: SourceReconcile}); err != nil ||
				out != OutcomeDuplicateApproval {
				t.Fatalf("second approval: %s %v", out, err)
			}
		}
		again := f.purchase(ana, vp.Purchase.ID)
		if again.Purchase.Code != code || again.Voucher.BalanceMinor != giftAmount || again.Voucher.Version != 1 {
			t.Fatalf("after a second approval: %+v", again)
		}
		if f.audits("voucher.issue", "voucher/"+v.ID) != 1 {
			t.Fatal("a second approval issued again")
		}
		if xs := f.exceptions(persistence.ExceptionDuplicateApproval); len(xs) != 1 {
			t.Fatalf("duplicate approvals: %+v", xs)
		}
		bal := f.balances()
		if bal[persistence.AccountWompi] != 2*giftAmount || bal[persistence.AccountVouchers] != -giftAmount ||
			bal[persistence.AccountSuspense] != -giftAmount {
			t.Fatalf("balances: %v", bal)
		}
	})
}

// TestVoucherPurchaseDeclinedIssuesNothing: a declined payment leaves the
// purchase void, with no voucher and no money moved; a later purchase is a
// new one, paid by its own intent.
func TestVoucherPurchaseDeclinedIssuesNothing(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		vp := f.mustBuy(ana)
		f.checkout(Checkout{Intent: vp.Payment, URL: vp.CheckoutURL}, wompifake.Decline)
		got := f.purchase(ana, vp.Purchase.ID)
		if got.Status != PurchaseVoid || got.Payment.Status != persistence.IntentDeclined || got.Voucher != nil || got.Purchase.Code != "" {
			t.Fatalf("declined purchase: %+v", got)
		}
		if _, ok := f.voucherOf(vp.Purchase.ID); ok {
			t.Fatal("a declined purchase issued a voucher")
		}
		if len(f.entries(vp.Payment.ID)) != 0 || f.audits("voucher.issue", "voucher/"+vp.Purchase.ID) != 0 {
			t.Fatal("a declined purchase moved money or issued")
		}
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.purchase(ana, vp.Purchase.ID); got.Status != PurchaseVoid {
			t.Fatalf("after reconciliation: %s", got.Status)
		}
		next := f.mustBuy(ana)
		if next.Purchase.ID == vp.Purchase.ID || next.Payment.ID == vp.Payment.ID {
			t.Fatal("a new purchase reused the void one")
		}
		f.checkout(Checkout{Intent: next.Payment, URL: next.CheckoutURL}, wompifake.Approve)
		if got := f.purchase(ana, next.Purchase.ID); got.Status != PurchaseIssued {
			t.Fatalf("the next purchase: %s", got.Status)
		}
	})
}

// TestVoucherPurchaseReconciliationAlone: with every event dropped,
// reconciliation issues the approved purchase's voucher once and voids the
// declined one.
func TestVoucherPurchaseReconciliationAlone(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		f.fake.DefaultDelivery(wompifake.Delivery{Drop: true})
		paid, declined := f.mustBuy(ana), f.mustBuy(bob)
		f.checkout(Checkout{Intent: paid.Payment, URL: paid.CheckoutURL}, wompifake.Approve)
		f.checkout(Checkout{Intent: declined.Payment, URL: declined.CheckoutURL}, wompifake.Decline)
		if f.hooks.Load() != 0 || f.purchase(ana, paid.Purchase.ID).Status != PurchasePending {
			t.Fatal("an event arrived")
		}
		for range 2 {
			if _, err := f.svc.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		got := f.purchase(ana, paid.Purchase.ID)
		if got.Status != PurchaseIssued || got.Voucher == nil || got.Voucher.BalanceMinor != giftAmount || got.Purchase.Code == "" {
			t.Fatalf("paid purchase: %+v", got)
		}
		if got := f.purchase(bob, declined.Purchase.ID); got.Status != PurchaseVoid || got.Voucher != nil {
			t.Fatalf("declined purchase: %+v", got)
		}
		if f.audits("voucher.issue", "voucher/"+paid.Purchase.ID) != 1 || len(f.entries(paid.Payment.ID)) != 2 {
			t.Fatal("issued twice")
		}
		if bal := f.balances(); bal[persistence.AccountVouchers] != -giftAmount {
			t.Fatalf("balances: %v", bal)
		}
	})
}

// TestVoucherPurchaseUnpaidExpires: a purchase nobody pays expires at
// reconciliation once its window and the grace passed: void, nothing
// issued.
func TestVoucherPurchaseUnpaidExpires(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		vp := f.mustBuy(ana)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.purchase(ana, vp.Purchase.ID); got.Status != PurchasePending {
			t.Fatalf("within its window: %s", got.Status)
		}
		f.offset.Store(int64(VoucherPurchasePayWindow + DefaultExpiryGrace + time.Minute))
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := f.purchase(ana, vp.Purchase.ID)
		if got.Status != PurchaseVoid || got.Payment.Status != persistence.IntentExpired || got.Voucher != nil {
			t.Fatalf("expired purchase: %+v", got)
		}
	})
}

// TestBuyVoucherRefusals: bounds and text are checked field by field;
// only a signed-in client buys; without Wompi it is unavailable.
func TestBuyVoucherRefusals(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for _, c := range []struct {
			name  string
			by    service.Caller
			in    VoucherPurchaseInput
			code  string
			field string
		}{
			{"below the minimum", ana, VoucherPurchaseInput{AmountMinor: MinVoucherPurchase - 100}, "validation_failed", "amount_minor"},
			{"above the maximum", ana, VoucherPurchaseInput{AmountMinor: MaxVoucherPurchase + 100}, "validation_failed", "amount_minor"},
			{"cents", ana, VoucherPurchaseInput{AmountMinor: giftAmount + 50}, "validation_failed", "amount_minor"},
			{"long name", ana, VoucherPurchaseInput{AmountMinor: giftAmount, RecipientName: strings.Repeat("n", 81)}, "validation_failed", "recipient_name"},
			{"control character", ana, VoucherPurchaseInput{AmountMinor: giftAmount, Message: "hola\x00"}, "validation_failed", "message"},
			{"staff", admin, VoucherPurchaseInput{AmountMinor: giftAmount}, "forbidden", ""},
			{"anonymous", service.Caller{}, VoucherPurchaseInput{AmountMinor: giftAmount}, "unauthenticated", ""},
		} {
			_, err := f.buy(c.by, c.in)
			if servicetest.Code(err) != c.code {
				t.Fatalf("%s: %v, want %s", c.name, err, c.code)
			}
			if c.field != "" {
				if fs := servicetest.Fields(err); len(fs) != 1 || fs[0] != c.field {
					t.Fatalf("%s: fields %v", c.name, fs)
				}
			}
		}
		if vp, err := f.buy(ana, VoucherPurchaseInput{AmountMinor: MinVoucherPurchase}); err != nil || vp.Purchase.RecipientName != "" {
			t.Fatalf("the minimum, no gift text: %+v %v", vp, err)
		}
		if _, err := f.svc.VoucherPurchaseOf(context.Background(), ana, "nope"); servicetest.Code(err) != "not_found" {
			t.Fatalf("unknown purchase: %v", err)
		}
	})
	off := New(Deps{})
	if _, err := off.BuyVoucher(context.Background(), nil, servicetest.As(auth.RoleClient, "ana"),
		VoucherPurchaseInput{AmountMinor: giftAmount}); servicetest.Code(err) != "unavailable" {
		t.Fatalf("disabled: %v", err)
	}
}

// TestMyVoucherPurchases: a buyer lists their own purchases newest first,
// each with its status (and code once issued), paged; nobody else's.
func TestMyVoucherPurchases(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		declined, paid := f.mustBuy(ana), f.mustBuy(ana)
		f.mustBuy(bob)
		f.checkout(Checkout{Intent: declined.Payment, URL: declined.CheckoutURL}, wompifake.Decline)
		f.checkout(Checkout{Intent: paid.Payment, URL: paid.CheckoutURL}, wompifake.Approve)
		page, err := f.svc.MyVoucherPurchases(context.Background(), ana, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 2 || page.Next != nil || page.Items[0].Purchase.ID != paid.Purchase.ID ||
			page.Items[0].Status != PurchaseIssued || page.Items[0].Voucher == nil || page.Items[0].Purchase.Code == "" ||
			page.Items[1].Purchase.ID != declined.Purchase.ID || page.Items[1].Status != PurchaseVoid {
			t.Fatalf("ana's purchases: %+v", page)
		}
		first, err := f.svc.MyVoucherPurchases(context.Background(), ana, "", 1)
		if err != nil || len(first.Items) != 1 || first.Next == nil || *first.Next != paid.Purchase.ID {
			t.Fatalf("first page: %+v %v", first, err)
		}
		rest, err := f.svc.MyVoucherPurchases(context.Background(), ana, *first.Next, 1)
		if err != nil || len(rest.Items) != 1 || rest.Next != nil || rest.Items[0].Purchase.ID != declined.Purchase.ID {
			t.Fatalf("second page: %+v %v", rest, err)
		}
		if none, err := f.svc.MyVoucherPurchases(context.Background(), admin, "", 0); err != nil || len(none.Items) != 0 {
			t.Fatalf("someone with none: %+v %v", none, err)
		}
		if _, err := f.svc.MyVoucherPurchases(context.Background(), ana, "", 51); servicetest.Code(err) != "validation_failed" {
			t.Fatalf("limit 51: %v", err)
		}
	})
}
