package payments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/leakcheck"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var (
	keys  = wompifake.DefaultKeys()
	ana   = servicetest.As(auth.RoleClient, "ana")
	bob   = servicetest.As(auth.RoleClient, "bob")
	admin = servicetest.As(auth.RoleAdmin, "boss")
)

// Prices of the stocked variant "oil": 45,000.00 COP plus 19% tax.
const (
	oilPrice = 4_500_000
	oilTotal = 5_355_000
)

type fixture struct {
	harness
	store  *failingStore
	svc    *Service
	offset atomic.Int64 // added to the service's clock
	hooks  atomic.Int64 // webhook calls answered
	down   atomic.Bool  // Wompi's API does not answer (outageProvider)
}

// outageProvider is the Wompi client, except that while down is set the
// calls that reach Wompi's API for saved sources fail as an outage does
// (the client's own breaker and retries are tested in package wompi).
type outageProvider struct {
	*wompi.Client
	down *atomic.Bool
}

func (p outageProvider) outage() error {
	if p.down.Load() {
		return fmt.Errorf("%w: connection refused", wompi.ErrUnavailable)
	}
	return nil
}

func (p outageProvider) CreatePaymentSource(ctx context.Context, r wompi.PaymentSourceRequest) (wompi.PaymentSource, error) {
	if err := p.outage(); err != nil {
		return wompi.PaymentSource{}, err
	}
	return p.Client.CreatePaymentSource(ctx, r)
}

func (p outageProvider) VoidPaymentSource(ctx context.Context, id int64) (wompi.PaymentSource, error) {
	if err := p.outage(); err != nil {
		return wompi.PaymentSource{}, err
	}
	return p.Client.VoidPaymentSource(ctx, id)
}

func (p outageProvider) CreateTransaction(ctx context.Context, r wompi.TransactionRequest) (wompi.Transaction, error) {
	if err := p.outage(); err != nil {
		return wompi.Transaction{}, err
	}
	return p.Client.CreateTransaction(ctx, r)
}

// harness is what the order and deposit fixtures share: the test, the
// store read through (past any fault injected), and the fake Wompi.
type harness struct {
	t    *testing.T
	db   persistence.Store
	fake *wompifake.Server
}

func (h *harness) must(fn func(ctx context.Context, tx persistence.Tx) error) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.db.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) }); err != nil {
		h.t.Fatal(err)
	}
}

// checkout pays the link on the fake's page and waits for its events.
func (h *harness) checkout(co Checkout, outcome wompifake.Outcome) wompifake.Transaction {
	h.t.Helper()
	tx, err := h.fake.PayCheckout(co.URL, outcome)
	if err != nil {
		h.t.Fatalf("PayCheckout: %v", err)
	}
	h.fake.WaitIdle()
	return tx
}

func (h *harness) intent(id string) persistence.PaymentIntent {
	h.t.Helper()
	var p persistence.PaymentIntent
	h.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		p, err = tx.PaymentIntentGet(ctx, id)
		return err
	})
	return p
}

// failingStore fails the ledger post of every transaction while failing
// is set: the intent and the order have been written in that transaction
// by then, so it fails an apply midway.
type failingStore struct {
	persistence.Store
	failing atomic.Bool
}

var errInjected = errors.New("injected store failure")

func (s *failingStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	return s.Store.InTx(ctx, func(tx persistence.Tx) error { return fn(failingTx{tx, s}) })
}

type failingTx struct {
	persistence.Tx
	s *failingStore
}

func (t failingTx) PaymentLedgerPost(ctx context.Context, m persistence.LedgerMovement) error {
	if t.s.failing.Load() {
		return errInjected
	}
	return t.Tx.PaymentLedgerPost(ctx, m)
}

