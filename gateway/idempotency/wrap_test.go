package idempotency

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/valyala/fasthttp"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/reqctx"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hookStore lets a test pause a request between its transactions, which is
// where a concurrent duplicate can observe the in-progress record on SQLite
// (inside a transaction SQLite's write lock would serialize them instead).
type hookStore struct {
	persistence.Store
	beforeTx func(ctx context.Context)
}

func (h *hookStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if h.beforeTx != nil {
		h.beforeTx(ctx)
	}
	return h.Store.InTx(ctx, fn)
}

func openStore(t *testing.T) persistence.Store {
	t.Helper()
	return sqlitetest.Open(t, persistence.Options{})
}

type fixture struct {
	t     *testing.T
	store persistence.Store
	hook  *hookStore
	clock *clock
	app   *fiber.App
	runs  atomic.Int64 // handler executions that reached the end
	calls atomic.Int64 // handler invocations
	hold  chan struct{}
	held  chan struct{}
	fail5 atomic.Int64 // remaining 5xx failures of /flaky
}

const ttl, lockTTL = time.Hour, 30 * time.Second

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		t:     t,
		store: openStore(t),
		clock: &clock{t: time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)},
	}
	f.hook = &hookStore{Store: f.store}
	cfg := Config{TTL: ttl, LockTTL: lockTTL, Now: f.clock.Now}
	f.app = fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          func(c *fiber.Ctx, err error) error { return apierr.Render(c, nil, err) },
	})
	f.app.Use(func(c *fiber.Ctx) error {
		reqctx.SetRequestID(c, ulid.Make().String())
		if sub := c.Get("X-Test-Subject"); sub != "" {
			reqctx.SetPrincipal(c, auth.Claims{Subject: sub, Role: auth.RoleAdmin})
		}
		return c.Next()
	})
	f.app.Post("/things", Wrap(f.hook, cfg, f.create))
	f.app.Post("/invalid", Wrap(f.hook, cfg, func(c *fiber.Ctx, tx persistence.Tx) error {
		f.calls.Add(1)
		if err := f.audit(c, tx); err != nil {
			return err
		}
		return fault.Invalid("nope", fault.FieldError{Field: "x", Message: "bad"})
	}))
	f.app.Post("/flaky", Wrap(f.hook, cfg, func(c *fiber.Ctx, tx persistence.Tx) error {
		if f.fail5.Add(-1) >= 0 {
			f.calls.Add(1)
			_ = f.audit(c, tx)
			return errors.New("database exploded")
		}
		return f.create(c, tx)
	}))
	return f
}

// create is the handler under test: one audit entry, 201 with a fresh id so
// a replay is distinguishable from a re-execution.
func (f *fixture) create(c *fiber.Ctx, tx persistence.Tx) error {
	f.calls.Add(1)
	if f.hold != nil && c.Get("X-Hold") != "" {
		close(f.held)
		<-f.hold
	}
	if err := f.audit(c, tx); err != nil {
		return err
	}
	f.runs.Add(1)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": ulid.Make().String(), "body": string(c.Body())})
}

func (f *fixture) audit(c *fiber.Ctx, tx persistence.Tx) error {
	return tx.AuditAppend(c.UserContext(), persistence.AuditEntry{
		ID: ulid.Make().String(), At: f.clock.Now(), ActorID: "test", Action: "thing.create",
		Subject: "thing", RequestID: reqctx.RequestID(c), Detail: []byte(`{}`),
	})
}

func (f *fixture) auditCount() int {
	f.t.Helper()
	var n int
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
		es, err := tx.AuditList(context.Background(), persistence.AuditListParams{Limit: 1000})
		n = len(es)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

type resp struct {
	status   int
	body     string
	ct       string
	replayed bool
}

func (f *fixture) do(path, key, subject, body string, hdr ...string) resp {
	f.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(HeaderKey, key)
	}
	if subject != "" {
		req.Header.Set("X-Test-Subject", subject)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := f.app.Test(req, -1)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(b), res.Header.Get("Content-Type"), res.Header.Get(HeaderReplayed) == "true"}
}

func errCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Error.Code
}

func TestNoKeyRunsEveryTime(t *testing.T) {
	f := newFixture(t)
	a := f.do("/things", "", "alice", `{"a":1}`)
	b := f.do("/things", "", "alice", `{"a":1}`)
	if a.status != 201 || b.status != 201 || a.body == b.body {
		t.Fatalf("a=%+v b=%+v", a, b)
	}
	if n := f.auditCount(); n != 2 {
		t.Fatalf("audit entries = %d, want 2", n)
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	first := f.do("/things", "k1", "alice", `{"a":1,"b":[1,2]}`)
	if first.status != 201 || first.replayed {
		t.Fatalf("first = %+v", first)
	}
	second := f.do("/things", "k1", "alice", `{"a":1,"b":[1,2]}`)
	if !second.replayed || second.status != first.status || second.body != first.body || second.ct != first.ct {
		t.Fatalf("second = %+v, first = %+v", second, first)
	}
	if n := f.auditCount(); n != 1 {
		t.Fatalf("audit entries = %d, want 1 (effect once)", n)
	}
}

func TestReplayIgnoresJSONFormatting(t *testing.T) {
	f := newFixture(t)
	first := f.do("/things", "k1", "alice", `{"a":1,"b":{"x":true,"y":null}}`)
	second := f.do("/things", "k1", "alice", "{ \"b\" : {\"y\":null,\n\"x\":true}, \"a\" : 1 }\n")
	if !second.replayed || second.body != first.body {
		t.Fatalf("second = %+v, first = %+v", second, first)
	}
	if f.runs.Load() != 1 {
		t.Fatalf("handler ran %d times", f.runs.Load())
	}
}

func TestReusedKeyDifferentBody(t *testing.T) {
	f := newFixture(t)
	f.do("/things", "k1", "alice", `{"a":1}`)
	r := f.do("/things", "k1", "alice", `{"a":2}`)
	if r.status != 422 || errCode(t, r.body) != fault.CodeIdempotencyKeyReused {
		t.Fatalf("got %+v", r)
	}
	// Numbers keep their literal text: 1 and 1.0 are different requests.
	r = f.do("/things", "k1", "alice", `{"a":1.0}`)
	if r.status != 422 {
		t.Fatalf("1.0 vs 1: %+v", r)
	}
	// Same body on another route is a different request too.
	r = f.do("/invalid", "k1", "alice", `{"a":1}`)
	if r.status != 422 || errCode(t, r.body) != fault.CodeIdempotencyKeyReused {
		t.Fatalf("other route: %+v", r)
	}
}

// TestEncodedBodyIsTheSameRequest: the fingerprint is of what the body
// says, so a resend compressed (Content-Encoding: gzip) is the same
// request, and a compressed other body is another.
func TestEncodedBodyIsTheSameRequest(t *testing.T) {
	f := newFixture(t)
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write([]byte(s))
		_ = w.Close()
		return b.String()
	}
	first := f.do("/things", "k1", "alice", `{"a":1}`)
	if r := f.do("/things", "k1", "alice", gz(`{"a":1}`), "Content-Encoding", "gzip"); !r.replayed || r.body != first.body {
		t.Fatalf("gzip resend = %+v, first = %+v", r, first)
	}
	if r := f.do("/things", "k1", "alice", gz(`{"a":2}`), "Content-Encoding", "gzip"); r.status != 422 || errCode(t, r.body) != fault.CodeIdempotencyKeyReused {
		t.Fatalf("gzip of another body: %+v", r)
	}
	if f.runs.Load() != 1 {
		t.Fatalf("handler ran %d times", f.runs.Load())
	}
}

func TestInvalidKey(t *testing.T) {
	f := newFixture(t)
	for _, k := range []string{strings.Repeat("k", 256), "tab\there", "caf\u00e9"} {
		r := f.do("/things", k, "alice", `{}`)
		if r.status != 400 || errCode(t, r.body) != fault.CodeIdempotencyKeyInvalid {
			t.Fatalf("key %q: %+v", k, r)
		}
	}
	if f.calls.Load() != 0 {
		t.Fatal("handler ran for an invalid key")
	}
}

