package wompifake_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/leakcheck"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/testwait"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var keys = wompifake.DefaultKeys()

// received is what the webhook got, in order.
type received struct {
	body     []byte
	checksum string
}

type hook struct {
	mu   sync.Mutex
	got  []received
	srv  *httptest.Server
	code int
}

func newHook(t *testing.T) *hook {
	h := &hook{code: http.StatusOK}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, received{body, r.Header.Get(wompi.ChecksumHeader)})
		code := h.code
		h.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) all() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.got...)
}

// verified checks every received event with package wompi and returns
// their transactions.
func (h *hook) verified(t *testing.T) []wompi.Transaction {
	t.Helper()
	var out []wompi.Transaction
	for _, r := range h.all() {
		ev, err := wompi.VerifyEvent(r.body, r.checksum, keys.Events, time.Now(), 0)
		if err != nil {
			t.Fatalf("the fake's event does not verify: %v\n%s", err, r.body)
		}
		out = append(out, *ev.Transaction)
	}
	return out
}

// start returns a fake posting to a fresh webhook.
func start(t *testing.T) (*wompifake.Server, *hook) {
	t.Helper()
	f := wompifake.New(keys)
	t.Cleanup(f.Close)
	h := newHook(t)
	f.SetWebhook(h.srv.URL)
	return f, h
}

// call sends a JSON API request with a bearer key and decodes the reply.
func call(t *testing.T, f *wompifake.Server, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.BaseURL()+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// nequi creates a Nequi transaction through the API.
func nequi(t *testing.T, f *wompifake.Server, ref, phone string) (int, map[string]any) {
	t.Helper()
	const amount = 4490000
	sig := wompi.IntegritySignature(ref, amount, "COP", "", keys.Integrity)
	_, m := call(t, f, http.MethodGet, "/merchants/"+keys.Public, "", nil)
	data := m["data"].(map[string]any)
	acc := data["presigned_acceptance"].(map[string]any)["acceptance_token"]
	pers := data["presigned_personal_data_auth"].(map[string]any)["acceptance_token"]
	return call(t, f, http.MethodPost, "/transactions", keys.Public, map[string]any{
		"acceptance_token": acc, "accept_personal_auth": pers, "amount_in_cents": amount, "currency": "COP",
		"signature": sig, "customer_email": "a@b.co", "reference": ref,
		"payment_method": map[string]any{"type": "NEQUI", "phone_number": phone},
	})
}

func txID(t *testing.T, m map[string]any) string {
	t.Helper()
	d, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("reply %v has no data", m)
	}
	return d["id"].(string)
}

func TestMerchantEndpointsAndAuth(t *testing.T) {
	f, _ := start(t)
	// New path with the header, old path with the key in it.
	req, _ := http.NewRequest(http.MethodGet, f.BaseURL()+"/merchants/info", nil)
	req.Header.Set("x-merchant-public-key", keys.Public)
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/merchants/info = %d", resp.StatusCode)
	}
	if code, _ := call(t, f, http.MethodGet, "/merchants/info", "", nil); code != 401 {
		t.Fatalf("/merchants/info without the header = %d, want 401", code)
	}
	if code, _ := call(t, f, http.MethodGet, "/merchants/"+keys.Public, "", nil); code != 200 {
		t.Fatalf("/merchants/{key} = %d", code)
	}
	if code, _ := call(t, f, http.MethodGet, "/merchants/pub_test_other", "", nil); code != 404 {
		t.Fatalf("/merchants/{other key} = %d, want 404", code)
	}

	code, m := nequi(t, f, "R1", "3991111111")
	if code != 201 {
		t.Fatalf("create = %d %v", code, m)
	}
	id := txID(t, m)
	for _, tc := range []struct {
		name, method, path, key string
		want                    int
	}{
		{"read with the public key", http.MethodGet, "/transactions/" + id, keys.Public, 404},
		{"read anonymously", http.MethodGet, "/transactions/" + id, "", 404},
		{"read with a key not ours", http.MethodGet, "/transactions/" + id, "prv_test_other", 401},
		{"read with the private key", http.MethodGet, "/transactions/" + id, keys.Private, 200},
		{"find with the public key", http.MethodGet, "/transactions?reference=R1", keys.Public, 401},
		{"void with the public key", http.MethodPost, "/transactions/" + id + "/void", keys.Public, 401},
		{"tokenize with the private key", http.MethodPost, "/tokens/cards", keys.Private, 401},
		{"source with the public key", http.MethodPost, "/payment_sources", keys.Public, 401},
	} {
		if code, _ := call(t, f, tc.method, tc.path, tc.key, nil); code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
	}
	// Charging a payment source needs the private key.
	code, _ = call(t, f, http.MethodPost, "/transactions", keys.Public, map[string]any{
		"amount_in_cents": 100, "currency": "COP", "signature": wompi.IntegritySignature("R2", 100, "COP", "", keys.Integrity),
		"customer_email": "a@b.co", "reference": "R2", "payment_method": map[string]any{"installments": 1},
		"payment_source_id": 1, "recurrent": true,
	})
	if code != 401 {
		t.Fatalf("source charge with the public key = %d, want 401", code)
	}
}