// run runs fn against SQLite, and PostgreSQL when TEST_DATABASE_URL is set:
// a store with 10 units of "oil", a fake Wompi posting its events to a
// webhook that calls Service.Event as the gateway does.
func run(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			f := &fixture{harness: harness{t: t}, store: &failingStore{Store: d.Open(t)}}
			f.db = f.store.Store
			inventorytest.Stock(t, f.store, "oil", 10, oilPrice, 4_000_000, 0)
			f.fake = wompifake.New(keys)
			t.Cleanup(f.fake.Close)
			client, err := wompi.New(wompi.Config{PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity,
				EventsSecret: keys.Events, BaseURL: f.fake.BaseURL(), CheckoutURL: f.fake.CheckoutURL()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(client.CloseIdleConnections)
			f.svc = New(Deps{Store: f.store, Wompi: outageProvider{client, &f.down}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Now: func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }})
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer f.hooks.Add(1)
				body, _ := io.ReadAll(r.Body)
				w.WriteHeader(f.post(body, r.Header.Get(wompi.ChecksumHeader)))
			}))
			t.Cleanup(hook.Close)
			f.fake.SetWebhook(hook.URL)
			fn(t, f)
			f.fake.WaitIdle()
			f.balanced()
		})
	}
}

// post hands an event to the service and answers as the gateway does.
func (f *fixture) post(body []byte, checksum string) int {
	_, err := f.svc.Event(context.Background(), body, checksum, "req-hook")
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrForged):
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

// order creates a pending_payment order of one unit of oil for client,
// expiring in 30 minutes.
func (f *fixture) order(client string) persistence.Order {
	f.t.Helper()
	id := ulid.Make().String()
	now := time.Now().UTC()
	o := persistence.Order{ID: id, ClientID: client, CartID: "cart-" + id, Status: persistence.OrderPendingPayment,
		Fulfilment: persistence.FulfilmentPickup, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		r := persistence.Reservation{ID: id + "-res", CartID: o.CartID, VariantID: "oil", Qty: 1, ExpiresAt: now.Add(time.Hour)}
		if err := tx.ReservationPut(ctx, r, "cart", now); err != nil {
			return err
		}
		if _, err := tx.ReservationConsume(ctx, r.ID, id, "checkout", now); err != nil {
			return err
		}
		o.Lines = []persistence.OrderLine{{ID: id + "-oil", VariantID: "oil", SKU: "SKU-oil", Name: "oil", Qty: 1,
			UnitPriceMinor: oilPrice, TaxRateBps: 1900, ReservationID: r.ID}}
		if err := o.ComputeTotals(); err != nil {
			return err
		}
		return tx.OrderCreate(ctx, o)
	})
	return o
}

func (f *fixture) pay(by service.Caller, orderID string) (Checkout, bool, error) {
	var co Checkout
	var created bool
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		co, created, err = f.svc.PayOrder(context.Background(), tx, by, orderID)
		return err
	})
	return co, created, err
}

func (f *fixture) mustPay(by service.Caller, orderID string) Checkout {
	f.t.Helper()
	co, _, err := f.pay(by, orderID)
	if err != nil {
		f.t.Fatalf("PayOrder: %v", err)
	}
	return co
}

func (f *fixture) orderStatus(id string) persistence.OrderStatus {
	f.t.Helper()
	var o persistence.Order
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		o, err = tx.OrderGet(ctx, id)
		return err
	})
	return o.Status
}

func (f *fixture) entries(intentID string) []persistence.LedgerEntry {
	f.t.Helper()
	var es []persistence.LedgerEntry
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		es, err = tx.PaymentLedgerEntries(ctx, intentID)
		return err
	})
	return es
}

// exceptions lists every exception, optionally of one class.
func (f *fixture) exceptions(class persistence.ExceptionClass) []persistence.PaymentException {
	f.t.Helper()
	var xs []persistence.PaymentException
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		xs, err = tx.PaymentExceptionList(ctx, persistence.ExceptionListParams{Class: class, Limit: 100})
		return err
	})
	return xs
}

// audits counts audit entries of action on subject.
func (f *fixture) audits(action, subject string) int {
	f.t.Helper()
	var n int
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		es, err := tx.AuditList(ctx, persistence.AuditListParams{Subject: subject, Limit: 100})
		for _, e := range es {
			if e.Action == action {
				n++
			}
		}
		return err
	})
	return n
}

