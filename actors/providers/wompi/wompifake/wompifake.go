// Package wompifake is an in-process Wompi (external-apis.md §3) for tests
// and the dev node. It speaks the wire format strictly: Bearer public or
// private keys where Wompi wants them, x-merchant-public-key on
// /merchants/info (and the older /merchants/{public_key}), acceptance
// tokens it issued, integrity signatures, the documented reply and error
// JSON (422 INPUT_VALIDATION_ERROR for a reused reference). Transactions
// follow the sandbox rules (card 4242… APPROVED, 4111… DECLINED, any other
// card ERROR; Nequi 3991111111 APPROVED, 3992222222 DECLINED) unless told
// otherwise per reference or globally.
//
// Every status change is posted as a transaction.updated event to the
// webhook URL, signed with the events secret exactly as Wompi signs. Events
// can be dropped, duplicated, delayed, held and released in any order, or
// followed by a stale PENDING, and any logged event can be sent again.
// A web checkout page (GET /p/?…) shows the amount with "approve" and
// "decline" buttons; either resolves the transaction, fires the event and
// redirects to redirect-url?id=….
//
// The fake computes signatures and checksums itself rather than importing
// package wompi, so a mistake in the client's hashing cannot hide behind
// the same mistake here. It is deterministic: transaction ids come from a
// counter and the clock (SetNow), events go out one at a time in order.
package wompifake

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
)

// Keys are the merchant's four keys. Prefixes follow Wompi's sandbox.
type Keys struct {
	Public, Private, Integrity, Events string
}

// DefaultKeys are sandbox-shaped keys for the dev node and tests.
func DefaultKeys() Keys {
	return Keys{
		Public:    "pub_test_fakeWompiPublic0000000000",
		Private:   "prv_test_fakeWompiPrivate000000000",
		Integrity: "test_integrity_fakeWompiIntegrity00",
		Events:    "test_events_fakeWompiEvents0000000",
	}
}

// Outcome is how the fake resolves a transaction.
type Outcome string

const (
	// Sandbox follows Wompi's sandbox rules for the card or Nequi number.
	Sandbox Outcome = ""
	Approve Outcome = "APPROVED"
	Decline Outcome = "DECLINED"
	Error   Outcome = "ERROR"
	// Pending leaves the transaction PENDING until Settle.
	Pending Outcome = "PENDING"
)

// Delivery is how the events of a reference (or all, by default) reach the
// webhook. The zero value posts each event once, at once.
type Delivery struct {
	// Drop logs the event but never posts it (Wompi gave up).
	Drop bool
	// Duplicates posts that many extra copies, byte-identical.
	Duplicates int
	// Delay waits before posting.
	Delay time.Duration
	// Hold keeps the event until Release, which can post held events in
	// reverse order.
	Hold bool
	// StalePending follows the final event with a PENDING event for the
	// same transaction carrying an older timestamp: an update arriving out
	// of order.
	StalePending bool
}

// Transaction is a transaction as the fake keeps and serves it.
type Transaction struct {
	ID                string         `json:"id"`
	CreatedAt         string         `json:"created_at"`
	FinalizedAt       *string        `json:"finalized_at"`
	AmountInCents     int64          `json:"amount_in_cents"`
	Reference         string         `json:"reference"`
	Currency          string         `json:"currency"`
	CustomerEmail     string         `json:"customer_email"`
	PaymentMethodType string         `json:"payment_method_type"`
	PaymentMethod     map[string]any `json:"payment_method"`
	Status            string         `json:"status"`
	StatusMessage     *string        `json:"status_message"`
	PaymentSourceID   *int64         `json:"payment_source_id"`
	RedirectURL       *string        `json:"redirect_url"`
	ShippingAddress   any            `json:"shipping_address"`
	PaymentLinkID     *string        `json:"payment_link_id"`
}

// Event is an event the fake produced.
type Event struct {
	// ID is the fake's own handle for Resend (Wompi's body has no id).
	ID            string
	TransactionID string
	Reference     string
	Status        string
	Timestamp     int64
	Checksum      string
	Body          []byte
	// Deliveries are the webhook's answers, one per POST (0: no answer).
	Deliveries []int
	Dropped    bool
	Held       bool
}

// Request is an API request the fake received.
type Request struct {
	Method, Path, Query string
	// Key is "public", "private", "unknown" or "" (none sent).
	Key  string
	Body string
}

// maxRequests bounds the request log of a long-running dev fake.
const maxRequests = 10000

