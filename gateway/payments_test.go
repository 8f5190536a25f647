package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service/payments"
	"github.com/spa-engine/spa/persistence"
)

var wompiKeys = wompifake.DefaultKeys()

// paymentEnv is a shop gateway with payments against a fake Wompi whose
// events are dropped: tests post them to the webhook themselves.
type paymentEnv struct {
	*shopOrderEnv
	fake *wompifake.Server
}

func newPaymentEnv(t *testing.T) *paymentEnv {
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
	pe := &paymentEnv{fake: fake}
	pe.shopOrderEnv = newShopOrderEnvWith(t, func(d *Deps) {
		d.Payments = payments.New(payments.Deps{Store: d.Store, Wompi: client, Log: d.Logger})
	})
	return pe
}

// newShopOrderEnvWith is newShopOrderEnv with more options.
func newShopOrderEnvWith(t *testing.T, opt envOpt) *shopOrderEnv {
	t.Helper()
	se := newShopOrderEnv(t)
	d := Deps{Store: se.store, Tokens: se.tokens, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config: Config{BodyLimit: 128 << 10}}
	opt(&d)
	app, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	se.app = app
	return se
}

// hook posts an event body to the webhook.
func (e *env) hook(body []byte, checksum string) result {
	e.t.Helper()
	hdr := []string{"Content-Type", "application/json"}
	if checksum != "" {
		hdr = append(hdr, wompi.ChecksumHeader, checksum)
	}
	return e.do("POST", "/v1/webhooks/wompi", string(body), hdr...)
}

// signedEvent is a transaction.updated event signed as Wompi signs it.
func signedEvent(secret, id, status string, amount int64, reference string, ts int64) ([]byte, string) {
	sum := sha256.Sum256([]byte(id + status + strconv.FormatInt(amount, 10) + strconv.FormatInt(ts, 10) + secret))
	checksum := hex.EncodeToString(sum[:])
	return fmt.Appendf(nil, `{"event":"transaction.updated","data":{"transaction":{"id":%q,"amount_in_cents":%d,"reference":%q,`+
		`"currency":"COP","status":%q}},"environment":"test","signature":{"properties":["transaction.id",`+
		`"transaction.status","transaction.amount_in_cents"],"checksum":%q},"timestamp":%d}`,
		id, amount, reference, status, checksum, ts), checksum
}