// balanced checks the journal: every account's balance sums to zero, and
// what Wompi holds equals what orders and suspense were credited.
func (f *fixture) balanced() {
	f.t.Helper()
	var bal map[string]int64
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		bal, err = tx.PaymentLedgerBalances(ctx)
		return err
	})
	var sum int64
	for _, v := range bal {
		sum += v
	}
	if sum != 0 {
		f.t.Fatalf("ledger does not sum to zero: %v", bal)
	}
}

// event is a transaction.updated event signed as Wompi signs, with the
// given events secret and timestamp.
func event(secret, id, status string, amount int64, reference string, ts int64) (body []byte, checksum string) {
	sum := sha256.Sum256([]byte(id + status + strconv.FormatInt(amount, 10) + strconv.FormatInt(ts, 10) + secret))
	checksum = hex.EncodeToString(sum[:])
	body = fmt.Appendf(nil, `{"event":"transaction.updated","data":{"transaction":{"id":%q,"amount_in_cents":%d,"reference":%q,`+
		`"customer_email":"pagador@example.com","currency":"COP","payment_method_type":"CARD","status":%q}},`+
		`"environment":"test","signature":{"properties":["transaction.id","transaction.status","transaction.amount_in_cents"],`+
		`"checksum":%q},"timestamp":%d,"sent_at":"2026-01-01T00:00:00.000Z"}`, id, amount, reference, status, checksum, ts)
	return body, checksum
}

// ---- Tests ----

func TestOrderPaidThroughCheckoutAndWebhook(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co, created, err := f.pay(ana, o.ID)
		if err != nil || !created || co.Intent.AmountMinor != oilTotal || co.Intent.Status != persistence.IntentPending {
			t.Fatalf("PayOrder: %+v %v %v", co.Intent, created, err)
		}
		again, created, err := f.pay(ana, o.ID)
		if err != nil || created || again.Intent.ID != co.Intent.ID || again.URL != co.URL {
			t.Fatalf("second PayOrder is not the same intent: %+v %v %v", again.Intent, created, err)
		}
		if _, _, err := f.pay(bob, o.ID); servicetest.Code(err) != "not_found" {
			t.Fatalf("another client's order: %v", err)
		}

		tx := f.checkout(co, wompifake.Approve)
		if got := f.orderStatus(o.ID); got != persistence.OrderPaid {
			t.Fatalf("order %s after approval, want paid", got)
		}
		in := f.intent(co.Intent.ID)
		if in.Status != persistence.IntentApproved || in.TransactionID != tx.ID {
			t.Fatalf("intent after approval: %+v", in)
		}
		es := f.entries(in.ID)
		if len(es) != 2 || es[0].Account != persistence.AccountWompi || es[0].AmountMinor != oilTotal ||
			es[1].Account != persistence.AccountOrders || es[1].AmountMinor != -oilTotal {
			t.Fatalf("ledger: %+v", es)
		}
		if f.audits("payment.approved", "payment/"+in.ID) != 1 || f.audits("order.paid", "order/"+o.ID) != 1 {
			t.Fatal("want one audit entry for the payment and one for the order")
		}
		if xs := f.exceptions(""); len(xs) != 0 {
			t.Fatalf("exceptions: %+v", xs)
		}
		if _, _, err := f.pay(ana, o.ID); servicetest.Code(err) != "order_transition_refused" {
			t.Fatalf("paying a paid order: %v", err)
		}
	})
}