// Server is the fake.
type Server struct {
	// URL is the server's root; BaseURL and CheckoutURL hang under it.
	URL  string
	Keys Keys
	// Faults make the next API requests fail (applied before auth, like an
	// outage in front of Wompi). The checkout page is not affected.
	Faults fakefault.Injector

	ts      *httptest.Server
	hs      *http.Server
	ln      net.Listener
	handler http.Handler
	webhc   *http.Client

	mu              sync.Mutex
	now             func() time.Time
	webhook         string
	requests        []Request
	requestCount    int
	txs             map[string]*Transaction
	order           []string            // transaction ids in creation order
	byRef           map[string][]string // reference -> transaction ids
	tokens          map[string]string   // card token -> card number
	sources         map[int64]*source
	outcomes        map[string]Outcome
	defaultOutcome  Outcome
	deliveries      map[string]Delivery
	defaultDelivery Delivery
	events          []*Event
	held            []int // indexes into events
	queue           []int // indexes into events, to post in order
	pending         int   // events queued, delayed or being posted
	timers          map[*time.Timer]bool
	closed          bool
	wake            *sync.Cond
	worker          sync.WaitGroup
	seq             int
}

type source struct {
	ID            int64
	Type, Token   string
	CustomerEmail string
	Status        string
}

// New starts the fake on an httptest server. Close it when done.
func New(keys Keys) *Server {
	s := newServer(keys)
	s.ts = httptest.NewServer(s.handler)
	s.URL = s.ts.URL
	return s
}

// Serve starts the fake on l (for the dev node: SPA_WOMPI_BASE_URL points
// at BaseURL). Close it when done.
func Serve(l net.Listener, keys Keys) *Server {
	s := newServer(keys)
	s.ln = l
	s.hs = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.URL = "http://" + l.Addr().String()
	go func() { _ = s.hs.Serve(l) }()
	return s
}

func newServer(keys Keys) *Server {
	s := &Server{
		Keys:       keys,
		now:        time.Now,
		txs:        map[string]*Transaction{},
		byRef:      map[string][]string{},
		tokens:     map[string]string{},
		sources:    map[int64]*source{},
		outcomes:   map[string]Outcome{},
		deliveries: map[string]Delivery{},
		timers:     map[*time.Timer]bool{},
		webhc:      &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}},
	}
	s.wake = sync.NewCond(&s.mu)
	s.handler = s.routes()
	s.worker.Add(1)
	go s.deliverLoop()
	return s
}

// Close stops the server and the event worker; events not yet posted are
// dropped, hanging requests released.
func (s *Server) Close() {
	s.Faults.Close()
	s.mu.Lock()
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = map[*time.Timer]bool{}
	s.wake.Broadcast()
	s.mu.Unlock()
	if s.ts != nil {
		s.ts.Close()
	}
	if s.hs != nil {
		_ = s.hs.Close()
	}
	s.worker.Wait()
	s.webhc.CloseIdleConnections()
}

// Handler serves the fake's routes, for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// BaseURL replaces https://sandbox.wompi.co/v1.
func (s *Server) BaseURL() string { return s.URL + "/v1" }

// CheckoutURL replaces https://checkout.wompi.co/p/.
func (s *Server) CheckoutURL() string { return s.URL + "/p/" }

// Client is an HTTP client for the fake.
func (s *Server) Client() *http.Client {
	if s.ts != nil {
		return s.ts.Client()
	}
	return &http.Client{}
}

// SetNow replaces the fake's clock (transaction ids, event timestamps,
// checkout expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetWebhook makes the fake post events to url ("" stops posting; events
// are still logged).
func (s *Server) SetWebhook(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = url
}

// Outcome fixes how transactions of reference resolve (Sandbox to undo).
func (s *Server) Outcome(reference string, o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o == Sandbox {
		delete(s.outcomes, reference)
		return
	}
	s.outcomes[reference] = o
}

// DefaultOutcome fixes how transactions without their own Outcome resolve.
func (s *Server) DefaultOutcome(o Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaultOutcome = o
}

// Delivery sets how events of reference are posted.
func (s *Server) Delivery(reference string, d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries[reference] = d
}

// DefaultDelivery sets how events of references without their own
// Delivery are posted.
func (s *Server) DefaultDelivery(d Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defaultDelivery = d
}

// Transactions returns copies of every transaction in creation order.
func (s *Server) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transaction, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.txs[id])
	}
	return out
}

