package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
	"github.com/spa-engine/spa/persistence/storetest"
)

const phone = "+573001234567"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

var sixDigits = regexp.MustCompile(`\b[0-9]{6}\b`)

// outbox is a Sender that keeps the last code sent to each phone.
type outbox struct {
	mu    sync.Mutex
	codes map[string]string
	sent  int
	fail  atomic.Bool
}

func (o *outbox) Send(_ context.Context, m sender.Message) error {
	if o.fail.Load() {
		return sender.ErrUnavailable
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.codes[m.To] = sixDigits.FindString(m.Body)
	o.sent++
	return nil
}

func (o *outbox) last(to string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.codes[to]
}

// flaky is a store that can be taken down.
type flaky struct {
	persistence.Store
	down atomic.Bool
	// retried runs every transaction twice, the first rolled back (a
	// serialization failure at COMMIT, retried by the driver).
	retried atomic.Bool
}

func (f *flaky) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if f.down.Load() {
		return fmt.Errorf("flaky: %w", persistence.ErrUnavailable)
	}
	if f.retried.Load() {
		return storetest.Retried{Store: f.Store}.InTx(ctx, fn)
	}
	return f.Store.InTx(ctx, fn)
}

type fixture struct {
	t      *testing.T
	store  *flaky
	clock  *clock
	out    *outbox
	root   *actor.RootContext
	dir    *Directory
	met    *Metrics
	hasher *otp.Hasher
	bot    Bot // conversation_test.go
	sealer keyed.Sealer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	h, err := otp.NewHasher(bytes.Repeat([]byte{7}, otp.MinKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: &flaky{Store: sqlitetest.Open(t, persistence.Options{})}, clock: &clock{},
		out: &outbox{codes: map[string]string{}}, hasher: h}
	f.clock.ns.Store(t0.UnixNano())
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(sys.Shutdown)
	f.root = sys.Root
	f.start()
	return f
}

// start (re)creates the directory on the same store: a node restart as far
// as session state is concerned.
func (f *fixture) start() {
	f.t.Helper()
	if f.dir != nil {
		f.dir.Stop(5 * time.Second)
	}
	f.met, _ = NewMetrics(prometheus.NewRegistry())
	var err error
	f.dir, err = newDirectoryNamed(f.root, Deps{Store: f.store, Hasher: f.hasher, Sender: f.out, Now: f.clock.now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: f.met, Bot: f.bot, Sealer: f.sealer}, 5*time.Second,
		fmt.Sprintf("sessions-%d", time.Now().UnixNano()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { f.dir.Stop(5 * time.Second) })
}

const key = "phone-key-1"

func (f *fixture) request() *RequestCodeReply {
	return f.dir.RequestCode(context.Background(), key, &RequestCode{Phone: phone})
}

func (f *fixture) verify(code string) *VerifyReply {
	return f.dir.VerifyCode(context.Background(), key, &VerifyCode{Phone: phone, Code: code})
}

func TestRequestAndVerify(t *testing.T) {
	f := newFixture(t)
	if r := f.request(); r.Err != nil || r.ExpiresIn != 5*time.Minute {
		t.Fatalf("request: %+v", r)
	}
	code := f.out.last(phone)
	if len(code) != otp.CodeLen {
		t.Fatalf("code %q", code)
	}
	if r := f.verify(code); r.Err != nil || r.Result != otp.ResultOK {
		t.Fatalf("verify: %+v", r)
	}
	// Single use.
	if r := f.verify(code); r.Result != otp.ResultUsed {
		t.Fatalf("second use: %+v", r)
	}
	if got := testutil.ToFloat64(f.met.verifications.WithLabelValues("ok")); got != 1 {
		t.Fatalf("ok verifications metric = %v", got)
	}
	// No plaintext code and no phone number in the stored state.
	var rec persistence.OTPState
	if err := f.store.InTx(context.Background(), func(tx persistence.Tx) error {
		var err error
		rec, err = tx.OTPStateGet(context.Background(), key)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.State, []byte(code)) || bytes.Contains(rec.State, []byte("3001234567")) {
		t.Fatalf("stored state leaks the code or the phone: %s", rec.State)
	}
}

// TestBruteForceSurvivesRestart: wrong guesses lock the phone after
// MaxFailures; the lockout holds across a restart of the actors (the state
// comes back from the store), a new code does not lift it, and the right
// code is refused until it ends.
// TestCodeStateWrittenByRetriedTransactions: every transaction run twice,
// the first rolled back (PostgreSQL's serialization failure at COMMIT,
// retried by the driver): the request and the check are each stored from
// the version the actor holds, so the code is sent and accepted.
func TestCodeStateWrittenByRetriedTransactions(t *testing.T) {
	f := newFixture(t)
	f.store.retried.Store(true)
	if r := f.request(); r.Err != nil {
		t.Fatalf("request: %+v", r)
	}
	if r := f.verify(f.out.last(phone)); r.Err != nil || r.Result != otp.ResultOK {
		t.Fatalf("verify: %+v", r)
	}
}

func TestBruteForceSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	p := otp.DefaultPolicy()
	if r := f.request(); r.Err != nil {
		t.Fatal(r.Err)
	}
	code := f.out.last(phone)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	evaluated := 0
	for i := 0; i < 3*p.MaxFailures; i++ {
		r := f.verify(wrong)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Result == otp.ResultLocked {
			if r.RetryAfter <= 0 || r.RetryAfter > p.Lockouts[0] {
				t.Fatalf("retry after %v", r.RetryAfter)
			}
			break
		}
		if r.Result != otp.ResultWrong {
			t.Fatalf("guess %d: %v", i, r.Result)
		}
		evaluated++
		f.clock.add(time.Second)
	}
	if evaluated != p.MaxFailures {
		t.Fatalf("%d guesses evaluated before the lockout, want %d", evaluated, p.MaxFailures)
	}
	if got := testutil.ToFloat64(f.met.lockouts); got != 1 {
		t.Fatalf("lockouts metric = %v", got)
	}

	f.start() // restart on the same store
	if r := f.verify(code); r.Result != otp.ResultLocked {
		t.Fatalf("right code after restart during lockout: %+v", r)
	}
	if r := f.request(); !errors.Is(r.Err, otp.ErrLockedOut) {
		t.Fatalf("new code during lockout: %+v", r)
	}

	// After the lockout, one more wrong guess is evaluated... and the
	// failure count started over only because a lockout was served, not
	// because a new code was sent.
	f.clock.add(p.Lockouts[0])
	if r := f.request(); r.Err != nil {
		t.Fatalf("request after lockout: %+v", r)
	}
	for i := 0; i < p.MaxFailures-1; i++ {
		if r := f.verify(wrong); r.Result != otp.ResultWrong {
			t.Fatalf("guess %d after lockout: %+v", i, r)
		}
		f.clock.add(time.Second)
	}
	f.start()
	// A fresh code does not reset the count: one more failure locks again,
	// for the next (longer) step of the ladder.
	f.clock.add(p.ResendAfter)
	if r := f.request(); r.Err != nil {
		t.Fatalf("request: %+v", r)
	}
	if r := f.verify(wrong); r.Result != otp.ResultWrong {
		t.Fatalf("last guess: %+v", r)
	}
	if r := f.verify(f.out.last(phone)); r.Result != otp.ResultLocked || r.RetryAfter <= p.Lockouts[0] {
		t.Fatalf("second lockout: %+v", r)
	}
}

// TestStoreDownFailsClosed: with the store down no code is sent and the
// answer is ErrUnavailable; a failed check is refused too.
func TestStoreDownFailsClosed(t *testing.T) {
	f := newFixture(t)
	if r := f.request(); r.Err != nil { // activates and loads
		t.Fatal(r.Err)
	}
	f.store.down.Store(true)
	f.clock.add(time.Hour)
	sent := f.out.sent
	if r := f.request(); !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("request with store down: %+v", r)
	}
	if f.out.sent != sent {
		t.Fatal("a code was sent while the store was down")
	}
	if r := f.verify("123456"); !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("verify with store down: %+v", r)
	}
	// A fresh activation cannot load either: still closed.
	f.start()
	if r := f.request(); !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("request on a fresh activation with store down: %+v", r)
	}
	f.store.down.Store(false)
	if r := f.request(); r.Err != nil {
		t.Fatalf("store back: %+v", r)
	}
}