func TestDeclineLeavesOrderPendingAndAllowsANewPayment(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		first := f.mustPay(ana, o.ID)
		f.checkout(first, wompifake.Decline)
		if in := f.intent(first.Intent.ID); in.Status != persistence.IntentDeclined {
			t.Fatalf("intent after decline: %+v", in)
		}
		if got := f.orderStatus(o.ID); got != persistence.OrderPendingPayment {
			t.Fatalf("order %s after a decline, want pending_payment (it expires and restocks as before)", got)
		}
		second, created, err := f.pay(ana, o.ID)
		if err != nil || !created || second.Intent.ID == first.Intent.ID {
			t.Fatalf("a new intent after a decline: %+v %v %v", second.Intent, created, err)
		}
		f.checkout(second, wompifake.Approve)
		if got := f.orderStatus(o.ID); got != persistence.OrderPaid {
			t.Fatalf("order %s, want paid", got)
		}
		if len(f.entries(first.Intent.ID)) != 0 {
			t.Fatal("a declined intent moved money")
		}
	})
}

// TestForgedEventsChangeNothing: a wrong secret, a tampered body, a
// missing header, a stale or future timestamp: 401, nothing stored,
// nothing applied.
func TestForgedEventsChangeNothing(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		f.fake.Delivery(co.Intent.ID, wompifake.Delivery{Drop: true})
		tx := f.checkout(co, wompifake.Approve) // approved at Wompi; its event never came
		now := time.Now().Unix()
		good, sum := event(keys.Events, tx.ID, "APPROVED", oilTotal, co.Intent.ID, now)
		wrong, wrongSum := event("test_events_someoneElse", tx.ID, "APPROVED", oilTotal, co.Intent.ID, now)
		stale, staleSum := event(keys.Events, tx.ID, "APPROVED", oilTotal, co.Intent.ID, now-26*3600)
		future, futureSum := event(keys.Events, tx.ID, "APPROVED", oilTotal, co.Intent.ID, now+3600)
		tampered := []byte(replaceOnce(string(good), `"status":"APPROVED"`, `"status":"DECLINED"`))
		amount, _ := event(keys.Events, tx.ID, "APPROVED", oilTotal, co.Intent.ID, now)
		amount = []byte(replaceOnce(string(amount), strconv.Itoa(oilTotal), strconv.Itoa(oilTotal+1)))
		for _, c := range []struct {
			name, sum string
			body      []byte
		}{
			{"wrong secret", wrongSum, wrong},
			{"missing header", "", good},
			{"header of another event", wrongSum, good},
			{"stale", staleSum, stale},
			{"future", futureSum, future},
			{"amount changed", sum, amount},
			{"trailing data", sum, append(append([]byte(nil), good...), "{}"...)},
			{"status changed", sum, tampered},
			{"empty", sum, nil},
		} {
			if code := f.post(c.body, c.sum); code != http.StatusUnauthorized {
				t.Fatalf("%s: %d, want 401", c.name, code)
			}
		}
		var stored []persistence.PaymentEvent
		f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
			stored, err = tx.PaymentEventListUnapplied(ctx, ProviderWompi, time.Now().Add(time.Hour), 100)
			return err
		})
		if len(stored) != 0 {
			t.Fatalf("forged events stored: %d", len(stored))
		}
		if in := f.intent(co.Intent.ID); in.Status != persistence.IntentPending || f.orderStatus(o.ID) != persistence.OrderPendingPayment {
			t.Fatalf("a forged event changed state: %+v", in)
		}
		// The authentic one applies.
		if code := f.post(good, sum); code != http.StatusOK || f.orderStatus(o.ID) != persistence.OrderPaid {
			t.Fatalf("authentic event: %d, order %s", code, f.orderStatus(o.ID))
		}
	})
}

func replaceOnce(s, old, repl string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + repl + s[i+len(old):]
		}
	}
	return s
}

