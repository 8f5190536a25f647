package gateway

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service/payments"
	"github.com/spa-engine/spa/persistence"
)

var voucherCodeShape = regexp.MustCompile(`^SPA(-[ABCDEFGHJKMNPQRSTUVWXYZ2-9]{4}){3}$`)

// voucherPurchaseEnv is a payments gateway (newPaymentEnv) whose log,
// the payments service's included, is kept to be searched for secrets.
type voucherPurchaseEnv struct {
	*paymentEnv
	mu   sync.Mutex
	logs bytes.Buffer
}

func (e *voucherPurchaseEnv) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.Write(p)
}

func (e *voucherPurchaseEnv) logText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

func newVoucherPurchaseEnv(t *testing.T) *voucherPurchaseEnv {
	t.Helper()
	fake := wompifake.New(wompiKeys)
	t.Cleanup(fake.Close)
	fake.DefaultDelivery(wompifake.Delivery{Drop: true})
	client, err := wompi.New(wompi.Config{PublicKey: wompiKeys.Public, PrivateKey: wompiKeys.Private,
		IntegritySecret: wompiKeys.Integrity, EventsSecret: wompiKeys.Events, BaseURL: fake.BaseURL(),
		CheckoutURL: fake.CheckoutURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	e := &voucherPurchaseEnv{paymentEnv: &paymentEnv{fake: fake}}
	e.shopOrderEnv = newShopOrderEnvWith(t, func(d *Deps) {
		d.Logger = slog.New(slog.NewTextHandler(e, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d.Payments = payments.New(payments.Deps{Store: d.Store, Wompi: client, Log: d.Logger})
	})
	return e
}

// TestVoucherPurchaseOverHTTP: a client buys a voucher (201, replayed for
// the same Idempotency-Key), bad input is refused with its code, only the
// buyer reads the purchase, and the approval posted to the webhook issues
// a bearer voucher whose code the buyer reads and anyone can spend; a
// declined purchase reads void, with no voucher.
func TestVoucherPurchaseOverHTTP(t *testing.T) {
	e := newVoucherPurchaseEnv(t)
	ana, ben := e.token("ana", auth.RoleClient), e.token("ben", auth.RoleClient)
	desk, admin := e.token("desk-1", auth.RoleReceptionist), e.token("boss", auth.RoleAdmin)
	body := `{"amount_minor":15000000,"recipient_name":"Lucía","message":"Feliz cumpleaños"}`

	r := e.postKey(ana, "/v1/vouchers/purchases", body, "vb-1")
	if r.status != 201 {
		t.Fatalf("buy: %d %s", r.status, r.body)
	}
	vp := decode[voucherPurchaseJSON](t, r)
	if vp.Status != "pending" || vp.AmountMinor != 15_000_000 || vp.RecipientName != "Lucía" || vp.Voucher != nil ||
		vp.Payment == nil || vp.Payment.Kind != "voucher_purchase" || vp.Payment.SubjectID != vp.ID ||
		vp.Payment.AmountMinor != 15_000_000 || !strings.HasPrefix(vp.CheckoutURL, e.fake.CheckoutURL()) {
		t.Fatalf("purchase: %+v", vp)
	}
	if again := e.postKey(ana, "/v1/vouchers/purchases", body, "vb-1"); again.status != 201 ||
		again.header.Get("Idempotent-Replayed") != "true" || decode[voucherPurchaseJSON](t, again).ID != vp.ID {
		t.Fatalf("retry with the same key: %d %v %s", again.status, again.header, again.body)
	}

	for _, c := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"too little", ana, `{"amount_minor":100}`, 422, "validation_failed"},
		{"cents", ana, `{"amount_minor":15000050}`, 422, "validation_failed"},
		{"control character", ana, `{"amount_minor":15000000,"message":"a\u0007b"}`, 422, "validation_failed"},
		{"unknown field", ana, `{"amount_minor":15000000,"client_id":"ben"}`, 400, "bad_request"},
		{"staff", desk, `{"amount_minor":15000000}`, 403, "forbidden"},
	} {
		r := e.postKey(c.token, "/v1/vouchers/purchases", c.body, "vb-"+c.name)
		if r.status != c.status || r.errCode(t) != c.code {
			t.Fatalf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	if r := e.do("POST", "/v1/vouchers/purchases", body, "Content-Type", "application/json"); r.status != 401 {
		t.Fatalf("anonymous: %d", r.status)
	}

	path := "/v1/vouchers/purchases/" + vp.ID
	for _, other := range []string{ben, admin} {
		if r := e.as(other, "GET", path); r.status != 404 || r.errCode(t) != "not_found" {
			t.Fatalf("someone else reads the purchase: %d %s", r.status, r.body)
		}
	}
	if got := decode[voucherPurchaseJSON](t, e.as(ana, "GET", path)); got.Status != "pending" || got.Voucher != nil || got.CheckoutURL != "" {
		t.Fatalf("pending purchase: %+v", got)
	}

	tx, err := e.fake.PayCheckout(vp.CheckoutURL, wompifake.Approve)
	if err != nil {
		t.Fatal(err)
	}
	ev, sum := signedEvent(wompiKeys.Events, tx.ID, "APPROVED", tx.AmountInCents, tx.Reference, time.Now().Unix())
	if r := e.hook(ev, sum); r.status != 200 || r.json(t)["outcome"] != "applied" {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	got := decode[voucherPurchaseJSON](t, e.as(ana, "GET", path))
	if got.Status != "issued" || got.IssuedAt == nil || got.Voucher == nil || got.Voucher.ID != vp.ID ||
		got.Voucher.BalanceMinor != 15_000_000 || got.Voucher.ClientID != "" || !voucherCodeShape.MatchString(got.Voucher.Code) ||
		got.Payment.Status != "approved" {
		t.Fatalf("issued purchase: %+v", got)
	}
	// A bearer voucher: whoever holds the code spends it.
	if err := e.store.InTx(t.Context(), func(tx persistence.Tx) error {
		v, err := tx.VoucherGetByCode(t.Context(), strings.ToLower(got.Voucher.Code), time.Now())
		if err == nil && (v.ID != vp.ID || v.BalanceMinor != 15_000_000) {
			t.Errorf("the code finds %+v", v)
		}
		return err
	}); err != nil {
		t.Fatalf("the issued code: %v", err)
	}
	if logs := e.logText(); logs == "" || strings.Contains(logs, got.Voucher.Code) || strings.Contains(logs, "Lucía") {
		t.Fatal("the log is not captured, or it holds the code or the recipient")
	}

	mine := decode[voucherPurchasePage](t, e.as(ana, "GET", "/v1/me/voucher-purchases?limit=5"))
	if len(mine.Purchases) != 1 || mine.Next != nil || mine.Purchases[0].ID != vp.ID || mine.Purchases[0].Voucher == nil ||
		mine.Purchases[0].Voucher.Code != got.Voucher.Code {
		t.Fatalf("ana's purchases: %+v", mine)
	}
	if theirs := decode[voucherPurchasePage](t, e.as(ben, "GET", "/v1/me/voucher-purchases")); len(theirs.Purchases) != 0 {
		t.Fatalf("ben's purchases: %+v", theirs)
	}
	if r := e.as(ana, "GET", "/v1/me/voucher-purchases?limit=0"); r.status != 422 || r.errCode(t) != "validation_failed" {
		t.Fatalf("limit 0: %d %s", r.status, r.body)
	}

	r = e.postKey(ana, "/v1/vouchers/purchases", `{"amount_minor":2000000}`, "vb-2")
	if r.status != 201 {
		t.Fatalf("second purchase: %d %s", r.status, r.body)
	}
	declined := decode[voucherPurchaseJSON](t, r)
	if tx, err = e.fake.PayCheckout(declined.CheckoutURL, wompifake.Decline); err != nil {
		t.Fatal(err)
	}
	ev, sum = signedEvent(wompiKeys.Events, tx.ID, "DECLINED", tx.AmountInCents, tx.Reference, time.Now().Unix())
	if r := e.hook(ev, sum); r.status != 200 {
		t.Fatalf("webhook: %d %s", r.status, r.body)
	}
	if got := decode[voucherPurchaseJSON](t, e.as(ana, "GET", "/v1/vouchers/purchases/"+declined.ID)); got.Status != "void" ||
		got.Voucher != nil || got.Payment.Status != "declined" {
		t.Fatalf("declined purchase: %+v", got)
	}
}

// TestVoucherPurchaseNotConfigured: without Wompi a purchase is 503 and
// nothing is stored (the buyer has no purchase to list).
func TestVoucherPurchaseNotConfigured(t *testing.T) {
	e := newShopOrderEnv(t)
	ana := e.token("ana", auth.RoleClient)
	if r := e.postKey(ana, "/v1/vouchers/purchases", `{"amount_minor":15000000}`, "k"); r.status != 503 || r.errCode(t) != "unavailable" {
		t.Fatalf("buy: %d %s", r.status, r.body)
	}
	if mine := decode[voucherPurchasePage](t, e.as(ana, "GET", "/v1/me/voucher-purchases")); len(mine.Purchases) != 0 {
		t.Fatalf("purchases: %+v", mine)
	}
}