func TestSendLimitsAndDeliveryFailure(t *testing.T) {
	f := newFixture(t)
	if r := f.request(); r.Err != nil {
		t.Fatal(r.Err)
	}
	var re *otp.RetryError
	if r := f.request(); !errors.As(r.Err, &re) || !errors.Is(r.Err, otp.ErrSendRateLimited) || re.RetryAfter != otp.DefaultPolicy().ResendAfter {
		t.Fatalf("immediate resend: %+v", r)
	}
	f.clock.add(time.Minute)
	f.out.fail.Store(true)
	if r := f.request(); !errors.Is(r.Err, ErrDelivery) {
		t.Fatalf("failed delivery: %+v", r)
	}
	// The failed delivery still spent a send.
	if r := f.request(); !errors.Is(r.Err, otp.ErrSendRateLimited) {
		t.Fatalf("resend right after a failed delivery: %+v", r)
	}
}

// TestConcurrentGuessesLinearizable: many clients guess one number's code
// at once. The recorded history must be linearizable against the
// sequential policy: exactly MaxFailures guesses are evaluated (wrong), and
// every other one answers locked, never a locked answer completing before
// a guess that was still evaluated afterwards started. That holds only if
// the number's state has a single writer.
func TestConcurrentGuessesLinearizable(t *testing.T) {
	f := newFixture(t)
	if r := f.request(); r.Err != nil {
		t.Fatal(r.Err)
	}
	wrong := "000000"
	if f.out.last(phone) == wrong {
		wrong = "111111"
	}
	maxFailures := otp.DefaultPolicy().MaxFailures
	var (
		mu    sync.Mutex
		ops   []porcupine.Operation
		start = time.Now()
		wg    sync.WaitGroup
	)
	for c := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				call := time.Since(start).Nanoseconds()
				r := f.verify(wrong)
				ret := time.Since(start).Nanoseconds()
				if r.Err != nil {
					t.Errorf("client %d: %v", c, r.Err)
					return
				}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: c, Call: call, Output: r.Result, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	model := porcupine.Model{
		Init: func() any { return 0 },
		Step: func(state, _, output any) (bool, any) {
			n := state.(int)
			if n < maxFailures {
				return output.(otp.Result) == otp.ResultWrong, n + 1
			}
			return output.(otp.Result) == otp.ResultLocked, n
		},
		DescribeOperation: func(_, output any) string { return output.(otp.Result).String() },
	}
	if res := porcupine.CheckOperationsTimeout(model, ops, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("history of %d guesses is not linearizable against the policy: %v", len(ops), res)
	}
}

