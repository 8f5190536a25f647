package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var codeInBody = regexp.MustCompile(`\b[0-9]{6}\b`)

// codeSink is the Sender of these tests: it remembers the last code sent
// to each number.
type codeSink struct {
	mu    sync.Mutex
	codes map[string]string
	sent  int
}

func (s *codeSink) Send(_ context.Context, m sender.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[m.To] = codeInBody.FindString(m.Body)
	s.sent++
	return nil
}

func (s *codeSink) code(to string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codes[to]
}

// downable lets a test take the session actors' store down.
type downable struct {
	persistence.Store
	down atomic.Bool
}

func (d *downable) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	if d.down.Load() {
		return fmt.Errorf("test: %w", persistence.ErrUnavailable)
	}
	return d.Store.InTx(ctx, fn)
}

type idEnv struct {
	*env
	sink       *codeSink
	otpStore   *downable
	revoked    *auth.RevokedSessions
	perIPLimit int
	clk        *testClock
}

// testClock is the session actors' clock, so a test can wait out the
// resend interval without sleeping.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

const (
	maria = "+573001234567"
	juan  = "+573109876543"
)

// newIdentityEnv is a gateway with real session and limiter actors on its
// own SQLite store.
func newIdentityEnv(t *testing.T, perIP int) *idEnv {
	t.Helper()
	return newIdentityEnvWith(t, perIP, 0)
}

// newIdentityEnvWith also caps code checks per IP when verifyPerIP > 0.
func newIdentityEnvWith(t *testing.T, perIP, verifyPerIP int, extra ...envOpt) *idEnv {
	t.Helper()
	ie := &idEnv{sink: &codeSink{codes: map[string]string{}}, perIPLimit: perIP, clk: &testClock{}}
	ie.clk.ns.Store(time.Now().UnixNano())
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(sys.Shutdown)
	ie.env = newEnv(t, func(d *Deps) {
		ie.otpStore = &downable{Store: d.Store}
		hasher, err := otp.NewHasher(bytes.Repeat([]byte{1}, otp.MinKeyLen))
		if err != nil {
			t.Fatal(err)
		}
		met, _ := session.NewMetrics(prometheus.NewRegistry())
		dir, err := session.NewDirectory(sys.Root, session.Deps{Store: ie.otpStore, Hasher: hasher, Sender: ie.sink, Now: ie.clk.now,
			Metrics: met, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dir.Stop(5 * time.Second) })
		lim, err := limiter.New(sys.Root, limiter.Config{Name: "otp", PerKey: limiter.Window{Limit: perIP, Per: time.Hour},
			Global: limiter.Window{Limit: 1000, Per: time.Hour}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Stop)
		index, _ := pii.NewBlindIndex(bytes.Repeat([]byte{2}, pii.MinIndexKeyLen))
		keyring, _ := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{3}, pii.KeyLen)}})
		ie.revoked = auth.NewRevokedSessions(15*time.Minute, nil)
		d.Tokens.SetRevocations(ie.revoked)
		d.BlindIndex = index // the person blocklist's
		d.Identity = &Identity{Sessions: dir, Limiter: lim, Index: index, Keyring: keyring, Revoked: ie.revoked}
		if verifyPerIP > 0 {
			vl, err := limiter.New(sys.Root, limiter.Config{Name: "otp-verify", PerKey: limiter.Window{Limit: verifyPerIP, Per: time.Hour},
				Global: limiter.Window{Limit: 1000, Per: time.Hour}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(vl.Stop)
			d.Identity.VerifyLimiter = vl
		}
		for _, o := range extra {
			o(d)
		}
	})
	return ie
}

func jsonHdr(token string, extra ...string) []string {
	h := append([]string{"Content-Type", "application/json"}, extra...)
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	return h
}

func (ie *idEnv) requestCode(phone string) result {
	ie.t.Helper()
	return ie.do("POST", "/v1/auth/otp", `{"phone":"`+phone+`"}`, jsonHdr("")...)
}

func (ie *idEnv) verify(phone, code string) result {
	ie.t.Helper()
	return ie.do("POST", "/v1/auth/otp/verify", `{"phone":"`+phone+`","code":"`+code+`","device":"test phone"}`,
		jsonHdr("", "User-Agent", "spa-test/1.0")...)
}

type pair struct {
	Access, Refresh, Session, User, Role string
}

func (ie *idEnv) pair(t *testing.T, r result) pair {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	m := r.json(t)
	return pair{m["access_token"].(string), m["refresh_token"].(string), m["session_id"].(string), m["user_id"].(string), m["role"].(string)}
}