func TestScopeIsolation(t *testing.T) {
	f := newFixture(t)
	a := f.do("/things", "shared", "alice", `{"a":1}`)
	b := f.do("/things", "shared", "bob", `{"a":1}`)
	anon := f.do("/things", "shared", "", `{"a":1}`)
	if a.replayed || b.replayed || anon.replayed || a.body == b.body || b.body == anon.body {
		t.Fatalf("scopes collided: %+v %+v %+v", a, b, anon)
	}
	// A different body under bob's key is bob's problem, not alice's.
	if r := f.do("/things", "shared", "bob", `{"a":9}`); r.status != 422 {
		t.Fatalf("bob reuse: %+v", r)
	}
	if r := f.do("/things", "shared", "alice", `{"a":1}`); !r.replayed || r.body != a.body {
		t.Fatalf("alice replay: %+v", r)
	}
}

func TestClientErrorIsReplayed(t *testing.T) {
	f := newFixture(t)
	first := f.do("/invalid", "k4", "alice", `{}`)
	if first.status != 422 || errCode(t, first.body) != fault.CodeValidationFailed {
		t.Fatalf("first = %+v", first)
	}
	second := f.do("/invalid", "k4", "alice", `{}`)
	if !second.replayed || second.status != 422 || second.body != first.body {
		t.Fatalf("second = %+v", second)
	}
	if f.calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", f.calls.Load())
	}
	if n := f.auditCount(); n != 0 {
		t.Fatalf("a 4xx kept %d effects", n)
	}
}

func TestServerErrorReleasesKey(t *testing.T) {
	f := newFixture(t)
	f.fail5.Store(1)
	first := f.do("/flaky", "k5", "alice", `{}`)
	if first.status != 500 || errCode(t, first.body) != fault.CodeInternal || strings.Contains(first.body, "exploded") {
		t.Fatalf("first = %+v", first)
	}
	if n := f.auditCount(); n != 0 {
		t.Fatalf("a 5xx kept %d effects", n)
	}
	second := f.do("/flaky", "k5", "alice", `{}`)
	if second.status != 201 || second.replayed {
		t.Fatalf("retry = %+v", second)
	}
	if f.calls.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2", f.calls.Load())
	}
	third := f.do("/flaky", "k5", "alice", `{}`)
	if !third.replayed || third.body != second.body {
		t.Fatalf("third = %+v", third)
	}
}

func TestExpiredRecordRunsAgain(t *testing.T) {
	f := newFixture(t)
	first := f.do("/things", "k6", "alice", `{}`)
	f.clock.Add(ttl + time.Second)
	second := f.do("/things", "k6", "alice", `{}`)
	if second.replayed || second.status != 201 || second.body == first.body {
		t.Fatalf("after expiry: %+v", second)
	}
	if f.runs.Load() != 2 {
		t.Fatalf("runs = %d", f.runs.Load())
	}
}