// Transaction returns a copy of the transaction id.
func (s *Server) Transaction(id string) (Transaction, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[id]
	if !ok {
		return Transaction{}, false
	}
	return *tx, true
}

// Events returns copies of every event produced, in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Event, 0, len(s.events))
	for _, e := range s.events {
		c := *e
		c.Body = append([]byte(nil), e.Body...)
		c.Deliveries = append([]int(nil), e.Deliveries...)
		out = append(out, c)
	}
	return out
}

// Requests returns the API requests received (the latest maxRequests).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestCount counts every API request, faults included.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requestCount
}

// Idle reports whether no event is waiting to be posted (held ones aside).
func (s *Server) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending == 0
}

// WaitIdle blocks until every queued or delayed event has been posted (or
// the fake is closed). Held events do not count.
func (s *Server) WaitIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.pending > 0 && !s.closed {
		s.wake.Wait()
	}
}

// Settle resolves a PENDING transaction (outcome Pending) to status
// (APPROVED, DECLINED or ERROR) and fires its event.
func (s *Server) Settle(id string, status Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[id]
	switch {
	case !ok:
		return fmt.Errorf("wompifake: no transaction %s", id)
	case tx.Status != string(Pending):
		return fmt.Errorf("wompifake: transaction %s is %s, not PENDING", id, tx.Status)
	case status != Approve && status != Decline && status != Error:
		return fmt.Errorf("wompifake: cannot settle to %q", status)
	}
	s.finalizeLocked(tx, string(status))
	return nil
}

// Release posts the held events, in reverse order if reverse (events
// out of order), and stops holding them.
func (s *Server) Release(reverse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.held
	s.held = nil
	if reverse {
		for i, j := 0, len(held)-1; i < j; i, j = i+1, j-1 {
			held[i], held[j] = held[j], held[i]
		}
	}
	for _, i := range held {
		s.events[i].Held = false
		s.enqueueLocked(i, 0)
	}
}

// Resend posts a logged event again, byte-identical (Wompi's retry, or a
// replay).
func (s *Server) Resend(eventID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, e := range s.events {
		if e.ID == eventID {
			s.enqueueLocked(i, 0)
			return nil
		}
	}
	return fmt.Errorf("wompifake: no event %s", eventID)
}

// ---- events ----

// finalizeLocked sets a final status and fires the event.
func (s *Server) finalizeLocked(tx *Transaction, status string) {
	now := s.now().UTC()
	tx.Status = status
	fin := now.Format("2006-01-02T15:04:05.000Z")
	tx.FinalizedAt = &fin
	if status == "DECLINED" || status == "ERROR" {
		msg := map[string]string{"DECLINED": "Transacción rechazada", "ERROR": "Error procesando la transacción"}[status]
		tx.StatusMessage = &msg
	}
	s.emitLocked(tx, now)
}

// emitLocked signs and schedules a transaction.updated event for tx.
func (s *Server) emitLocked(tx *Transaction, at time.Time) {
	d, ok := s.deliveries[tx.Reference]
	if !ok {
		d = s.defaultDelivery
	}
	i := s.recordLocked(tx, tx.Status, at.Unix())
	s.dispatchLocked(i, d)
	if d.StalePending && tx.Status != "PENDING" {
		// An older PENDING update for the same transaction, after the final one.
		stale := *tx
		stale.Status, stale.FinalizedAt, stale.StatusMessage = "PENDING", nil, nil
		j := s.recordLocked(&stale, "PENDING", at.Unix()-1)
		s.dispatchLocked(j, Delivery{Delay: d.Delay, Hold: d.Hold})
	}
}

// dispatchLocked posts event i as d says.
func (s *Server) dispatchLocked(i int, d Delivery) {
	e := s.events[i]
	switch {
	case d.Drop:
		e.Dropped = true
	case d.Hold:
		e.Held = true
		for range 1 + max(d.Duplicates, 0) {
			s.held = append(s.held, i)
		}
	default:
		for range 1 + max(d.Duplicates, 0) {
			s.enqueueLocked(i, d.Delay)
		}
	}
}