func (ie *idEnv) signIn(t *testing.T, phone string) pair {
	t.Helper()
	ie.clk.add(otp.DefaultPolicy().ResendAfter) // past any earlier request's resend wait
	if r := ie.requestCode(phone); r.status != 202 {
		t.Fatalf("request code: %d %s", r.status, r.body)
	}
	return ie.pair(t, ie.verify(phone, ie.sink.code(phone)))
}

func (ie *idEnv) refresh(tok string) result {
	ie.t.Helper()
	return ie.do("POST", "/v1/auth/refresh", `{"refresh_token":"`+tok+`"}`, jsonHdr("")...)
}

func TestIdentitySignInRefreshReuse(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	p := ie.signIn(t, maria)
	if p.Role != "client" {
		t.Fatalf("role %q", p.Role)
	}
	claims, err := ie.tokens.Verify(p.Access)
	if err != nil || claims.SessionID != p.Session || claims.Subject != p.User {
		t.Fatalf("access token claims %+v, %v", claims, err)
	}

	r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(p.Access)...)
	if r.status != 200 {
		t.Fatalf("sessions: %d %s", r.status, r.body)
	}
	var list struct {
		Sessions []sessionJSON `json:"sessions"`
	}
	_ = json.Unmarshal(r.body, &list)
	if len(list.Sessions) != 1 || !list.Sessions[0].Current || list.Sessions[0].Device != "test phone" || list.Sessions[0].UserAgent != "spa-test/1.0" {
		t.Fatalf("sessions: %s", r.body)
	}

	// Signing in again with the same number finds the same user.
	if again := ie.signIn(t, maria); again.User != p.User || again.Session == p.Session {
		t.Fatalf("second sign-in: %+v vs %+v", again, p)
	}

	next := ie.pair(t, ie.refresh(p.Refresh))
	if next.Session != p.Session || next.Refresh == p.Refresh {
		t.Fatalf("refresh: %+v", next)
	}
	// The old refresh token again: reuse. The session is revoked: the new
	// refresh token and the access tokens of the session stop working.
	if r := ie.refresh(p.Refresh); r.status != 401 || r.errCode(t) != "refresh_token_invalid" {
		t.Fatalf("reuse: %d %s", r.status, r.body)
	}
	if r := ie.refresh(next.Refresh); r.status != 401 {
		t.Fatalf("the family's newest token after reuse: %d %s", r.status, r.body)
	}
	for _, tok := range []string{p.Access, next.Access} {
		if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(tok)...); r.status != 401 {
			t.Fatalf("access token of the revoked session: %d %s", r.status, r.body)
		}
	}
	_, outbox := ie.effects()
	var ev messages.Event
	var sr messages.SessionsRevoked
	found := false
	for _, o := range outbox {
		if o.Subject == messages.Subject(&messages.SessionsRevoked{}) {
			if err := proto.Unmarshal(o.Payload, &ev); err != nil || ev.Payload.UnmarshalTo(&sr) != nil {
				t.Fatal("undecodable event")
			}
			found = sr.Reason == identity.RevokeRefreshReuse && len(sr.SessionIds) == 1 && sr.SessionIds[0] == p.Session && sr.UserId == p.User
		}
	}
	if !found {
		t.Fatalf("no SessionsRevoked event for the reuse in %d outbox events (last %+v)", len(outbox), &sr)
	}
	if r := ie.refresh("not-a-token"); r.status != 401 || r.errCode(t) != "refresh_token_invalid" {
		t.Fatalf("unknown token: %d %s", r.status, r.body)
	}
}

// TestIdentityNoEnumeration: a number with a user and one without get the
// same answers to a code request and to a wrong code.
func TestIdentityNoEnumeration(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	ie.signIn(t, maria) // maria has a user now; juan has none
	ie.clk.add(time.Minute)
	a, b := ie.requestCode(maria), ie.requestCode(juan)
	if a.status != 202 || a.status != b.status || !bytes.Equal(a.body, b.body) {
		t.Fatalf("request answers differ: %d %s / %d %s", a.status, a.body, b.status, b.body)
	}
	wa, wb := ie.verify(maria, "000000"), ie.verify(juan, "000000")
	if wa.status != 400 || wa.errCode(t) != "invalid_code" || wb.status != wa.status || !bytes.Equal(stripRequestID(wa.body), stripRequestID(wb.body)) {
		t.Fatalf("wrong-code answers differ: %d %s / %d %s", wa.status, wa.body, wb.status, wb.body)
	}
}

var requestIDField = regexp.MustCompile(`"request_id":"[^"]*"`)

func stripRequestID(b []byte) []byte { return requestIDField.ReplaceAll(b, nil) }