func TestStaleLockIsTakenOver(t *testing.T) {
	f := newFixture(t)
	body := `{"a":1}`
	now := f.clock.Now()
	// A first attempt claimed the key and died before finishing.
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
		return tx.IdempotencyPut(context.Background(), persistence.IdempotencyRecord{
			Scope: "sub:alice", Key: "k7",
			RequestHash: RequestHash(http.MethodPost, "/things", "application/json", []byte(body)),
			State:       persistence.IdempotencyInProgress,
			LockedUntil: now.Add(lockTTL), CreatedAt: now, ExpiresAt: now.Add(ttl),
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do("/things", "k7", "alice", body); r.status != 409 || errCode(t, r.body) != fault.CodeIdempotencyKeyInUse {
		t.Fatalf("live lock: %+v", r)
	}
	f.clock.Add(lockTTL + time.Second)
	r := f.do("/things", "k7", "alice", body)
	if r.status != 201 || r.replayed {
		t.Fatalf("takeover: %+v", r)
	}
	if r2 := f.do("/things", "k7", "alice", body); !r2.replayed || r2.body != r.body {
		t.Fatalf("after takeover: %+v", r2)
	}
}

// TestConcurrentDuplicate holds the first request after it claimed the key
// (between its two transactions), fires a duplicate, and expects 409; once
// the first finishes the duplicate is answered by replay.
func TestConcurrentDuplicate(t *testing.T) {
	f := newFixture(t)
	gate := make(chan struct{})
	paused := make(chan struct{})
	var n atomic.Int64
	f.hook.beforeTx = func(ctx context.Context) {
		if n.Add(1) == 2 { // the first request's second transaction
			close(paused)
			<-gate
		}
	}
	firstDone := make(chan resp, 1)
	go func() { firstDone <- f.do("/things", "k8", "alice", `{"a":1}`) }()
	<-paused
	dup := f.do("/things", "k8", "alice", `{"a":1}`)
	if dup.status != 409 || errCode(t, dup.body) != fault.CodeIdempotencyKeyInUse {
		t.Fatalf("duplicate = %+v", dup)
	}
	close(gate)
	first := <-firstDone
	if first.status != 201 {
		t.Fatalf("first = %+v", first)
	}
	again := f.do("/things", "k8", "alice", `{"a":1}`)
	if !again.replayed || again.body != first.body {
		t.Fatalf("after = %+v", again)
	}
	if f.runs.Load() != 1 || f.auditCount() != 1 {
		t.Fatalf("runs = %d", f.runs.Load())
	}
}

// TestDuplicateWhileHandlerRuns holds the first request inside its handler.
// On SQLite that transaction owns the write lock, so the duplicate waits for
// it and then replays: still exactly one effect.
func TestDuplicateWhileHandlerRuns(t *testing.T) {
	f := newFixture(t)
	f.hold, f.held = make(chan struct{}), make(chan struct{})
	firstDone := make(chan resp, 1)
	go func() { firstDone <- f.do("/things", "k9", "alice", `{"a":1}`, "X-Hold", "1") }()
	<-f.held
	// The next transaction is the duplicate's: it signals as it goes to
	// the store, where it waits for the first one's write lock. (The first
	// request reads beforeTx again only after f.hold is closed.)
	reached := make(chan struct{})
	var once sync.Once
	f.hook.beforeTx = func(context.Context) { once.Do(func() { close(reached) }) }
	dupDone := make(chan resp, 1)
	go func() { dupDone <- f.do("/things", "k9", "alice", `{"a":1}`) }()
	<-reached // the duplicate reaches the store
	close(f.hold)
	first, dup := <-firstDone, <-dupDone
	if first.status != 201 {
		t.Fatalf("first = %+v", first)
	}
	switch {
	case dup.replayed && dup.body == first.body:
	case dup.status == 409 && errCode(t, dup.body) == fault.CodeIdempotencyKeyInUse:
	default:
		t.Fatalf("duplicate = %+v", dup)
	}
	if f.runs.Load() != 1 || f.auditCount() != 1 {
		t.Fatalf("runs = %d audit = %d", f.runs.Load(), f.auditCount())
	}
}

func TestReplayHasNoStaleHeaders(t *testing.T) {
	f := newFixture(t)
	first := f.do("/things", "k10", "alice", `{}`)
	second := f.do("/things", "k10", "alice", `{}`)
	if !bytes.Equal([]byte(first.body), []byte(second.body)) || !strings.HasPrefix(second.ct, "application/json") {
		t.Fatalf("%+v / %+v", first, second)
	}
}

// TestDerivedID: the id is the prefix and the first 16 bytes of
// sha256(scope NUL key) in unpadded base32hex, per scope; none without a
// key. Ids already stored were derived so: the formula must not change.
func TestDerivedID(t *testing.T) {
	app := fiber.New(fiber.Config{Immutable: true})
	for _, tc := range []struct{ subject, key string }{{"alice", "k1"}, {"", "k1"}, {"alice", ""}, {"bob", strings.Repeat("k", 255)}} {
		var fctx fasthttp.RequestCtx
		if tc.key != "" {
			fctx.Request.Header.Set(HeaderKey, tc.key)
		}
		c := app.AcquireCtx(&fctx)
		scope := "anonymous"
		if tc.subject != "" {
			reqctx.SetPrincipal(c, auth.Claims{Subject: tc.subject, Role: auth.RoleClient})
			scope = "sub:" + tc.subject
		}
		sum := sha256.Sum256([]byte(scope + "\x00" + tc.key))
		want := "ap_" + base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16])
		if tc.key == "" {
			want = ""
		}
		if got := DerivedID(c, "ap_"); got != want {
			t.Errorf("%+v: got %q, want %q", tc, got, want)
		}
		app.ReleaseCtx(c)
	}
}