func TestReusedReferenceShape(t *testing.T) {
	f, _ := start(t)
	if code, _ := nequi(t, f, "R1", "3991111111"); code != 201 {
		t.Fatal(code)
	}
	code, m := nequi(t, f, "R1", "3991111111")
	e, _ := m["error"].(map[string]any)
	msgs, _ := e["messages"].(map[string]any)
	if code != 422 || e["type"] != "INPUT_VALIDATION_ERROR" || msgs["reference"] == nil {
		t.Fatalf("reused reference = %d %v, want 422 INPUT_VALIDATION_ERROR on reference", code, m)
	}
}

func TestEventsAreSignedAndOneEach(t *testing.T) {
	f, h := start(t)
	code, m := nequi(t, f, "R1", "3991111111")
	if code != 201 || m["data"].(map[string]any)["status"] != "PENDING" {
		t.Fatalf("create = %d %v, want 201 PENDING", code, m)
	}
	f.WaitIdle()
	txs := h.verified(t)
	if len(txs) != 1 || txs[0].Status != wompi.StatusApproved || txs[0].Reference != "R1" || txs[0].AmountInCents != 4490000 {
		t.Fatalf("events %+v", txs)
	}
	evs := f.Events()
	if len(evs) != 1 || len(evs[0].Deliveries) != 1 || evs[0].Deliveries[0] != 200 {
		t.Fatalf("event log %+v, want one delivery answered 200", evs)
	}
	// Resend posts the same bytes again: a replay.
	if err := f.Resend(evs[0].ID); err != nil {
		t.Fatal(err)
	}
	f.WaitIdle()
	got := h.all()
	if len(got) != 2 || !bytes.Equal(got[0].body, got[1].body) || got[0].checksum != got[1].checksum {
		t.Fatalf("resend delivered %d events, want the same body twice", len(got))
	}
}

