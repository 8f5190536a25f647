package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

const (
	maria = "+573001234567"
	juan  = "+573109876543"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is the one clock of a fixture: session actors, tokens and the
// service read it, so a test waits out a resend interval or a TOTP step
// by moving it.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

var codeInBody = regexp.MustCompile(`\b[0-9]{6}\b`)

// sink is the fixture's Sender: it remembers the last code sent to each
// number.
type sink struct {
	mu    sync.Mutex
	codes map[string]string
	sent  int
}

func (s *sink) Send(_ context.Context, m sender.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[m.To] = codeInBody.FindString(m.Body)
	s.sent++
	return nil
}

func (s *sink) code(to string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codes[to]
}

// fixture is the service on a real SQLite store with real session actors,
// as cmd/spa wires it on one node, minus HTTP.
type fixture struct {
	t       *testing.T
	svc     *Service
	store   persistence.Store
	tokens  *auth.Tokens
	revoked *auth.RevokedSessions
	node    *Node
	clk     *clock
	sink    *sink
	reg     *prometheus.Registry
	blocked sync.Map // E.164 → true
}

func newFixture(t *testing.T, opts ...func(*Deps)) *fixture {
	t.Helper()
	f := &fixture{t: t, clk: &clock{}, sink: &sink{codes: map[string]string{}}, reg: prometheus.NewRegistry()}
	f.clk.ns.Store(time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC).UnixNano())
	f.store = sqlitetest.Open(t, persistence.Options{})
	var err error
	if f.tokens, err = auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "spa-test", f.clk.now); err != nil {
		t.Fatal(err)
	}
	f.revoked = auth.NewRevokedSessions(15*time.Minute, f.clk.now)
	f.tokens.SetRevocations(f.revoked)

	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	t.Cleanup(sys.Shutdown)
	hasher, err := otp.NewHasher(bytes.Repeat([]byte{1}, otp.MinKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	met, err := session.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := session.NewDirectory(sys.Root, session.Deps{Store: f.store, Hasher: hasher, Sender: f.sink, Now: f.clk.now,
		Metrics: met, Log: quiet}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Stop(5 * time.Second) })
	index, err := pii.NewBlindIndex(bytes.Repeat([]byte{2}, pii.MinIndexKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	keyring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{3}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	f.node = &Node{Sessions: dir, Index: index, Keyring: keyring, Revoked: f.revoked}
	d := Deps{Store: f.store, Tokens: f.tokens, Node: f.node, Registerer: f.reg, Logger: quiet, Now: f.clk.now,
		PhoneBlocked: func(_ context.Context, e164 string) (bool, error) {
			_, ok := f.blocked.Load(e164)
			return ok, nil
		}}
	for _, o := range opts {
		o(&d)
	}
	f.svc = New(d)
	return f
}

// anon is an anonymous caller of the fixture's requests.
var anon = service.Caller{RequestID: "req-test", IP: "203.0.113.7"}

// as is a caller signed in with the tokens of in.
func (f *fixture) as(in SignedIn) service.Caller {
	f.t.Helper()
	cl, err := f.tokens.Verify(in.AccessToken)
	if err != nil {
		f.t.Fatalf("access token: %v", err)
	}
	return service.Caller{Claims: cl, RequestID: "req-test", IP: "203.0.113.7"}
}

// admin is an operator's caller (no user row behind it).
func admin() service.Caller {
	return service.Caller{Claims: auth.Claims{Subject: "owner", Role: auth.RoleAdmin}, RequestID: "req-admin"}
}

// sendCode requests a code for phone, a quarter of an hour after the last
// one so the per-number send limits never bite, and returns it.
func (f *fixture) sendCode(phone string) string {
	f.t.Helper()
	f.clk.add(15 * time.Minute)
	ttl, err := f.svc.RequestCode(f.t.Context(), anon, CodeRequestInput{Phone: phone})
	if err != nil || ttl != 5*time.Minute {
		f.t.Fatalf("request code: %v, %v", ttl, err)
	}
	return f.sink.code(phone)
}

// signIn signs phone in with a fresh code.
func (f *fixture) signIn(phone string) SignedIn {
	f.t.Helper()
	out, err := f.svc.SignIn(f.t.Context(), anon, SignInInput{Phone: phone, Code: f.sendCode(phone), Device: "phone", UserAgent: "test\x01agent"})
	if err != nil {
		f.t.Fatalf("sign in: %v", err)
	}
	return out
}

// tx runs fn in a transaction of the fixture's store.
func (f *fixture) tx(fn func(ctx context.Context, tx persistence.Tx) error) {
	f.t.Helper()
	if err := f.store.InTx(f.t.Context(), func(tx persistence.Tx) error { return fn(f.t.Context(), tx) }); err != nil {
		f.t.Fatal(err)
	}
}

// audit returns the audit entries of subject, newest first.
func (f *fixture) audit(subject string) []persistence.AuditEntry {
	f.t.Helper()
	var list []persistence.AuditEntry
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: subject, Limit: 100})
		return err
	})
	return list
}