// TestGoneHolderIsTakenOverAtOnce: an in-progress key records the process
// incarnation holding it. A retry finds it held by an incarnation that is
// gone (this node before a crash and restart) and takes it over at once,
// well inside the lease; held by this very process (a request still
// running) or by a live member of the cluster, it is still 409.
func TestGoneHolderIsTakenOverAtOnce(t *testing.T) {
	f := newFixture(t)
	body := `{"a":1}`
	hold := func(key, holder string) {
		t.Helper()
		now := f.clock.Now()
		err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
			return tx.IdempotencyPut(context.Background(), persistence.IdempotencyRecord{
				Scope: "sub:alice", Key: key,
				RequestHash: RequestHash(http.MethodPost, "/things", "application/json", []byte(body)),
				State:       persistence.IdempotencyInProgress, Holder: holder,
				LockedUntil: now.Add(lockTTL), CreatedAt: now, ExpiresAt: now.Add(ttl),
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	hold("crashed", "01-incarnation-before-the-restart")
	r := f.do("/things", "crashed", "alice", body)
	if r.status != 201 || r.replayed {
		t.Fatalf("retry of a key held by a gone incarnation: %+v, want 201 at once", r)
	}
	if r2 := f.do("/things", "crashed", "alice", body); !r2.replayed || r2.body != r.body {
		t.Fatalf("after the takeover: %+v", r2)
	}

	hold("running", Process.Self())
	if r := f.do("/things", "running", "alice", body); r.status != 409 || errCode(t, r.body) != fault.CodeIdempotencyKeyInUse {
		t.Fatalf("retry of a key this process holds: %+v, want 409 idempotency_key_in_use", r)
	}

	// In a cluster the member list decides.
	members := fakeMembers{"node-b/live": true}
	cfg := Config{TTL: ttl, LockTTL: lockTTL, Now: f.clock.Now, Holders: members}
	f.app.Post("/cluster/things", Wrap(f.hook, cfg, f.create))
	hold2 := func(key, holder string) {
		t.Helper()
		now := f.clock.Now()
		err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
			return tx.IdempotencyPut(context.Background(), persistence.IdempotencyRecord{
				Scope: "sub:alice", Key: key,
				RequestHash: RequestHash(http.MethodPost, "/cluster/things", "application/json", []byte(body)),
				State:       persistence.IdempotencyInProgress, Holder: holder,
				LockedUntil: now.Add(lockTTL), CreatedAt: now, ExpiresAt: now.Add(ttl),
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	hold2("on-b", "node-b/live")
	if r := f.do("/cluster/things", "on-b", "alice", body); r.status != 409 || errCode(t, r.body) != fault.CodeIdempotencyKeyInUse {
		t.Fatalf("held by a live member: %+v, want 409", r)
	}
	hold2("on-c", "node-c/crashed")
	if r := f.do("/cluster/things", "on-c", "alice", body); r.status != 201 {
		t.Fatalf("held by a member that left: %+v, want 201 at once", r)
	}
}

// fakeMembers is a cluster's Holders: the incarnations listed true live.
type fakeMembers map[string]bool

func (fakeMembers) Self() string               { return "node-a/self" }
func (m fakeMembers) Alive(holder string) bool { return m[holder] }