func TestDeliveryControls(t *testing.T) {
	t.Run("duplicate", func(t *testing.T) {
		f, h := start(t)
		f.Delivery("R1", wompifake.Delivery{Duplicates: 2})
		nequi(t, f, "R1", "3991111111")
		f.WaitIdle()
		got := h.all()
		if len(got) != 3 || !bytes.Equal(got[0].body, got[2].body) || len(f.Events()) != 1 {
			t.Fatalf("got %d posts of %d events, want 3 copies of 1", len(got), len(f.Events()))
		}
	})
	t.Run("drop", func(t *testing.T) {
		f, h := start(t)
		f.DefaultDelivery(wompifake.Delivery{Drop: true})
		nequi(t, f, "R1", "3992222222")
		nequi(t, f, "R2", "3991111111")
		f.WaitIdle()
		evs := f.Events()
		if len(h.all()) != 0 || len(evs) != 2 || !evs[0].Dropped || evs[0].Status != "DECLINED" {
			t.Fatalf("posted %d, log %+v; want nothing posted, both logged as dropped", len(h.all()), evs)
		}
		// A dropped event can still be sent later (Wompi's late retry).
		if err := f.Resend(evs[1].ID); err != nil {
			t.Fatal(err)
		}
		f.WaitIdle()
		if txs := h.verified(t); len(txs) != 1 || txs[0].Reference != "R2" {
			t.Fatalf("resent %+v", txs)
		}
	})
	t.Run("hold and release out of order", func(t *testing.T) {
		f, h := start(t)
		f.DefaultDelivery(wompifake.Delivery{Hold: true})
		nequi(t, f, "R1", "3991111111")
		nequi(t, f, "R2", "3992222222")
		nequi(t, f, "R3", "3993333333")
		f.WaitIdle()
		if len(h.all()) != 0 {
			t.Fatal("held events were posted")
		}
		f.Release(true)
		f.WaitIdle()
		txs := h.verified(t)
		if len(txs) != 3 || txs[0].Reference != "R3" || txs[1].Reference != "R2" || txs[2].Reference != "R1" {
			t.Fatalf("released %+v, want R3, R2, R1", txs)
		}
		if txs[0].Status != wompi.StatusError {
			t.Fatalf("other Nequi number ended %s, want ERROR", txs[0].Status)
		}
	})
	t.Run("stale pending after the final event", func(t *testing.T) {
		f, h := start(t)
		f.Delivery("R1", wompifake.Delivery{StalePending: true})
		nequi(t, f, "R1", "3991111111")
		f.WaitIdle()
		txs := h.verified(t)
		evs := f.Events()
		if len(txs) != 2 || txs[0].Status != wompi.StatusApproved || txs[1].Status != wompi.StatusPending ||
			txs[0].ID != txs[1].ID || evs[1].Timestamp >= evs[0].Timestamp {
			t.Fatalf("got %+v (log %+v), want APPROVED then an older PENDING", txs, evs)
		}
	})
	t.Run("delay", func(t *testing.T) {
		f, h := start(t)
		f.Delivery("R1", wompifake.Delivery{Delay: time.Hour})
		nequi(t, f, "R1", "3991111111")
		if f.Idle() || len(h.all()) != 0 {
			t.Fatal("a delayed event went out at once")
		}
		// Close (cleanup) cancels it; leakcheck proves nothing is left.
	})
	t.Run("outcome overrides and settle", func(t *testing.T) {
		f, h := start(t)
		f.Outcome("R1", wompifake.Decline) // an approving number, told to decline
		f.DefaultOutcome(wompifake.Pending)
		_, m1 := nequi(t, f, "R1", "3991111111")
		_, m2 := nequi(t, f, "R2", "3991111111")
		f.WaitIdle()
		if tx, _ := f.Transaction(txID(t, m1)); tx.Status != "DECLINED" {
			t.Fatalf("R1 %s, want DECLINED", tx.Status)
		}
		id2 := txID(t, m2)
		if tx, _ := f.Transaction(id2); tx.Status != "PENDING" {
			t.Fatalf("R2 %s, want PENDING until settled", tx.Status)
		}
		if err := f.Settle(id2, wompifake.Approve); err != nil {
			t.Fatal(err)
		}
		if err := f.Settle(id2, wompifake.Decline); err == nil {
			t.Fatal("settled a final transaction again")
		}
		f.WaitIdle()
		if txs := h.verified(t); len(txs) != 2 || txs[1].Status != wompi.StatusApproved {
			t.Fatalf("events %+v", txs)
		}
	})
	t.Run("webhook failures are recorded", func(t *testing.T) {
		f, h := start(t)
		h.mu.Lock()
		h.code = http.StatusInternalServerError
		h.mu.Unlock()
		nequi(t, f, "R1", "3991111111")
		f.WaitIdle()
		if evs := f.Events(); len(evs[0].Deliveries) != 1 || evs[0].Deliveries[0] != 500 {
			t.Fatalf("log %+v, want the 500 recorded", evs)
		}
	})
}