// wantCode fails unless err is the fault with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	fe, safe := fault.From(err)
	if err == nil || fe.Code != code || !safe {
		t.Fatalf("got %v, want %s", err, code)
	}
}

func TestSignIn(t *testing.T) {
	f := newFixture(t)
	first := f.signIn(maria)
	if first.Role != auth.RoleClient || first.UserID == "" || first.AccessTTL != 15*time.Minute || first.RefreshTTL != 30*24*time.Hour {
		t.Fatalf("signed in %+v", first)
	}
	cl := f.as(first)
	if cl.Subject != first.UserID || cl.SessionID != first.SessionID {
		t.Fatalf("claims %+v", cl.Claims)
	}
	// The number proved itself once: the second sign-in finds the user.
	if again := f.signIn(maria); again.UserID != first.UserID || again.SessionID == first.SessionID {
		t.Fatalf("second sign-in %+v", again)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		s, err := tx.SessionGet(ctx, first.SessionID)
		if err == nil && (s.IP != anon.IP || s.UserAgent != "testagent" || s.Device != "phone") {
			t.Errorf("session %+v", s)
		}
		return err
	})
}

func TestSignInRefusals(t *testing.T) {
	f := newFixture(t)
	f.blocked.Store(juan, true)
	code := f.sendCode(maria)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		in   SignInInput
		want string
	}{
		{"bad phone", SignInInput{Phone: "12", Code: code}, fault.CodeValidationFailed},
		{"landline", SignInInput{Phone: "+5716001234", Code: code}, fault.CodeValidationFailed},
		{"malformed code", SignInInput{Phone: maria, Code: "12"}, fault.CodeValidationFailed},
		{"device too long", SignInInput{Phone: maria, Code: code, Device: string(bytes.Repeat([]byte{'x'}, 65))}, fault.CodeValidationFailed},
		{"blocked", SignInInput{Phone: juan, Code: code}, fault.CodeBlocked},
		{"wrong code", SignInInput{Phone: maria, Code: wrong}, fault.CodeInvalidCode},
		{"never sent", SignInInput{Phone: "+573005555555", Code: code}, fault.CodeInvalidCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.SignIn(ctx, anon, tc.in)
			wantCode(t, err, tc.want)
		})
	}
	if _, err := f.svc.RequestCode(ctx, anon, CodeRequestInput{Phone: juan}); err == nil {
		t.Fatal("a blocked number was sent a code")
	} else {
		wantCode(t, err, fault.CodeBlocked)
	}
	_, err := f.svc.RequestCode(ctx, anon, CodeRequestInput{Phone: maria, Channel: "pigeon"})
	wantCode(t, err, fault.CodeValidationFailed)
	// The one wrong code above counted: four more lock the number, and
	// then even the right code gets otp_locked with a wait.
	for range 4 {
		_, err := f.svc.SignIn(ctx, anon, SignInInput{Phone: maria, Code: wrong})
		wantCode(t, err, fault.CodeInvalidCode)
	}
	_, err = f.svc.SignIn(ctx, anon, SignInInput{Phone: maria, Code: code})
	var w *Wait
	if !errors.As(err, &w) || w.After <= 0 {
		t.Fatalf("locked number: %v", err)
	}
	wantCode(t, err, fault.CodeOTPLocked)

	// Without a Node nothing signs in.
	bare := New(Deps{Store: f.store, Tokens: f.tokens, Logger: quiet})
	_, err = bare.RequestCode(ctx, anon, CodeRequestInput{Phone: maria})
	wantCode(t, err, fault.CodeUnavailable)
}

