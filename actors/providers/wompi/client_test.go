package wompi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/testwait"
)

type fixture struct {
	fake   *wompifake.Server
	client *Client
	reg    *prometheus.Registry
	keys   wompifake.Keys
}

func setup(t *testing.T, p resilient.Policy) fixture {
	t.Helper()
	keys := wompifake.DefaultKeys()
	fake := wompifake.New(keys)
	t.Cleanup(fake.Close)
	return setupWith(t, fake, keys, p, fake.Client())
}

func setupWith(t *testing.T, fake *wompifake.Server, keys wompifake.Keys, p resilient.Policy, hc *http.Client) fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := resilient.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = time.Millisecond
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = 5 * time.Millisecond
	}
	c, err := New(Config{
		PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity, EventsSecret: keys.Events,
		BaseURL: fake.BaseURL(), CheckoutURL: fake.CheckoutURL(), HTTPClient: hc, Policy: p,
	}, m)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{fake: fake, client: c, reg: reg, keys: keys}
}

// pay creates a one-off transaction for reference with method.
func (f fixture) pay(t *testing.T, reference string, amount int64, method PaymentMethod) (Transaction, error) {
	t.Helper()
	ctx := context.Background()
	acc, err := f.client.AcceptanceTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f.client.CreateTransaction(ctx, TransactionRequest{
		Reference: reference, AmountInCents: amount, CustomerEmail: "ana@example.co", Method: method,
		AcceptanceToken: acc.Acceptance, AcceptPersonalAuth: acc.PersonalDataAuth,
		RedirectURL: "https://spa.example/pay/done",
	})
}