func TestIdentityLockout(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	if r := ie.requestCode(maria); r.status != 202 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	code := ie.sink.code(maria)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := range otp.DefaultPolicy().MaxFailures {
		if r := ie.verify(maria, wrong); r.status != 400 || r.errCode(t) != "invalid_code" {
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	r := ie.verify(maria, code)
	if r.status != 429 || r.errCode(t) != "otp_locked" {
		t.Fatalf("right code during lockout: %d %s", r.status, r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if r := ie.requestCode(maria); r.status != 429 || r.errCode(t) != "otp_locked" {
		t.Fatalf("new code during lockout: %d %s", r.status, r.body)
	}
}

func TestIdentityBadInput(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/v1/auth/otp", `{"phone":"12"}`, 422, "validation_failed"},
		{"/v1/auth/otp", `{"phone":"+5716000000"}`, 422, "validation_failed"}, // a landline
		{"/v1/auth/otp", `{"phone":"` + maria + `","channel":"pigeon"}`, 422, "validation_failed"},
		{"/v1/auth/otp", `{"phone":1}`, 400, "bad_request"},
		{"/v1/auth/otp", `{"phone":"` + maria + `","extra":1}`, 400, "bad_request"},
		{"/v1/auth/otp/verify", `{"phone":"` + maria + `","code":"12ab56"}`, 422, "validation_failed"},
		{"/v1/auth/otp/verify", `{"phone":"` + maria + `","code":"123456","device":"` + string(bytes.Repeat([]byte("x"), 65)) + `"}`, 422, "validation_failed"},
		{"/v1/auth/refresh", `{}`, 422, "validation_failed"},
	} {
		r := ie.do("POST", tc.path, tc.body, jsonHdr("")...)
		if r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.path, tc.body, r.status, r.body, tc.status, tc.code)
		}
	}
	// An operator token has no session to log out.
	op := ie.token("operator", auth.RoleAdmin)
	if r := ie.do("POST", "/v1/auth/logout", "", jsonHdr(op)...); r.status != 422 {
		t.Fatalf("logout without a session: %d %s", r.status, r.body)
	}
	if r := ie.do("POST", "/v1/auth/logout", "", jsonHdr("")...); r.status != 401 {
		t.Fatalf("anonymous logout: %d %s", r.status, r.body)
	}
}

func TestIdentityPerIPLimit(t *testing.T) {
	ie := newIdentityEnv(t, 2)
	for _, p := range []string{maria, juan} {
		if r := ie.requestCode(p); r.status != 202 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	r := ie.requestCode("+573005555555")
	if r.status != 429 || r.errCode(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("third number from one IP: %d %s", r.status, r.body)
	}
	if ie.sink.sent != 2 {
		t.Fatalf("%d codes sent", ie.sink.sent)
	}
}

func TestIdentityStoreDownIs503(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	ie.otpStore.down.Store(true)
	r := ie.requestCode(maria)
	if r.status != 503 || r.errCode(t) != "unavailable" {
		t.Fatalf("store down: %d %s", r.status, r.body)
	}
	if ie.sink.sent != 0 {
		t.Fatal("a code was sent with the store down")
	}
	ie.otpStore.down.Store(false)
	if r := ie.requestCode(maria); r.status != 202 {
		t.Fatalf("store back: %d %s", r.status, r.body)
	}
}

func TestIdentityLogoutAndSessions(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	phone := ie.signIn(t, maria)
	laptop := ie.signIn(t, maria)
	other := ie.signIn(t, juan)
	sessions := func(tok string) int {
		t.Helper()
		r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(tok)...)
		if r.status != 200 {
			t.Fatalf("sessions: %d %s", r.status, r.body)
		}
		return len(r.json(t)["sessions"].([]any))
	}
	if n := sessions(phone.Access); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	// Another user's session is not found, and stays live.
	if r := ie.do("DELETE", "/v1/me/sessions/"+phone.Session, "", jsonHdr(other.Access)...); r.status != 404 {
		t.Fatalf("deleting another user's session: %d %s", r.status, r.body)
	}
	if r := ie.do("DELETE", "/v1/me/sessions/"+laptop.Session, "", jsonHdr(phone.Access)...); r.status != 204 {
		t.Fatalf("sign the laptop out: %d %s", r.status, r.body)
	}
	if r := ie.refresh(laptop.Refresh); r.status != 401 {
		t.Fatalf("laptop refresh after sign-out: %d", r.status)
	}
	if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(laptop.Access)...); r.status != 401 {
		t.Fatalf("laptop access after sign-out: %d", r.status)
	}
	if n := sessions(phone.Access); n != 1 {
		t.Fatalf("%d sessions after signing the laptop out", n)
	}
	if r := ie.do("POST", "/v1/auth/logout", "", jsonHdr(phone.Access)...); r.status != 204 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := ie.refresh(phone.Refresh); r.status != 401 {
		t.Fatalf("refresh after logout: %d", r.status)
	}
	if n := sessions(other.Access); n != 1 {
		t.Fatalf("juan's sessions: %d", n)
	}
	second := ie.signIn(t, juan)
	if r := ie.do("POST", "/v1/auth/logout-all", "", jsonHdr(other.Access)...); r.status != 204 {
		t.Fatalf("logout-all: %d %s", r.status, r.body)
	}
	for _, tok := range []string{other.Access, second.Access} {
		if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(tok)...); r.status != 401 {
			t.Fatalf("access after logout-all: %d", r.status)
		}
	}
}