// TestReplayedEventAppliesOnce: Wompi's duplicates and a replay later:
// 200 each time, one change, one movement, one audit entry.
func TestReplayedEventAppliesOnce(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		f.fake.Delivery(co.Intent.ID, wompifake.Delivery{Duplicates: 3})
		f.checkout(co, wompifake.Approve)
		evs := f.fake.Events()
		if len(evs) != 1 {
			t.Fatalf("events: %d", len(evs))
		}
		if err := f.fake.Resend(evs[0].ID); err != nil {
			t.Fatal(err)
		}
		f.fake.WaitIdle()
		for _, e := range f.fake.Events() {
			for _, code := range e.Deliveries {
				if code != http.StatusOK {
					t.Fatalf("deliveries %v, want 200 each", e.Deliveries)
				}
			}
			if len(e.Deliveries) != 5 {
				t.Fatalf("deliveries %v, want 5", e.Deliveries)
			}
		}
		if len(f.entries(co.Intent.ID)) != 2 || f.audits("payment.approved", "payment/"+co.Intent.ID) != 1 ||
			f.audits("order.paid", "order/"+o.ID) != 1 {
			t.Fatal("a replay was applied twice")
		}
		if in := f.intent(co.Intent.ID); in.Version != 2 {
			t.Fatalf("intent version %d, want 2", in.Version)
		}
	})
}

func TestUnknownReferenceIsAnOrphan(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		// A transaction Wompi knows for a reference we never issued.
		client, _ := wompi.New(wompi.Config{PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity,
			EventsSecret: keys.Events, BaseURL: f.fake.BaseURL(), CheckoutURL: f.fake.CheckoutURL()}, nil)
		defer client.CloseIdleConnections()
		link, err := client.CheckoutURL(wompi.Checkout{Reference: "not-ours-1", AmountInCents: 1000})
		if err != nil {
			t.Fatal(err)
		}
		f.checkout(Checkout{URL: link}, wompifake.Approve)
		// And an authentic event for a transaction Wompi does not know.
		body, sum := event(keys.Events, "999-unknown", "APPROVED", 1000, "not-ours-2", time.Now().Unix())
		if code := f.post(body, sum); code != http.StatusOK {
			t.Fatalf("unknown transaction: %d, want 200", code)
		}
		xs := f.exceptions(persistence.ExceptionOrphan)
		if len(xs) != 2 || xs[0].State != persistence.ExceptionOpen {
			t.Fatalf("orphans: %+v", xs)
		}
		for _, e := range f.fake.Events() {
			if e.Deliveries[0] != http.StatusOK {
				t.Fatalf("orphan event answered %v", e.Deliveries)
			}
		}
	})
}

// TestAmountMismatchIsNotApplied: a payment of the intent's reference for
// another amount (or currency) leaves everything as it was.
func TestAmountMismatchIsNotApplied(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		client, _ := wompi.New(wompi.Config{PublicKey: keys.Public, PrivateKey: keys.Private, IntegritySecret: keys.Integrity,
			EventsSecret: keys.Events, BaseURL: f.fake.BaseURL(), CheckoutURL: f.fake.CheckoutURL()}, nil)
		defer client.CloseIdleConnections()
		link, _ := client.CheckoutURL(wompi.Checkout{Reference: co.Intent.ID, AmountInCents: 100})
		f.checkout(Checkout{URL: link}, wompifake.Approve)
		if f.orderStatus(o.ID) != persistence.OrderPendingPayment || f.intent(co.Intent.ID).Status != persistence.IntentPending {
			t.Fatal("a payment of another amount was applied")
		}
		if xs := f.exceptions(persistence.ExceptionAmountMismatch); len(xs) != 1 || xs[0].IntentID != co.Intent.ID {
			t.Fatalf("exceptions: %+v", xs)
		}
		// The same through reconciliation: still one exception.
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if xs := f.exceptions(persistence.ExceptionAmountMismatch); len(xs) != 1 || len(f.entries(co.Intent.ID)) != 0 {
			t.Fatalf("after reconciliation: %+v", xs)
		}
		// Currency: another currency of the right amount is refused too.
		out, err := f.svc.Apply(context.Background(), Observation{Source: SourceReconcile, Tx: wompi.Transaction{ID: "usd-1",
			Reference: co.Intent.ID, AmountInCents: oilTotal, Currency: "USD", Status: wompi.StatusApproved}})
		if err != nil || out != OutcomeAmountMismatch || f.orderStatus(o.ID) != persistence.OrderPendingPayment {
			t.Fatalf("other currency: %s %v", out, err)
		}
	})
}