func TestOrderPaymentThroughTheWebhook(t *testing.T) {
	e := newPaymentEnv(t)
	ana, ben := e.token("ana", auth.RoleClient), e.token("ben", auth.RoleClient)
	id := e.checkout(t, "ana", 1)

	r := e.postKey(ana, "/v1/shop/orders/"+id+"/payments", "", "pay-1")
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	co := decode[checkoutJSON](t, r)
	if co.Payment.AmountMinor != 5_355_000 || co.Payment.Status != "pending" || !strings.HasPrefix(co.CheckoutURL, e.fake.CheckoutURL()) {
		t.Fatalf("checkout: %+v", co)
	}
	if again := e.postKey(ana, "/v1/shop/orders/"+id+"/payments", "", "pay-2"); again.status != 200 ||
		decode[checkoutJSON](t, again).Payment.ID != co.Payment.ID {
		t.Fatalf("second create: %d %s", again.status, again.body)
	}
	if r := e.postKey(ben, "/v1/shop/orders/"+id+"/payments", "", "pay-3"); r.status != 404 {
		t.Fatalf("another client's order: %d", r.status)
	}

	if _, err := e.fake.PayCheckout(co.CheckoutURL, wompifake.Approve); err != nil {
		t.Fatal(err)
	}
	e.fake.WaitIdle()
	ev := e.fake.Events()[0]

	if r := e.hook(ev.Body, ""); r.status != 401 || r.errCode(t) != "unauthenticated" {
		t.Fatalf("no header: %d %s", r.status, r.body)
	}
	if r := e.hook(ev.Body, strings.Repeat("0", 64)); r.status != 401 {
		t.Fatalf("wrong header: %d", r.status)
	}
	if r := e.hook(bytes.Repeat([]byte(" "), wompi.MaxEventBytes+1), ev.Checksum); r.status != 413 {
		t.Fatalf("over the body cap: %d", r.status)
	}
	if got := decode[orderJSON](t, e.as(ana, "GET", "/v1/me/orders/"+id)); got.Status != "pending_payment" {
		t.Fatalf("a refused event changed the order: %s", got.Status)
	}

	r = e.hook(ev.Body, ev.Checksum)
	if r.status != 200 || r.json(t)["outcome"] != "applied" {
		t.Fatalf("authentic: %d %s", r.status, r.body)
	}
	if r := e.hook(ev.Body, strings.ToUpper(ev.Checksum)); r.status != 200 || r.json(t)["outcome"] != "replay" {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	if got := decode[orderJSON](t, e.as(ana, "GET", "/v1/me/orders/"+id)); got.Status != "paid" {
		t.Fatalf("order %s, want paid", got.Status)
	}
	if r := e.postKey(ana, "/v1/shop/orders/"+id+"/payments", "", "pay-4"); r.status != 409 {
		t.Fatalf("paying a paid order: %d", r.status)
	}
}

func TestPaymentExceptionRoutes(t *testing.T) {
	e := newPaymentEnv(t)
	admin, ana := e.token("boss", auth.RoleAdmin), e.token("ana", auth.RoleClient)
	body, sum := signedEvent(wompiKeys.Events, "tx-unknown", "APPROVED", 1000, "nobody", time.Now().Unix())
	if r := e.hook(body, sum); r.status != 200 || r.json(t)["outcome"] != "orphan" {
		t.Fatalf("unknown reference: %d %s", r.status, r.body)
	}
	if r := e.as(ana, "GET", "/v1/admin/payments/exceptions"); r.status != 403 {
		t.Fatalf("client: %d", r.status)
	}
	page := decode[paymentExceptionPage](t, e.as(admin, "GET", "/v1/admin/payments/exceptions?state=open&class=orphan"))
	if len(page.Exceptions) != 1 || page.Exceptions[0].Class != "orphan" || page.Next != nil {
		t.Fatalf("exceptions: %+v", page)
	}
	if r := e.as(admin, "GET", "/v1/admin/payments/exceptions?limit=0"); r.status != 422 {
		t.Fatalf("limit 0: %d", r.status)
	}
	path := "/v1/admin/payments/exceptions/" + page.Exceptions[0].ID + "/resolve"
	r := e.postKey(admin, path, `{"reason":"a test charge of the bank","write_off":true}`, "res-1")
	if r.status != 200 || decode[paymentExceptionJSON](t, r).State != "written_off" {
		t.Fatalf("resolve: %d %s", r.status, r.body)
	}
	if r := e.postKey(admin, path, `{"reason":"again"}`, "res-2"); r.status != 409 {
		t.Fatalf("resolve twice: %d", r.status)
	}
	if r := e.postKey(ana, path, `{"reason":"again"}`, "res-3"); r.status != 403 {
		t.Fatalf("client resolves: %d", r.status)
	}
}

func TestPaymentsNotConfigured(t *testing.T) {
	e := newShopOrderEnv(t)
	ana := e.token("ana", auth.RoleClient)
	id := e.checkout(t, "ana", 1)
	if r := e.postKey(ana, "/v1/shop/orders/"+id+"/payments", "", "k"); r.status != 503 {
		t.Fatalf("create: %d", r.status)
	}
	body, sum := signedEvent(wompiKeys.Events, "tx-1", "APPROVED", 1000, "ref", time.Now().Unix())
	if r := e.hook(body, sum); r.status != 503 {
		t.Fatalf("webhook: %d", r.status)
	}
}

// FuzzWompiWebhook: whatever is posted, the webhook never answers 5xx, and
// nothing that does not verify is stored or applied.
func FuzzWompiWebhook(f *testing.F) {
	now := time.Now().Unix()
	good, sum := signedEvent(wompiKeys.Events, "tx-1", "APPROVED", 1000, "ref-1", now)
	f.Add(good, sum)
	f.Add(good, "")
	f.Add([]byte(`{}`), sum)
	f.Add([]byte(`{"event":"transaction.updated","data":{"transaction":{"id":"1"}},"signature":{"properties":["transaction.id"],"checksum":"x"},"timestamp":1}`), "x")
	f.Add([]byte("\xff\x00"), "x")
	wrong, wsum := signedEvent("test_events_other", "tx-1", "APPROVED", 1000, "ref-1", now)
	f.Add(wrong, wsum)

	fake := wompifake.New(wompiKeys)
	defer fake.Close()
	client, err := wompi.New(wompi.Config{PublicKey: wompiKeys.Public, PrivateKey: wompiKeys.Private,
		IntegritySecret: wompiKeys.Integrity, EventsSecret: wompiKeys.Events, BaseURL: fake.BaseURL(),
		CheckoutURL: fake.CheckoutURL()}, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer client.CloseIdleConnections()
	e := newEnv(f, func(d *Deps) {
		d.Payments = payments.New(payments.Deps{Store: d.Store, Wompi: client, Log: d.Logger})
		d.Config.BodyLimit = 128 << 10
	})
	stored := func() int {
		var n int
		_ = e.store.InTx(context.Background(), func(tx persistence.Tx) error {
			evs, err := tx.PaymentEventListUnapplied(context.Background(), payments.ProviderWompi, time.Now().Add(time.Hour), 1000)
			n = len(evs)
			if err == nil {
				var xs []persistence.PaymentException
				xs, err = tx.PaymentExceptionList(context.Background(), persistence.ExceptionListParams{Limit: 1000})
				n += len(xs)
			}
			return err
		})
		return n
	}
	f.Fuzz(func(t *testing.T, body []byte, checksum string) {
		before := stored()
		req := httptest.NewRequest("POST", "/v1/webhooks/wompi", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(wompi.ChecksumHeader, checksum)
		res, err := e.app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("%q %q → %d %s", body, checksum, res.StatusCode, b)
		}
		_, verr := wompi.VerifyEvent(body, checksum, wompiKeys.Events, time.Now(), 0)
		if verr != nil && verr != wompi.ErrUnsupportedEvent {
			if res.StatusCode == 200 {
				t.Fatalf("an event that does not verify was accepted: %q %q → %s", body, checksum, b)
			}
			if after := stored(); after != before {
				t.Fatalf("an event that does not verify left rows: %d → %d", before, after)
			}
		}
	})
}