func (f fixture) cardToken(t *testing.T, number string) string {
	t.Helper()
	tok, err := f.client.TokenizeCard(context.Background(), Card{Number: number, CVC: "123", ExpMonth: "08", ExpYear: "28", CardHolder: "Ana Pérez"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.ID, "tok_test_") || tok.LastFour != number[len(number)-4:] {
		t.Fatalf("token %+v", tok)
	}
	return tok.ID
}

func TestAcceptanceTokens(t *testing.T) {
	f := setup(t, resilient.Policy{})
	acc, err := f.client.AcceptanceTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(acc.Acceptance, "eyJ") || !strings.HasPrefix(acc.PersonalDataAuth, "eyJ") || acc.AcceptancePermalink == "" {
		t.Fatalf("tokens %+v", acc)
	}
	req := f.fake.Requests()[0]
	if req.Path != "/v1/merchants/info" || req.Key != "" {
		t.Fatalf("request %+v, want /merchants/info without a bearer key", req)
	}
}

func TestSandboxOutcomes(t *testing.T) {
	f := setup(t, resilient.Policy{})
	ctx := context.Background()
	for i, tc := range []struct {
		name   string
		method func() PaymentMethod
		want   Status
	}{
		{"card 4242 approved", func() PaymentMethod { return CardPayment(f.cardToken(t, "4242424242424242"), 1) }, StatusApproved},
		{"card 4111 declined", func() PaymentMethod { return CardPayment(f.cardToken(t, "4111111111111111"), 3) }, StatusDeclined},
		{"other card error", func() PaymentMethod { return CardPayment(f.cardToken(t, "5555555555554444"), 1) }, StatusError},
		{"nequi approved", func() PaymentMethod { return NequiPayment("3991111111") }, StatusApproved},
		{"nequi declined", func() PaymentMethod { return NequiPayment("3992222222") }, StatusDeclined},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := fmt.Sprintf("BK-%d", i)
			tx, err := f.pay(t, ref, 4990000, tc.method())
			if err != nil {
				t.Fatal(err)
			}
			if tx.Status != StatusPending || tx.Reference != ref || tx.AmountInCents != 4990000 || tx.Currency != "COP" || tx.ID == "" {
				t.Fatalf("created %+v, want PENDING with our reference and amount", tx)
			}
			got, err := f.client.GetTransaction(ctx, tx.ID)
			if err != nil || got.Status != tc.want {
				t.Fatalf("GetTransaction = %+v, %v; want %s", got, err, tc.want)
			}
			found, err := f.client.FindTransactionsByReference(ctx, ref)
			if err != nil || len(found) != 1 || found[0].ID != tx.ID || found[0].Status != tc.want {
				t.Fatalf("FindTransactionsByReference = %+v, %v", found, err)
			}
		})
	}
	// The integrity signature went with each create and the fake checked it.
	for _, r := range f.fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v1/transactions" && (!strings.Contains(r.Body, `"signature":"`) || r.Key != "public") {
			t.Fatalf("create %+v, want a signature and the public key", r)
		}
		if r.Method == http.MethodGet && strings.HasPrefix(r.Path, "/v1/transactions") && r.Key != "private" {
			t.Fatalf("read %+v, want the private key", r)
		}
	}
	if got := metricValue(t, f.reg, "spa_provider_requests_total", "ok"); got < 10 {
		t.Fatalf("ok requests metric = %v, want every call counted under provider wompi", got)
	}
}

func TestRefusalsAreFinalAndNotRetried(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	ctx := context.Background()
	tok := f.cardToken(t, "4242424242424242")
	if _, err := f.pay(t, "BK-1", 1000, CardPayment(tok, 1)); err != nil {
		t.Fatal(err)
	}

	before := f.fake.RequestCount()
	_, err := f.pay(t, "BK-1", 1000, CardPayment(tok, 1))
	var apiErr *APIError
	if !errors.Is(err, ErrReferenceInUse) || !errors.Is(err, ErrInvalidRequest) || !errors.As(err, &apiErr) || apiErr.Status != 422 || apiErr.Type != "INPUT_VALIDATION_ERROR" {
		t.Fatalf("reused reference = %v, want ErrReferenceInUse from a 422", err)
	}
	if n := f.fake.RequestCount() - before; n != 2 { // acceptance tokens + one create
		t.Fatalf("%d requests, want 2 (a 422 is not retried)", n)
	}

	if _, err := f.client.GetTransaction(ctx, "0-0-00000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown transaction = %v, want ErrNotFound", err)
	}

	// A bad signature (wrong integrity secret) is the provider refusing us.
	f.client.cfg.IntegritySecret = "test_integrity_wrong"
	_, err = f.pay(t, "BK-2", 1000, CardPayment(tok, 1))
	if !errors.Is(err, ErrInvalidRequest) || !errors.As(err, &apiErr) || !apiErr.Field("signature") || errors.Is(err, ErrReferenceInUse) {
		t.Fatalf("bad signature = %v, want ErrInvalidRequest on signature", err)
	}
	if got := metricValue(t, f.reg, "spa_provider_requests_total", "rejected"); got != 3 {
		t.Fatalf("rejected metric = %v, want 3", got)
	}
}

func TestLocalValidationSendsNothing(t *testing.T) {
	f := setup(t, resilient.Policy{})
	ctx := context.Background()
	good := TransactionRequest{Reference: "R", AmountInCents: 100, CustomerEmail: "a@b.co", Method: NequiPayment("3991111111"), AcceptanceToken: "x"}
	for name, mut := range map[string]func(*TransactionRequest){
		"zero amount":     func(r *TransactionRequest) { r.AmountInCents = 0 },
		"negative amount": func(r *TransactionRequest) { r.AmountInCents = -1 },
		"USD":             func(r *TransactionRequest) { r.Currency = "USD" },
		"no reference":    func(r *TransactionRequest) { r.Reference = "" },
		"no email":        func(r *TransactionRequest) { r.CustomerEmail = "" },
		"no acceptance":   func(r *TransactionRequest) { r.AcceptanceToken = "" },
		"bad nequi":       func(r *TransactionRequest) { r.Method = NequiPayment("12") },
		"card no token":   func(r *TransactionRequest) { r.Method = CardPayment("", 1) },
		"method and source": func(r *TransactionRequest) {
			r.PaymentSourceID = 7
		},
	} {
		r := good
		mut(&r)
		if _, err := f.client.CreateTransaction(ctx, r); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	if _, err := f.client.VoidPaymentSource(ctx, 0); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("void source 0: %v", err)
	}
	if n := f.fake.RequestCount(); n != 0 {
		t.Fatalf("%d requests reached Wompi, want 0", n)
	}
}

func TestPaymentSourcesAndRecurringCharge(t *testing.T) {
	f := setup(t, resilient.Policy{})
	ctx := context.Background()
	acc, err := f.client.AcceptanceTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, err := f.client.CreatePaymentSource(ctx, PaymentSourceRequest{
		Type: MethodCard, Token: f.cardToken(t, "4242424242424242"), CustomerEmail: "ana@example.co",
		AcceptanceToken: acc.Acceptance, AcceptPersonalAuth: acc.PersonalDataAuth,
	})
	if err != nil || src.ID <= 0 || src.Status != SourceAvailable || src.Type != MethodCard {
		t.Fatalf("CreatePaymentSource = %+v, %v", src, err)
	}
	charge := TransactionRequest{Reference: "SUB-1", AmountInCents: 12000000, CustomerEmail: "ana@example.co", PaymentSourceID: src.ID}
	tx, err := f.client.CreateTransaction(ctx, charge)
	if err != nil || tx.PaymentSourceID != src.ID {
		t.Fatalf("recurring charge = %+v, %v", tx, err)
	}
	if got, _ := f.client.GetTransaction(ctx, tx.ID); got.Status != StatusApproved {
		t.Fatalf("recurring charge ended %s, want APPROVED", got.Status)
	}
	var create wompifake.Request
	for _, r := range f.fake.Requests() {
		if r.Path == "/v1/transactions" && r.Method == http.MethodPost {
			create = r
		}
	}
	if create.Key != "private" || !strings.Contains(create.Body, `"recurrent":true`) || !strings.Contains(create.Body, `"payment_source_id":`+fmt.Sprint(src.ID)) {
		t.Fatalf("recurring create %+v, want the private key, recurrent and the source id", create)
	}

	voided, err := f.client.VoidPaymentSource(ctx, src.ID)
	if err != nil || voided.Status != SourceVoided {
		t.Fatalf("VoidPaymentSource = %+v, %v", voided, err)
	}
	charge.Reference = "SUB-2"
	if _, err := f.client.CreateTransaction(ctx, charge); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("charging a voided source = %v, want ErrInvalidRequest", err)
	}
	if _, err := f.client.VoidPaymentSource(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("voiding an unknown source = %v, want ErrNotFound", err)
	}
}

func TestVoidTransaction(t *testing.T) {
	f := setup(t, resilient.Policy{})
	ctx := context.Background()
	card, err := f.pay(t, "BK-CARD", 5000000, CardPayment(f.cardToken(t, "4242424242424242"), 1))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := f.client.VoidTransaction(ctx, card.ID)
	if err != nil || tx.Status != StatusVoided || tx.ID != card.ID {
		t.Fatalf("VoidTransaction = %+v, %v; want VOIDED", tx, err)
	}
	// Twice: no longer APPROVED.
	if _, err := f.client.VoidTransaction(ctx, card.ID); !errors.Is(err, ErrNotVoidable) || !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("second void = %v, want ErrNotVoidable", err)
	}
	nequi, err := f.pay(t, "BK-NEQUI", 5000000, NequiPayment("3991111111"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.VoidTransaction(ctx, nequi.ID); !errors.Is(err, ErrNotVoidable) {
		t.Fatalf("voiding Nequi = %v, want ErrNotVoidable (refund as credit)", err)
	}
	declined, err := f.pay(t, "BK-DECL", 5000000, CardPayment(f.cardToken(t, "4111111111111111"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.VoidTransaction(ctx, declined.ID); !errors.Is(err, ErrNotVoidable) {
		t.Fatalf("voiding a declined card = %v, want ErrNotVoidable", err)
	}
	if _, err := f.client.VoidTransaction(ctx, "0-0-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("voiding an unknown transaction = %v, want ErrNotFound", err)
	}
}

func TestWrongKeyIsAuthAndNotRetried(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	f.client.cfg.PrivateKey = "prv_test_notours"
	_, err := f.client.GetTransaction(context.Background(), "x")
	if !errors.Is(err, ErrAuth) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetTransaction with a wrong key = %v, want ErrAuth (unavailable)", err)
	}
	if f.fake.RequestCount() != 1 {
		t.Fatalf("%d requests, want 1", f.fake.RequestCount())
	}
	if strings.Contains(err.Error(), "notours") {
		t.Fatalf("error %q leaks the key", err)
	}
	if f.client.BreakerState() != "closed" {
		t.Fatal("a refused key tripped the breaker")
	}
}

func TestRetriesServerErrorsThenSucceeds(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 3})
	tok := f.cardToken(t, "4242424242424242")
	before := f.fake.RequestCount()
	f.fake.Faults.Next(fakefault.Fault{Status: 500, Body: `{"error":{"type":"INTERNAL"}}`}, fakefault.Fault{Status: 503, RetryAfter: "0"})
	acc, err := f.client.AcceptanceTokens(context.Background())
	if err != nil {
		t.Fatalf("AcceptanceTokens = %v, want success on the 3rd try", err)
	}
	tx, err := f.client.CreateTransaction(context.Background(), TransactionRequest{
		Reference: "BK-R", AmountInCents: 100, CustomerEmail: "a@b.co", Method: CardPayment(tok, 1),
		AcceptanceToken: acc.Acceptance, AcceptPersonalAuth: acc.PersonalDataAuth,
	})
	if err != nil || tx.ID == "" {
		t.Fatal(err)
	}
	if n := f.fake.RequestCount() - before; n != 4 {
		t.Fatalf("%d requests, want 4 (two failures, two successes)", n)
	}
	if got := metricValue(t, f.reg, "spa_provider_retries_total", ""); got != 2 {
		t.Fatalf("retries metric = %v, want 2", got)
	}
}

// loseReplies lets requests reach the server but loses the first n replies
// to POST /v1/transactions and /void, as a timeout after Wompi did the work.
type loseReplies struct {
	mu   sync.Mutex
	n    int
	base http.RoundTripper
}

func (l *loseReplies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || !(r.URL.Path == "/v1/transactions" || strings.HasSuffix(r.URL.Path, "/void")) {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		l.n--
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("connection reset after the request was sent")
	}
	return resp, nil
}

func TestRetryAfterLostReplyFindsTheCreatedTransaction(t *testing.T) {
	keys := wompifake.DefaultKeys()
	fake := wompifake.New(keys)
	t.Cleanup(fake.Close)
	lose := &loseReplies{base: fake.Client().Transport}
	f := setupWith(t, fake, keys, resilient.Policy{Attempts: 3}, &http.Client{Transport: lose})
	tok := f.cardToken(t, "4242424242424242")
	lose.n = 1
	tx, err := f.pay(t, "BK-LOST", 4990000, CardPayment(tok, 1))
	if err != nil {
		t.Fatalf("create after a lost reply = %v, want the transaction the first try created", err)
	}
	if all := fake.Transactions(); len(all) != 1 || all[0].ID != tx.ID {
		t.Fatalf("fake has %+v, want exactly the one transaction returned (%s)", all, tx.ID)
	}

	lose.n = 1
	voided, err := f.client.VoidTransaction(context.Background(), tx.ID)
	if err != nil || voided.Status != StatusVoided {
		t.Fatalf("void after a lost reply = %+v, %v; want VOIDED", voided, err)
	}
}

func TestTimeoutIsRetriedThenUnavailable(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 2, AttemptTimeout: 50 * time.Millisecond})
	f.fake.Faults.Always(fakefault.Fault{Hang: true})
	_, err := f.client.GetTransaction(context.Background(), "x")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("GetTransaction on a hanging Wompi = %v, want ErrUnavailable", err)
	}
	if f.fake.RequestCount() != 2 {
		t.Fatalf("%d requests, want 2 (a timeout is retried)", f.fake.RequestCount())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.client.GetTransaction(ctx, "x"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled = %v, want ErrUnavailable wrapping Canceled", err)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	f := setup(t, resilient.Policy{Attempts: 1, FailuresToOpen: 3, OpenFor: 40 * time.Millisecond})
	ctx := context.Background()
	f.fake.Faults.Always(fakefault.Fault{Status: 502})
	for range 3 {
		if _, err := f.client.AcceptanceTokens(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("AcceptanceTokens = %v, want ErrUnavailable", err)
		}
	}
	before := f.fake.RequestCount()
	_, err := f.client.GetTransaction(ctx, "x")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, resilient.ErrOpen) {
		t.Fatalf("call with the breaker open = %v, want ErrUnavailable wrapping ErrOpen", err)
	}
	if f.fake.RequestCount() != before {
		t.Fatal("an open breaker still called Wompi")
	}
	if got := metricValue(t, f.reg, "spa_provider_breaker_state", ""); got != 2 {
		t.Fatalf("breaker state gauge = %v, want 2 (open)", got)
	}
	if got := metricValue(t, f.reg, "spa_provider_requests_total", "breaker_open"); got != 1 {
		t.Fatalf("breaker_open count = %v, want 1", got)
	}
	f.fake.Faults.Clear()
	testwait.Until(t, 5*time.Second, "the breaker to half-open", func() error {
		if s := f.client.BreakerState(); s != "half-open" {
			return fmt.Errorf("breaker %s", s)
		}
		return nil
	})
	if _, err := f.client.AcceptanceTokens(ctx); err != nil {
		t.Fatalf("probe = %v", err)
	}
	if f.client.BreakerState() != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", f.client.BreakerState())
	}
}

// webhook collects events the fake posts, verified with the client.
type webhook struct {
	mu     sync.Mutex
	events []Event
	errs   []error
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request, c *Client) {
	body, _ := io.ReadAll(r.Body)
	ev, err := c.VerifyEvent(body, r.Header.Get(ChecksumHeader), time.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.errs = append(h.errs, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.events = append(h.events, ev)
}

func (h *webhook) snapshot() ([]Event, []error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...), append([]error(nil), h.errs...)
}

func TestCheckoutEndToEnd(t *testing.T) {
	f := setup(t, resilient.Policy{})
	hook := &webhook{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hook.ServeHTTP(w, r, f.client) }))
	t.Cleanup(hs.Close)
	f.fake.SetWebhook(hs.URL)

	link, err := f.client.CheckoutURL(Checkout{
		Reference: "BK-WEB", AmountInCents: 4990000, RedirectURL: "https://spa.example/pay/done?b=7",
		ExpiresAt: time.Now().Add(time.Hour), CustomerEmail: "ana@example.co",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, f.fake.CheckoutURL()+"?") {
		t.Fatalf("link %s is not on the fake's checkout page", link)
	}
	hc := f.fake.Client()
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "$ 49.900,00 COP") || !strings.Contains(string(page), `id="approve"`) || !strings.Contains(string(page), `id="decline"`) {
		t.Fatalf("page %d:\n%s", resp.StatusCode, page)
	}

	// Press "approve": the page's form posts its hidden fields and the button.
	form := url.Values{}
	u, _ := url.Parse(link)
	for k, v := range u.Query() {
		form.Set(k, v[0])
	}
	form.Set("outcome", "APPROVED")
	noFollow := &http.Client{Transport: hc.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.PostForm(f.fake.CheckoutURL()+"pay", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Host != "spa.example" || loc.Query().Get("b") != "7" || loc.Query().Get("id") == "" {
		t.Fatalf("pay answered %d Location %s, want 303 to redirect-url with id", resp.StatusCode, loc)
	}
	id := loc.Query().Get("id")
	tx, err := f.client.GetTransaction(context.Background(), id)
	if err != nil || tx.Status != StatusApproved || tx.Reference != "BK-WEB" || tx.AmountInCents != 4990000 {
		t.Fatalf("paid transaction = %+v, %v", tx, err)
	}
	testwait.Until(t, 5*time.Second, "the signed event", func() error {
		if evs, errs := hook.snapshot(); len(evs) != 1 || len(errs) != 0 {
			return fmt.Errorf("events %d, refused %v", len(evs), errs)
		}
		return nil
	})
	evs, _ := hook.snapshot()
	if ev := evs[0].Transaction; ev.ID != id || ev.Status != StatusApproved || ev.AmountInCents != 4990000 {
		t.Fatalf("event transaction %+v", ev)
	}

	// The same link again: reference used.
	form.Set("outcome", "DECLINED")
	resp, err = noFollow.PostForm(f.fake.CheckoutURL()+"pay", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("paying a used reference answered %d, want 409", resp.StatusCode)
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, ok, err := FromEnv(env(nil)); ok || err != nil {
		t.Fatalf("empty env: ok=%v err=%v, want not configured", ok, err)
	}
	sandbox := map[string]string{
		EnvPublicKey: "pub_test_a", EnvPrivateKey: "prv_test_secretprivate", EnvIntegritySecret: "test_integrity_secretint", EnvEventsSecret: "test_events_secretev",
	}
	cfg, ok, err := FromEnv(env(sandbox))
	if !ok || err != nil {
		t.Fatalf("sandbox env: %v", err)
	}
	c, err := New(cfg, nil)
	if err != nil || c.Environment() != Sandbox || c.cfg.BaseURL != SandboxBaseURL || c.cfg.CheckoutURL != DefaultCheckoutURL {
		t.Fatalf("client %+v, %v", c, err)
	}
	for _, s := range []string{cfg.LogValue().String(), c.LogValue().String()} {
		for _, secret := range []string{"secretprivate", "secretint", "secretev"} {
			if strings.Contains(s, secret) {
				t.Fatalf("LogValue %q leaks a key", s)
			}
		}
	}
	prod := map[string]string{
		EnvPublicKey: "pub_prod_a", EnvPrivateKey: "prv_prod_b", EnvIntegritySecret: "prod_integrity_c", EnvEventsSecret: "prod_events_d",
	}
	cfg, _, _ = FromEnv(env(prod))
	if c, err := New(cfg, nil); err != nil || c.Environment() != Production || c.cfg.BaseURL != ProductionBaseURL {
		t.Fatalf("production: %v", err)
	}

	for name, tc := range map[string]struct {
		mut  func(map[string]string)
		want string
	}{
		"missing private key":  {func(m map[string]string) { delete(m, EnvPrivateKey) }, EnvPrivateKey},
		"bad prefix":           {func(m map[string]string) { m[EnvPublicKey] = "pk_live_x" }, EnvPublicKey},
		"bare prefix":          {func(m map[string]string) { m[EnvEventsSecret] = "test_events_" }, EnvEventsSecret},
		"mixed environments":   {func(m map[string]string) { m[EnvEventsSecret] = "prod_events_x" }, EnvEventsSecret},
		"explicit env differs": {func(m map[string]string) { m[EnvEnvironment] = "production" }, EnvEnvironment},
		"unknown env":          {func(m map[string]string) { m[EnvEnvironment] = "staging" }, EnvEnvironment},
		"bad base URL":         {func(m map[string]string) { m[EnvBaseURL] = "sandbox.wompi.co" }, EnvBaseURL},
	} {
		m := map[string]string{}
		for k, v := range sandbox {
			m[k] = v
		}
		tc.mut(m)
		if _, _, err := FromEnv(env(m)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
}

// metricValue sums the series name for provider wompi (and outcome, if given).
func metricValue(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] != Provider || (outcome != "" && labels["outcome"] != outcome) {
				continue
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