// TestTargetedLockoutPerNetworkSurvivesRestart (issue 15 item 7): wrong
// codes from one network lock the number for that network only, the
// owner elsewhere still gets a code and signs in, and the per-network
// lockout is in the persisted state, so a restart keeps it; spread over
// networks, the failures then require a CAPTCHA.
func TestTargetedLockoutPerNetworkSurvivesRestart(t *testing.T) {
	f := newFixture(t)
	p := otp.DefaultPolicy()
	const attacker, owner = "198.51.100.0/24", "203.0.113.0/24"
	ask := func(network string, captcha bool) *RequestCodeReply {
		f.clock.add(p.ResendAfter) // past the resend gap
		return f.dir.RequestCode(context.Background(), key, &RequestCode{Phone: phone, Network: network, Captcha: captcha})
	}
	check := func(code, network string, captcha bool) *VerifyReply {
		return f.dir.VerifyCode(context.Background(), key, &VerifyCode{Phone: phone, Code: code, Network: network, Captcha: captcha})
	}
	if r := ask(attacker, false); r.Err != nil {
		t.Fatal(r.Err)
	}
	wrong := "000000"
	if f.out.last(phone) == wrong {
		wrong = "111111"
	}
	for range p.MaxFailures {
		if r := check(wrong, attacker, false); r.Err != nil || r.Result != otp.ResultWrong {
			t.Fatalf("guess: %+v", r)
		}
	}
	f.start() // restart on the same store
	if r := check(wrong, attacker, false); r.Result != otp.ResultLocked || r.RetryAfter != p.Lockouts[0] {
		t.Fatalf("attacker's network after a restart: %+v", r)
	}
	if r := ask(attacker, false); !errors.Is(r.Err, otp.ErrLockedOut) {
		t.Fatalf("code to the attacker's network: %+v", r)
	}
	if r := ask(owner, false); r.Err != nil {
		t.Fatalf("code to the owner: %+v", r)
	}
	if r := check(f.out.last(phone), owner, false); r.Result != otp.ResultOK {
		t.Fatalf("owner's sign-in: %+v", r)
	}
	// Ten networks guessing: a CAPTCHA for everyone, kept across a restart.
	if r := ask(owner, false); r.Err != nil {
		t.Fatal(r.Err)
	}
	for i := range p.CaptchaAfter {
		check(wrong, fmt.Sprintf("192.0.%d.0/24", i), false)
	}
	f.start()
	if r := check(f.out.last(phone), owner, false); r.Result != otp.ResultCaptchaRequired {
		t.Fatalf("without a CAPTCHA: %+v", r)
	}
	if r := ask(owner, false); !errors.Is(r.Err, otp.ErrCaptchaRequired) {
		t.Fatalf("code without a CAPTCHA: %+v", r)
	}
	if r := check(f.out.last(phone), owner, true); r.Result != otp.ResultOK {
		t.Fatalf("with a CAPTCHA: %+v", r)
	}
}