// TestSignInLimitsPerIP: the verify limiter caps checks per address, with
// a wait.
func TestSignInLimitsPerIP(t *testing.T) {
	lim := &countLimiter{limit: 2}
	f := newFixture(t, func(d *Deps) { d.Node.VerifyLimiter = lim })
	for i := range 3 {
		_, err := f.svc.SignIn(t.Context(), anon, SignInInput{Phone: maria, Code: "000000"})
		if i < 2 {
			wantCode(t, err, fault.CodeInvalidCode)
			continue
		}
		var w *Wait
		if !errors.As(err, &w) || w.After != time.Minute {
			t.Fatalf("third check: %v", err)
		}
		wantCode(t, err, fault.CodeRateLimited)
	}
	if lim.keys[LimitKey(anon.IP)] != 3 {
		t.Fatalf("limiter keys %v", lim.keys)
	}
}

func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	first := f.signIn(maria)
	f.clk.add(time.Minute)
	second, err := f.svc.Refresh(ctx, anon, RefreshInput{RefreshToken: first.RefreshToken})
	if err != nil || second.SessionID != first.SessionID || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: %+v, %v", second, err)
	}
	// The first token again: stolen or replayed. The session dies with
	// every token of it, on this node at once.
	_, err = f.svc.Refresh(ctx, anon, RefreshInput{RefreshToken: first.RefreshToken})
	wantCode(t, err, fault.CodeRefreshTokenInvalid)
	_, err = f.svc.Refresh(ctx, anon, RefreshInput{RefreshToken: second.RefreshToken})
	wantCode(t, err, fault.CodeRefreshTokenInvalid)
	if _, err := f.tokens.Verify(second.AccessToken); err == nil {
		t.Fatal("the revoked session's access token still verifies")
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		s, err := tx.SessionGet(ctx, first.SessionID)
		if err == nil && s.RevokeReason != RevokeRefreshReuse {
			t.Errorf("session %+v", s)
		}
		events, err := tx.OutboxPending(ctx, 100)
		n := 0
		for _, ev := range events {
			if ev.Type == "spa.v1.SessionsRevoked" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d SessionsRevoked events", n)
		}
		return err
	})
	_, err = f.svc.Refresh(ctx, anon, RefreshInput{})
	wantCode(t, err, fault.CodeValidationFailed)
	_, err = f.svc.Refresh(ctx, anon, RefreshInput{RefreshToken: "made-up"})
	wantCode(t, err, fault.CodeRefreshTokenInvalid)
}