func TestIdentityAdmin(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	p := ie.signIn(t, maria)
	admin := ie.token("owner", auth.RoleAdmin)
	client := ie.token("someone", auth.RoleClient)
	body := `{"roles":["staff","client","staff"],"reason":"hired"}`
	if r := ie.do("PUT", "/v1/admin/users/"+p.User+"/roles", body, jsonHdr(client)...); r.status != 403 {
		t.Fatalf("client sets roles: %d", r.status)
	}
	r := ie.do("PUT", "/v1/admin/users/"+p.User+"/roles", body, jsonHdr(admin)...)
	if r.status != 200 || fmt.Sprint(r.json(t)["roles"]) != "[client staff]" {
		t.Fatalf("set roles: %d %s", r.status, r.body)
	}
	for _, bad := range []string{`{"roles":[]}`, `{"roles":["root"]}`} {
		if r := ie.do("PUT", "/v1/admin/users/"+p.User+"/roles", bad, jsonHdr(admin)...); r.status != 422 {
			t.Fatalf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := ie.do("PUT", "/v1/admin/users/nobody/roles", body, jsonHdr(admin)...); r.status != 404 {
		t.Fatalf("unknown user: %d %s", r.status, r.body)
	}
	// The next refresh carries the new role.
	next := ie.pair(t, ie.refresh(p.Refresh))
	if next.Role != "staff" {
		t.Fatalf("role after refresh: %q", next.Role)
	}
	r = ie.do("POST", "/v1/admin/users/"+p.User+"/revoke", `{"reason":"lost phone"}`, jsonHdr(admin)...)
	if r.status != 200 || r.json(t)["revoked_sessions"] != float64(1) {
		t.Fatalf("admin revoke: %d %s", r.status, r.body)
	}
	if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(next.Access)...); r.status != 401 {
		t.Fatalf("access after admin revocation: %d", r.status)
	}
	audit, _ := ie.effects()
	actions := map[string]bool{}
	for _, a := range audit {
		actions[a.Action] = true
		if a.Action == "user.roles" && !bytes.Contains(a.Detail, []byte(`"from":["client"]`)) {
			t.Fatalf("roles audit detail: %s", a.Detail)
		}
	}
	if !actions["user.roles"] || !actions["user.revoke_sessions"] {
		t.Fatalf("audit actions %v", actions)
	}
}

// TestIdentityNotConfigured: without Deps.Identity the routes exist (they
// are documented) and answer 503.
func TestIdentityNotConfigured(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/auth/otp", `{"phone":"`+maria+`"}`, jsonHdr("")...)
	if r.status != 503 || r.errCode(t) != "unavailable" {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestIdentityBlockedPhone: a number on the person blocklist gets 403
// blocked, and no code.
func TestIdentityBlockedPhone(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	admin := ie.token("owner", auth.RoleAdmin)
	r := ie.do("POST", "/v1/admin/blocks", `{"kind":"phone","value":"3001234567","reason":"abuse"}`, jsonHdr(admin)...)
	if r.status != 201 {
		t.Fatalf("block: %d %s", r.status, r.body)
	}
	if r := ie.requestCode(maria); r.status != 403 || r.errCode(t) != "blocked" {
		t.Fatalf("blocked number: %d %s", r.status, r.body)
	}
	if r := ie.verify(maria, "123456"); r.status != 403 || r.errCode(t) != "blocked" {
		t.Fatalf("blocked number verifies: %d %s", r.status, r.body)
	}
	if ie.sink.sent != 0 {
		t.Fatal("a code was sent to a blocked number")
	}
	if r := ie.requestCode(juan); r.status != 202 {
		t.Fatalf("another number: %d %s", r.status, r.body)
	}
}

// TestIdentityVerifyPerIPLimit: one client spreading guesses over many
// numbers is stopped by the per-IP cap on checks, before any number locks.
func TestIdentityVerifyPerIPLimit(t *testing.T) {
	ie := newIdentityEnvWith(t, 100, 3)
	numbers := []string{maria, juan, "+573005555555"}
	for _, n := range numbers {
		if r := ie.verify(n, "000000"); r.status != 400 {
			t.Fatalf("%s: %d %s", n, r.status, r.body)
		}
	}
	r := ie.verify("+573006666666", "000000")
	if r.status != 429 || r.errCode(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("fourth check from one IP: %d %s", r.status, r.body)
	}
}