// TestDuplicateApprovalGoesToSuspense: a second approved transaction of
// one reference does not pay twice: its money waits in suspense with an
// exception, once however often it is seen.
func TestDuplicateApprovalGoesToSuspense(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		first := f.checkout(co, wompifake.Approve)
		second := wompi.Transaction{ID: first.ID + "-bis", Reference: co.Intent.ID, AmountInCents: oilTotal, Currency: "COP",
			Status: wompi.StatusApproved}
		for range 3 {
			out, err := f.svc.Apply(context.Background(), Observation{Tx: second, Source: SourceReconcile})
			if err != nil || out != OutcomeDuplicateApproval {
				t.Fatalf("second approval: %s %v", out, err)
			}
		}
		in := f.intent(co.Intent.ID)
		if in.TransactionID != first.ID || in.Version != 2 {
			t.Fatalf("intent moved: %+v", in)
		}
		xs := f.exceptions(persistence.ExceptionDuplicateApproval)
		if len(xs) != 1 || xs[0].TransactionID != second.ID {
			t.Fatalf("exceptions: %+v", xs)
		}
		var bal map[string]int64
		f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
			bal, err = tx.PaymentLedgerBalances(ctx)
			return err
		})
		if bal[persistence.AccountWompi] != 2*oilTotal || bal[persistence.AccountOrders] != -oilTotal || bal[persistence.AccountSuspense] != -oilTotal {
			t.Fatalf("balances: %v", bal)
		}
	})
}

// TestOutOfOrderNeverGoesBack: a late PENDING and a DECLINED after the
// APPROVED change nothing; the contradiction is an exception.
func TestOutOfOrderNeverGoesBack(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		f.fake.Delivery(co.Intent.ID, wompifake.Delivery{StalePending: true})
		tx := f.checkout(co, wompifake.Approve)
		if f.orderStatus(o.ID) != persistence.OrderPaid {
			t.Fatal("not paid")
		}
		body, sum := event(keys.Events, tx.ID, "DECLINED", oilTotal, co.Intent.ID, time.Now().Unix())
		if code := f.post(body, sum); code != http.StatusOK {
			t.Fatalf("DECLINED after APPROVED: %d, want 200", code)
		}
		in := f.intent(co.Intent.ID)
		if in.Status != persistence.IntentApproved || in.Version != 2 || f.orderStatus(o.ID) != persistence.OrderPaid {
			t.Fatalf("went back: %+v", in)
		}
		if xs := f.exceptions(persistence.ExceptionStatusMismatch); len(xs) != 1 {
			t.Fatalf("exceptions: %+v", xs)
		}
		if len(f.entries(in.ID)) != 2 {
			t.Fatal("ledger changed")
		}
	})
}

// TestStoreFailingMidApply: the event is stored, the apply fails after the
// intent and the order were written in its transaction: nothing of it
// stays; Wompi's redelivery applies it, once.
func TestStoreFailingMidApply(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		f.store.failing.Store(true)
		f.checkout(co, wompifake.Approve)
		if d := f.fake.Events()[0].Deliveries; d[0] != http.StatusInternalServerError {
			t.Fatalf("delivery during the failure: %v, want 500 (Wompi retries)", d)
		}
		if f.orderStatus(o.ID) != persistence.OrderPendingPayment || f.intent(co.Intent.ID).Status != persistence.IntentPending ||
			f.audits("payment.approved", "payment/"+co.Intent.ID) != 0 || f.audits("order.paid", "order/"+o.ID) != 0 {
			t.Fatal("half applied")
		}
		var unapplied []persistence.PaymentEvent
		f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
			unapplied, err = tx.PaymentEventListUnapplied(ctx, ProviderWompi, time.Now().Add(time.Hour), 10)
			return err
		})
		if len(unapplied) != 1 {
			t.Fatalf("the raw event was not kept: %d", len(unapplied))
		}
		f.store.failing.Store(false)
		if err := f.fake.Resend(f.fake.Events()[0].ID); err != nil {
			t.Fatal(err)
		}
		f.fake.WaitIdle()
		if f.orderStatus(o.ID) != persistence.OrderPaid || len(f.entries(co.Intent.ID)) != 2 {
			t.Fatal("the redelivery did not apply it")
		}
	})
}