func TestSessionsAndLogout(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// Callers are taken at sign-in: each sign-in moves the clock past the
	// previous access token's lifetime.
	a := f.as(f.signIn(maria))
	other := f.as(f.signIn(juan))
	b := f.signIn(maria)
	list, err := f.svc.MySessions(ctx, a)
	if err != nil || len(list) != 2 {
		t.Fatalf("sessions %+v, %v", list, err)
	}
	// Another user's session is as absent as a made-up one.
	wantCode(t, f.svc.RevokeMySession(ctx, a, other.SessionID), fault.CodeNotFound)
	f.as(b)
	if err := f.svc.RevokeMySession(ctx, a, b.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tokens.Verify(b.AccessToken); err == nil {
		t.Fatal("revoked session still verifies")
	}
	if err := f.svc.Logout(ctx, a); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.svc.MySessions(ctx, a); len(list) != 0 {
		t.Fatalf("after logout %+v", list)
	}
	if err := f.svc.LogoutAll(ctx, other); err != nil {
		t.Fatal(err)
	}
	if list, _ := f.svc.MySessions(ctx, other); len(list) != 0 {
		t.Fatalf("after logout-all %+v", list)
	}
	wantCode(t, f.svc.Logout(ctx, admin()), fault.CodeValidationFailed) // no session behind the token
}

func TestSetRolesAndRevokeUser(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	u := f.signIn(maria)
	setRoles := func(in SetRolesInput) ([]string, error) {
		var roles []string
		err := f.store.InTx(ctx, func(tx persistence.Tx) (err error) {
			roles, err = f.svc.SetRoles(ctx, tx, admin(), u.UserID, in)
			return err
		})
		return roles, err
	}
	for _, tc := range []struct {
		name string
		in   SetRolesInput
	}{
		{"none", SetRolesInput{}},
		{"unknown", SetRolesInput{Roles: []string{"root"}}},
		{"kiosk is a device's", SetRolesInput{Roles: []string{"kiosk"}}},
		{"reason too long", SetRolesInput{Roles: []string{"staff"}, Reason: string(bytes.Repeat([]byte{'x'}, 201))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := setRoles(tc.in)
			wantCode(t, err, fault.CodeValidationFailed)
		})
	}
	roles, err := setRoles(SetRolesInput{Roles: []string{"admin", "client", "admin"}, Reason: "owner"})
	if err != nil || len(roles) != 2 || roles[0] != "admin" || roles[1] != "client" {
		t.Fatalf("promote: %v, %v", roles, err)
	}
	if _, err := f.tokens.Verify(u.AccessToken); err != nil {
		t.Fatalf("a promotion revoked the session: %v", err)
	}
	// Demoted: the admin role must stop working now.
	if _, err := setRoles(SetRolesInput{Roles: []string{"client"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tokens.Verify(u.AccessToken); err == nil {
		t.Fatal("demoted admin's token still verifies")
	}
	entries := f.audit("user/" + u.UserID)
	if len(entries) != 2 || entries[0].Action != "user.roles" || entries[0].ActorID != "owner" || entries[0].RequestID != "req-admin" {
		t.Fatalf("audit %+v", entries)
	}
	var demote, promote map[string]any
	if json.Unmarshal(entries[0].Detail, &demote) != nil || json.Unmarshal(entries[1].Detail, &promote) != nil {
		t.Fatal("audit detail not JSON")
	}
	if demote["revoked_sessions"] != 1.0 || promote["reason"] != "owner" || promote["detail"].(map[string]any)["revoked_sessions"] != 0.0 {
		t.Fatalf("audit details %v / %v", demote, promote)
	}
	err = f.store.InTx(ctx, func(tx persistence.Tx) error {
		_, err := f.svc.SetRoles(ctx, tx, admin(), "nobody", SetRolesInput{Roles: []string{"staff"}})
		return err
	})
	wantCode(t, err, fault.CodeNotFound)

	again := f.signIn(maria)
	var revoked []string
	if err := f.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		revoked, err = f.svc.RevokeUser(ctx, tx, admin(), u.UserID, "lost phone")
		return err
	}); err != nil || len(revoked) != 1 || revoked[0] != again.SessionID {
		t.Fatalf("revoke user: %v, %v", revoked, err)
	}
	if entries := f.audit("user/" + u.UserID); entries[0].Action != "user.revoke_sessions" {
		t.Fatalf("audit %+v", entries[0])
	}
}

func TestMetricsCountLiveSessions(t *testing.T) {
	f := newFixture(t)
	f.signIn(maria)
	f.signIn(juan)
	if n, err := testutil.GatherAndCount(f.reg, "spa_sessions_active"); err != nil || n != 1 {
		t.Fatalf("gauge series %d, %v", n, err)
	}
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "spa_sessions_active" && mf.GetMetric()[0].GetGauge().GetValue() != 2 {
			t.Fatalf("active sessions %v", mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
}

func TestLimitKeyGroupsIPv6By64(t *testing.T) {
	cases := map[string]string{
		"203.0.113.7":           "203.0.113.7",
		"::ffff:203.0.113.7":    "::ffff:203.0.113.7", // 4in6 is an IPv4 client
		"2001:db8:1:2:aaaa::1":  "2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::99": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":       "2001:db8:1:3::/64",
		"not an ip":             "not an ip",
	}
	for in, want := range cases {
		if got := LimitKey(in); got != want {
			t.Errorf("LimitKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// countLimiter lets limit requests per key through, then refuses with a
// minute's wait.
type countLimiter struct {
	mu    sync.Mutex
	limit int
	keys  map[string]int
}

func (l *countLimiter) Allow(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]int{}
	}
	l.keys[key]++
	if l.keys[key] > l.limit {
		return &limiter.LimitedError{Scope: "ip", RetryAfter: time.Minute}
	}
	return nil
}

// TestSignInLockoutIsPerNetwork (issue 15 item 7): a stranger's wrong
// codes lock the number for the stranger's network only; its owner, on
// another network, still signs in.
func TestSignInLockoutIsPerNetwork(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	code := f.sendCode(maria)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	stranger := service.Caller{RequestID: "req-x", IP: "198.51.100.23"}
	for range otp.DefaultPolicy().MaxFailures {
		_, err := f.svc.SignIn(ctx, stranger, SignInInput{Phone: maria, Code: wrong})
		wantCode(t, err, fault.CodeInvalidCode)
	}
	stranger.IP = "198.51.100.24" // the same /24
	_, err := f.svc.SignIn(ctx, stranger, SignInInput{Phone: maria, Code: code})
	wantCode(t, err, fault.CodeOTPLocked)
	owner := service.Caller{RequestID: "req-o", IP: "203.0.113.7"}
	if _, err := f.svc.SignIn(ctx, owner, SignInInput{Phone: maria, Code: code}); err != nil {
		t.Fatalf("the owner on another network: %v", err)
	}
}