func TestCheckoutPage(t *testing.T) {
	f, h := start(t)
	now := time.Now().UTC().Truncate(time.Second)
	f.SetNow(func() time.Time { return now })
	link, err := wompi.CheckoutURL(f.CheckoutURL(), keys.Public, keys.Integrity, wompi.Checkout{
		Reference: "WEB-1", AmountInCents: 12345600, RedirectURL: "https://spa.example/back", ExpiresAt: now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) int {
		resp, err := f.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(link); code != 200 {
		t.Fatalf("page = %d", code)
	}
	if code := get(strings.Replace(link, "amount-in-cents=12345600", "amount-in-cents=100", 1)); code != 400 {
		t.Fatalf("page with an altered amount = %d, want 400 (signature)", code)
	}
	if code := get(strings.Replace(link, "public-key="+keys.Public, "public-key=pub_test_other", 1)); code != 401 {
		t.Fatalf("page with another public key = %d, want 401", code)
	}
	now = now.Add(2 * time.Hour)
	if code := get(link); code != 410 {
		t.Fatalf("expired page = %d, want 410", code)
	}
	now = now.Add(-2 * time.Hour)

	// The decline button, through the helper the e2e tests use.
	tx, err := f.PayCheckout(link, wompifake.Decline)
	if err != nil || tx.Status != "DECLINED" || tx.AmountInCents != 12345600 || tx.Reference != "WEB-1" {
		t.Fatalf("PayCheckout = %+v, %v", tx, err)
	}
	if _, err := f.PayCheckout(link, wompifake.Approve); err == nil {
		t.Fatal("paid a used reference again")
	}
	// Without a button the configured outcome decides.
	link2, _ := wompi.CheckoutURL(f.CheckoutURL(), keys.Public, keys.Integrity, wompi.Checkout{Reference: "WEB-2", AmountInCents: 100})
	f.Outcome("WEB-2", wompifake.Error)
	if tx, err := f.PayCheckout(link2, wompifake.Sandbox); err != nil || tx.Status != "ERROR" {
		t.Fatalf("PayCheckout by outcome = %+v, %v", tx, err)
	}
	f.WaitIdle()
	if txs := h.verified(t); len(txs) != 2 || txs[0].Status != wompi.StatusDeclined {
		t.Fatalf("events %+v", txs)
	}

	// The page's form, posted as a browser would.
	link3, _ := wompi.CheckoutURL(f.CheckoutURL(), keys.Public, keys.Integrity, wompi.Checkout{Reference: "WEB-3", AmountInCents: 100, RedirectURL: "https://spa.example/back"})
	u, _ := url.Parse(link3)
	form := url.Values{}
	for k, v := range u.Query() {
		form.Set(k, v[0])
	}
	form.Set("outcome", "APPROVED")
	hc := &http.Client{Transport: f.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.PostForm(f.CheckoutURL()+"pay", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.HasPrefix(loc, "https://spa.example/back?id=") {
		t.Fatalf("pay = %d %s", resp.StatusCode, loc)
	}
}

func TestServeOnListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := wompifake.Serve(l, keys)
	defer f.Close()
	c, err := wompi.New(wompi.Config{
		PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity, EventsSecret: keys.Events,
		BaseURL: f.BaseURL(), CheckoutURL: f.CheckoutURL(), HTTPClient: &http.Client{Transport: &http.Transport{}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	testwait.Until(t, 5*time.Second, "the fake to answer on its listener", func() error {
		_, err := c.AcceptanceTokens(t.Context())
		return err
	})
	if !strings.HasPrefix(f.BaseURL(), "http://127.0.0.1:") {
		t.Fatalf("BaseURL %s", f.BaseURL())
	}
}