// TestStoreFailingThenReconciliation: the same failure, no redelivery:
// reconciliation applies the stored event.
func TestStoreFailingThenReconciliation(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		o := f.order("ana")
		co := f.mustPay(ana, o.ID)
		f.store.failing.Store(true)
		f.checkout(co, wompifake.Approve)
		f.store.failing.Store(false)
		f.offset.Store(int64(2 * time.Minute))
		res, err := f.svc.Reconcile(context.Background())
		if err != nil || res.Events != 1 {
			t.Fatalf("Reconcile: %+v %v", res, err)
		}
		if f.orderStatus(o.ID) != persistence.OrderPaid || len(f.entries(co.Intent.ID)) != 2 {
			t.Fatal("not applied")
		}
		if xs := f.exceptions(persistence.ExceptionMissingWebhook); len(xs) != 0 {
			t.Fatalf("an applied stored event is not a missing webhook: %+v", xs)
		}
	})
}

// TestReconciliationAloneReachesPaid: every event dropped.
func TestReconciliationAloneReachesPaid(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		f.fake.DefaultDelivery(wompifake.Delivery{Drop: true})
		paid, declined := f.order("ana"), f.order("bob")
		cp, cd := f.mustPay(ana, paid.ID), f.mustPay(bob, declined.ID)
		f.checkout(cp, wompifake.Approve)
		f.checkout(cd, wompifake.Decline)
		if f.hooks.Load() != 0 || f.orderStatus(paid.ID) != persistence.OrderPendingPayment {
			t.Fatal("an event arrived")
		}
		for range 2 {
			if _, err := f.svc.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if f.orderStatus(paid.ID) != persistence.OrderPaid || f.intent(cd.Intent.ID).Status != persistence.IntentDeclined {
			t.Fatal("reconciliation did not apply")
		}
		if f.audits("payment.approved", "payment/"+cp.Intent.ID) != 1 || len(f.entries(cp.Intent.ID)) != 2 {
			t.Fatal("applied twice")
		}
		xs := f.exceptions(persistence.ExceptionMissingWebhook)
		if len(xs) != 2 || xs[0].State != persistence.ExceptionResolved {
			t.Fatalf("missing_webhook: %+v", xs)
		}
	})
}

// TestReconciliationExpiresAndFlagsStalePending: a lapsed intent with no
// payment at Wompi expires; one Wompi still holds PENDING is flagged; a
// payment approved after the order expired waits in suspense.
func TestReconciliationExpiresAndFlagsStalePending(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		idle, slow, late := f.order("ana"), f.order("ana"), f.order("bob")
		ci, cs, cl := f.mustPay(ana, idle.ID), f.mustPay(ana, slow.ID), f.mustPay(bob, late.ID)
		f.fake.Outcome(cs.Intent.ID, wompifake.Pending)
		f.checkout(cs, wompifake.Sandbox)
		f.fake.Delivery(cl.Intent.ID, wompifake.Delivery{Hold: true})
		f.checkout(cl, wompifake.Approve)

		// The order of "late" expires before its approval arrives.
		f.must(func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.OrderTransition(ctx, persistence.OrderTransition{ID: late.ID, From: persistence.OrderPendingPayment,
				To: persistence.OrderExpired, At: time.Now()})
			return err
		})
		f.fake.Release(false)
		f.fake.WaitIdle()
		if in := f.intent(cl.Intent.ID); in.Status != persistence.IntentApproved || f.orderStatus(late.ID) != persistence.OrderExpired {
			t.Fatalf("late approval: %+v", in)
		}
		if es := f.entries(cl.Intent.ID); len(es) != 2 || es[1].Account != persistence.AccountSuspense {
			t.Fatalf("late approval's money: %+v", es)
		}
		if xs := f.exceptions(persistence.ExceptionStatusMismatch); len(xs) != 1 || xs[0].IntentID != cl.Intent.ID {
			t.Fatalf("late approval's exception: %+v", xs)
		}

		f.offset.Store(int64(time.Hour))
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if in := f.intent(ci.Intent.ID); in.Status != persistence.IntentExpired {
			t.Fatalf("idle intent: %+v", in)
		}
		if in := f.intent(cs.Intent.ID); in.Status != persistence.IntentPending {
			t.Fatalf("pending at Wompi: %+v", in)
		}
		if xs := f.exceptions(persistence.ExceptionStalePending); len(xs) != 1 || xs[0].IntentID != cs.Intent.ID {
			t.Fatalf("stale pending: %+v", xs)
		}
	})
}