// recordLocked builds, signs and logs an event body for tx with status.
func (s *Server) recordLocked(tx *Transaction, status string, ts int64) int {
	snap := *tx
	snap.Status = status
	amount := strconv.FormatInt(snap.AmountInCents, 10)
	sum := sha256.Sum256([]byte(snap.ID + status + amount + strconv.FormatInt(ts, 10) + s.Keys.Events))
	checksum := hex.EncodeToString(sum[:])
	env := "test"
	if strings.HasPrefix(s.Keys.Events, "prod_") {
		env = "prod"
	}
	body, err := json.Marshal(map[string]any{
		"event":       "transaction.updated",
		"data":        map[string]any{"transaction": snap},
		"environment": env,
		"signature": map[string]any{
			"properties": []string{"transaction.id", "transaction.status", "transaction.amount_in_cents"},
			"checksum":   checksum,
		},
		"timestamp": ts,
		"sent_at":   s.now().UTC().Format("2006-01-02T15:04:05.000Z"),
	})
	if err != nil {
		panic(err) // only plain values above
	}
	s.seq++
	s.events = append(s.events, &Event{
		ID: fmt.Sprintf("evt_%d", s.seq), TransactionID: snap.ID, Reference: snap.Reference,
		Status: status, Timestamp: ts, Checksum: checksum, Body: body,
	})
	return len(s.events) - 1
}

// enqueueLocked queues event i for posting, after delay if any.
func (s *Server) enqueueLocked(i int, delay time.Duration) {
	if s.closed {
		return
	}
	s.pending++
	if delay <= 0 {
		s.queue = append(s.queue, i)
		s.wake.Broadcast()
		return
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.timers[t] {
			return // stopped by Close
		}
		delete(s.timers, t)
		s.queue = append(s.queue, i)
		s.wake.Broadcast()
	})
	s.timers[t] = true
}

// deliverLoop posts queued events one at a time, in order.
func (s *Server) deliverLoop() {
	defer s.worker.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(s.queue) == 0 && !s.closed {
			s.wake.Wait()
		}
		if s.closed {
			s.pending = 0
			s.wake.Broadcast()
			return
		}
		i := s.queue[0]
		s.queue = s.queue[1:]
		e, url := s.events[i], s.webhook
		s.mu.Unlock()
		status := -1 // no webhook configured
		if url != "" {
			status = s.post(url, e.Body, e.Checksum)
		}
		s.mu.Lock()
		if status >= 0 {
			e.Deliveries = append(e.Deliveries, status)
		}
		s.pending--
		s.wake.Broadcast()
	}
}

// post sends one event as Wompi does and returns the answer's status (0
// when there was none).
func (s *Server) post(url string, body []byte, checksum string) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Event-Checksum", checksum)
	resp, err := s.webhc.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ---- helpers shared by the API and the checkout page ----

// integrity computes the integrity signature independently of package wompi.
func (s *Server) integrity(reference string, amount int64, currency, expiration string) string {
	sum := sha256.Sum256([]byte(reference + strconv.FormatInt(amount, 10) + currency + expiration + s.Keys.Integrity))
	return hex.EncodeToString(sum[:])
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// newTransactionLocked stores a PENDING transaction and returns it, or
// errReferenceUsed.
func (s *Server) newTransactionLocked(t Transaction) (*Transaction, error) {
	if len(s.byRef[t.Reference]) > 0 {
		return nil, errReferenceUsed
	}
	now := s.now().UTC()
	s.seq++
	t.ID = fmt.Sprintf("%d-%d-%05d", 1234, now.Unix(), s.seq)
	t.CreatedAt = now.Format("2006-01-02T15:04:05.000Z")
	t.Status = string(Pending)
	tx := &t
	s.txs[t.ID] = tx
	s.order = append(s.order, t.ID)
	s.byRef[t.Reference] = append(s.byRef[t.Reference], t.ID)
	return tx, nil
}

var errReferenceUsed = errors.New("la referencia ya ha sido usada")

// resolveLocked applies the outcome for tx: the override for its
// reference, else the default, else the sandbox rule.
func (s *Server) resolveLocked(tx *Transaction, sandbox Outcome) {
	o, ok := s.outcomes[tx.Reference]
	if !ok {
		o = s.defaultOutcome
	}
	if o == Sandbox {
		o = sandbox
	}
	if o == Pending {
		return // until Settle
	}
	s.finalizeLocked(tx, string(o))
}

// cardOutcome is the sandbox rule for cards.
func cardOutcome(number string) Outcome {
	switch number {
	case "4242424242424242":
		return Approve
	case "4111111111111111":
		return Decline
	}
	return Error
}

// nequiOutcome is the sandbox rule for Nequi.
func nequiOutcome(phone string) Outcome {
	switch phone {
	case "3991111111":
		return Approve
	case "3992222222":
		return Decline
	}
	return Error
}

func ptr[T any](v T) *T { return &v }