func TestExceptionsListAndResolve(t *testing.T) {
	run(t, func(t *testing.T, f *fixture) {
		for i := range 3 {
			body, sum := event(keys.Events, fmt.Sprintf("unknown-%d", i), "APPROVED", 1000, "nobody", time.Now().Unix())
			f.post(body, sum)
		}
		ctx := context.Background()
		if _, err := f.svc.Exceptions(ctx, ana, ExceptionQuery{}); servicetest.Code(err) != "forbidden" {
			t.Fatalf("client lists exceptions: %v", err)
		}
		page, err := f.svc.Exceptions(ctx, admin, ExceptionQuery{State: "open", Limit: 2})
		if err != nil || len(page.Items) != 2 || page.Next == nil {
			t.Fatalf("first page: %+v %v", page, err)
		}
		rest, err := f.svc.Exceptions(ctx, admin, ExceptionQuery{State: "open", Before: *page.Next, Limit: 2})
		if err != nil || len(rest.Items) != 1 || rest.Next != nil {
			t.Fatalf("second page: %+v %v", rest, err)
		}
		if _, err := f.svc.Exceptions(ctx, admin, ExceptionQuery{Class: "nope"}); servicetest.Code(err) != "validation_failed" {
			t.Fatalf("bad class: %v", err)
		}
		id := rest.Items[0].ID
		resolve := func(in ResolveInput) (x persistence.PaymentException, err error) {
			err = f.store.InTx(ctx, func(tx persistence.Tx) (err error) {
				x, err = f.svc.Resolve(ctx, tx, admin, in)
				return err
			})
			return x, err
		}
		if _, err := resolve(ResolveInput{ID: id}); servicetest.Code(err) != "validation_failed" {
			t.Fatalf("no reason: %v", err)
		}
		x, err := resolve(ResolveInput{ID: id, Reason: "test charge, written off", WriteOff: true})
		if err != nil || x.State != persistence.ExceptionWrittenOff || x.ResolvedBy != "boss" {
			t.Fatalf("resolve: %+v %v", x, err)
		}
		if _, err := resolve(ResolveInput{ID: id, Reason: "again"}); servicetest.Code(err) != "conflict" {
			t.Fatalf("resolve twice: %v", err)
		}
		if _, err := resolve(ResolveInput{ID: "nope", Reason: "again"}); servicetest.Code(err) != "not_found" {
			t.Fatalf("resolve unknown: %v", err)
		}
		if f.audits("payment.exception_written_off", "payment_exception/"+id) != 1 {
			t.Fatal("no audit entry")
		}
	})
}

func TestDisabledIsUnavailable(t *testing.T) {
	s := New(Deps{})
	if _, _, err := s.PayOrder(context.Background(), nil, ana, "x"); servicetest.Code(err) != "unavailable" {
		t.Fatalf("PayOrder: %v", err)
	}
	if _, err := s.Event(context.Background(), []byte("{}"), "x", ""); servicetest.Code(err) != "unavailable" {
		t.Fatalf("Event: %v", err)
	}
}
