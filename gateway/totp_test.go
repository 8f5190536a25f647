package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence/pgtest"

	"github.com/anishathalye/porcupine"
	"github.com/asynkron/protoactor-go/actor"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/auth/totp"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/persistence"
)

// mfaEnv is a gateway with real session and limiter actors (and, for the
// kiosk, schedule actors) that all read one test clock, so TOTP steps,
// code expiry and check-in windows are under the test's control.
type mfaEnv struct {
	*idEnv
	reg      *prometheus.Registry
	auth     *totp.Authenticator
	identity *Identity
}

// newMFAEnv starts at start; withCalendars adds schedule actors and a
// 30-minute facial that therapist ana gives.
func newMFAEnv(t *testing.T, start time.Time, withCalendars bool, opts ...envOpt) *mfaEnv {
	t.Helper()
	return newMFAEnvOn(t, nil, start, withCalendars, opts...)
}

// newMFAEnvOn is newMFAEnv on store (nil: the default SQLite one).
func newMFAEnvOn(t *testing.T, store persistence.Store, start time.Time, withCalendars bool, opts ...envOpt) *mfaEnv {
	t.Helper()
	me := &mfaEnv{idEnv: &idEnv{sink: &codeSink{codes: map[string]string{}}, perIPLimit: 1000, clk: &testClock{}},
		reg: prometheus.NewRegistry()}
	me.clk.ns.Store(start.UnixNano())
	a, err := totp.New(totp.Config{Issuer: "Spa"})
	if err != nil {
		t.Fatal(err)
	}
	me.auth = a
	quiet := func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
	sys := actor.NewActorSystem(actor.WithLoggerFactory(quiet))
	t.Cleanup(sys.Shutdown)
	me.env = newEnv(t, append([]envOpt{func(d *Deps) {
		if store != nil {
			d.Store = store
		}
		d.Now, d.Registerer = me.clk.now, me.reg
		me.otpStore = &downable{Store: d.Store}
		hasher, err := otp.NewHasher(bytes.Repeat([]byte{1}, otp.MinKeyLen))
		if err != nil {
			t.Fatal(err)
		}
		met, _ := session.NewMetrics(prometheus.NewRegistry())
		dir, err := session.NewDirectory(sys.Root, session.Deps{Store: me.otpStore, Hasher: hasher, Sender: me.sink, Now: me.clk.now,
			Metrics: met, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dir.Stop(5 * time.Second) })
		lim, err := limiter.New(sys.Root, limiter.Config{Name: "otp", PerKey: limiter.Window{Limit: 1000, Per: time.Hour},
			Global: limiter.Window{Limit: 1000, Per: time.Hour}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(lim.Stop)
		index, _ := pii.NewBlindIndex(bytes.Repeat([]byte{2}, pii.MinIndexKeyLen))
		keyring, _ := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{3}, pii.KeyLen)}})
		me.revoked = auth.NewRevokedSessions(15*time.Minute, me.clk.now)
		d.Tokens.SetRevocations(me.revoked)
		d.BlindIndex = index
		d.Identity = &Identity{Sessions: dir, Limiter: lim, Index: index, Keyring: keyring, Revoked: me.revoked}
		me.identity = d.Identity
		if withCalendars {
			m, err := schedule.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			cal, err := schedule.NewDirectory(sys.Root, schedule.Deps{Store: d.Store, Now: me.clk.now, Metrics: m,
				Config: schedule.Config{Step: 30 * time.Minute}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cal.Stop(5 * time.Second) })
			d.Calendars = schedule.NewClient(cal)
		}
	}}, opts...)...)
	if store != nil {
		me.store = store
	}
	if withCalendars {
		hours := `{"start":"08:00","end":"18:00"}`
		week := `{"sunday":[` + hours + `],"monday":[` + hours + `],"tuesday":[` + hours + `],"wednesday":[` + hours +
			`],"thursday":[` + hours + `],"friday":[` + hours + `],"saturday":[` + hours + `]}`
		if r := me.admin("PUT", "/v1/admin/staff/ana", `{"name":"Ana","skills":["facial"],"time_zone":"America/Bogota","active":true,"version":0,"weekly_hours":`+week+`}`); r.status != 200 {
			t.Fatalf("staff: %d %s", r.status, r.body)
		}
		if r := me.admin("PUT", "/v1/admin/services/facial", `{"name":"Facial","category":"face","duration_minutes":30,"price_minor":8000000,
			"required_skills":["facial"],"cancel_cutoff_minutes":120,"active":true,"version":0}`); r.status != 200 {
			t.Fatalf("service: %d %s", r.status, r.body)
		}
	}
	return me
}

// mfaDrivers lists the stores the second-factor and kiosk tests run on:
// SQLite always, PostgreSQL (a fresh schema) when TEST_DATABASE_URL is set.
func mfaDrivers(t *testing.T) map[string]func(t *testing.T) persistence.Store {
	d := map[string]func(*testing.T) persistence.Store{"sqlite": func(*testing.T) persistence.Store { return nil }}
	if pgtest.Available(t) {
		d["postgres"] = func(t *testing.T) persistence.Store { return pgtest.Open(t, "gateway", persistence.Options{}) }
	}
	return d
}

// promote gives the user roles directly in the store.
func (me *mfaEnv) promote(t *testing.T, userID string, roles ...string) {
	t.Helper()
	if err := me.store.InTx(t.Context(), func(tx persistence.Tx) error {
		return tx.UserSetRoles(t.Context(), userID, roles, me.clk.now())
	}); err != nil {
		t.Fatal(err)
	}
}

// code is the authenticator's code for secret, offset steps from now.
func (me *mfaEnv) code(t *testing.T, secret string, offset int) string {
	t.Helper()
	c, err := me.auth.CodeAt(secret, me.clk.now().Add(time.Duration(offset)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrong is a well-formed code that matches none of the steps accepted now.
func (me *mfaEnv) wrong(t *testing.T, secret string) string {
	t.Helper()
	near := map[string]bool{me.code(t, secret, -1): true, me.code(t, secret, 0): true, me.code(t, secret, 1): true}
	for i := 0; ; i++ {
		c := strings.Repeat(strconv.Itoa(i%10), 6)
		if !near[c] {
			return c
		}
	}
}

// firstFactor requests and checks a login code, a quarter of an hour
// later than the previous one so the per-number send limit never bites.
func (me *mfaEnv) firstFactor(t *testing.T, phone string) result {
	t.Helper()
	me.clk.add(15 * time.Minute)
	if r := me.requestCode(phone); r.status != 202 {
		t.Fatalf("request code: %d %s", r.status, r.body)
	}
	return me.verify(phone, me.sink.code(phone))
}

// challenge signs in with the login code and expects mfa_required.
func (me *mfaEnv) challenge(t *testing.T, phone string) string {
	t.Helper()
	r := me.firstFactor(t, phone)
	if r.status != 401 || r.errCode(t) != "mfa_required" || r.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("want 401 mfa_required: %d %s", r.status, r.body)
	}
	details := r.json(t)["error"].(map[string]any)["details"].(map[string]any)
	if details["mfa_expires_in"].(float64) != 300 {
		t.Fatalf("details %v", details)
	}
	return details["mfa_challenge"].(string)
}

// storeChallenge creates a second-factor challenge in the store, as a
// login code would, without moving the clock.
func (me *mfaEnv) storeChallenge(t *testing.T, userID string) string {
	t.Helper()
	tok := ulid.Make().String()
	now := me.clk.now()
	if err := me.store.InTx(t.Context(), func(tx persistence.Tx) error {
		return tx.MFAChallengeCreate(t.Context(), persistence.MFAChallenge{Hash: identity.HashChallenge(tok), UserID: userID,
			Device: "test", CreatedAt: now, ExpiresAt: now.Add(5 * time.Minute)})
	}); err != nil {
		t.Fatal(err)
	}
	return tok
}

func (me *mfaEnv) secondFactor(challenge, code string) result {
	me.t.Helper()
	return me.do("POST", "/v1/auth/totp", `{"challenge":"`+challenge+`","code":"`+code+`"}`, jsonHdr("")...)
}

// staffWithTOTP signs phone in, makes the user staff, enrols and confirms
// a factor, and returns a staff access token, the secret and the recovery
// codes.
func (me *mfaEnv) staffWithTOTP(t *testing.T, phone string) (string, string, []string) {
	t.Helper()
	p := me.pair(t, me.firstFactor(t, phone))
	me.promote(t, p.User, "client", "staff")
	staff := me.pair(t, me.firstFactor(t, phone)) // no factor yet: straight in
	if staff.Role != "staff" {
		t.Fatalf("role %q", staff.Role)
	}
	r := me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(staff.Access)...)
	if r.status != 201 {
		t.Fatalf("enrol: %d %s", r.status, r.body)
	}
	enr := decode[enrolmentJSON](t, r)
	r = me.do("POST", "/v1/me/totp/confirm", `{"code":"`+me.code(t, enr.Secret, 0)+`"}`, jsonHdr(staff.Access)...)
	if r.status != 200 {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	return staff.Access, enr.Secret, decode[recoveryCodesJSON](t, r).RecoveryCodes
}

func TestTOTPEnrolmentAndStepUp(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), false)
			p := me.pair(t, me.firstFactor(t, maria))
			me.promote(t, p.User, "client", "staff")
			staff := me.pair(t, me.firstFactor(t, maria))

			// Clients have no second factor.
			client := me.pair(t, me.firstFactor(t, juan))
			if r := me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(client.Access)...); r.status != 403 {
				t.Fatalf("client enrols: %d %s", r.status, r.body)
			}

			r := me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(staff.Access)...)
			if r.status != 201 {
				t.Fatalf("enrol: %d %s", r.status, r.body)
			}
			enr := decode[enrolmentJSON](t, r)
			if !strings.HasPrefix(enr.OTPAuthURI, "otpauth://totp/Spa:") || !strings.Contains(enr.OTPAuthURI, "issuer=Spa") ||
				!strings.Contains(enr.OTPAuthURI, "secret="+enr.Secret) || strings.Contains(enr.OTPAuthURI, maria[4:]) {
				t.Fatalf("otpauth URI %q (the phone must be masked)", enr.OTPAuthURI)
			}
			// At rest the secret is sealed, bound to its user.
			var f persistence.TOTPFactor
			if err := me.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
				f, err = tx.TOTPFactorGet(t.Context(), staff.User)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if f.Confirmed() || bytes.Contains(f.SecretCipher, []byte(enr.Secret)) {
				t.Fatalf("pending factor confirmed=%v or secret stored in the clear", f.Confirmed())
			}
			// Pending: sign-in does not ask for it yet.
			if r := me.firstFactor(t, maria); r.status != 200 {
				t.Fatalf("sign-in with a pending factor: %d %s", r.status, r.body)
			}

			if r := me.do("POST", "/v1/me/totp/confirm", `{"code":"`+me.wrong(t, enr.Secret)+`"}`, jsonHdr(staff.Access)...); r.status != 400 || r.errCode(t) != "invalid_code" {
				t.Fatalf("confirm with a wrong code: %d %s", r.status, r.body)
			}
			if r := me.do("POST", "/v1/me/totp/confirm", `{"code":"12ab"}`, jsonHdr(staff.Access)...); r.status != 400 || r.errCode(t) != "invalid_code" {
				t.Fatalf("confirm with a recovery-shaped code: %d %s", r.status, r.body)
			}
			if r := me.do("POST", "/v1/me/totp/confirm", `{"code":""}`, jsonHdr(staff.Access)...); r.status != 422 {
				t.Fatalf("confirm without a code: %d %s", r.status, r.body)
			}
			first := me.code(t, enr.Secret, 0)
			r = me.do("POST", "/v1/me/totp/confirm", `{"code":"`+first+`"}`, jsonHdr(staff.Access)...)
			if r.status != 200 {
				t.Fatalf("confirm: %d %s", r.status, r.body)
			}
			recovery := decode[recoveryCodesJSON](t, r).RecoveryCodes
			if len(recovery) != 10 {
				t.Fatalf("%d recovery codes", len(recovery))
			}
			if r := me.do("POST", "/v1/me/totp/confirm", `{"code":"`+first+`"}`, jsonHdr(staff.Access)...); r.status != 409 {
				t.Fatalf("confirm twice: %d %s", r.status, r.body)
			}
			if r := me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(staff.Access)...); r.status != 409 {
				t.Fatalf("enrol while enabled: %d %s", r.status, r.body)
			}

			// Sign-in now stops at the second factor. The clock moved on a
			// quarter of an hour, so the code of "now" is fresh.
			ch := me.challenge(t, maria)
			code := me.code(t, enr.Secret, 0)
			r = me.secondFactor(ch, code)
			signedIn := me.pair(t, r)
			if signedIn.Role != "staff" || signedIn.User != staff.User {
				t.Fatalf("signed in as %+v", signedIn)
			}
			if r := me.secondFactor(ch, me.code(t, enr.Secret, 1)); r.status != 401 {
				t.Fatalf("challenge used twice: %d %s", r.status, r.body)
			}
			// The same code again, on a new challenge in the same step: replayed.
			ch = me.storeChallenge(t, staff.User)
			if r := me.secondFactor(ch, code); r.status != 400 || r.errCode(t) != "invalid_code" {
				t.Fatalf("replayed code: %d %s", r.status, r.body)
			}
			if r := me.secondFactor(ch, recovery[0]); r.status != 200 {
				t.Fatalf("recovery code: %d %s", r.status, r.body)
			}
			ch = me.challenge(t, maria)
			if r := me.secondFactor(ch, strings.ToUpper(recovery[0])); r.status != 400 {
				t.Fatalf("recovery code used twice: %d %s", r.status, r.body)
			}
			if r := me.secondFactor("not-a-challenge", me.code(t, enr.Secret, 0)); r.status != 401 || r.header.Get("WWW-Authenticate") != "Bearer" {
				t.Fatalf("unknown challenge: %d %s", r.status, r.body)
			}
			st := decode[totpStatusJSON](t, me.do("GET", "/v1/me/totp", "", jsonHdr(staff.Access)...))
			if !st.Enabled || st.Pending || st.RecoveryCodesRemaining != 9 {
				t.Fatalf("status %+v", st)
			}

			// Disable needs a code; then sign-in goes straight through again.
			if r := me.do("POST", "/v1/me/totp/disable", `{"code":"`+recovery[0]+`"}`, jsonHdr(staff.Access)...); r.status != 400 {
				t.Fatalf("disable with a spent recovery code: %d %s", r.status, r.body)
			}
			if r := me.do("POST", "/v1/me/totp/disable", `{"code":"`+recovery[1]+`"}`, jsonHdr(staff.Access)...); r.status != 204 {
				t.Fatalf("disable: %d %s", r.status, r.body)
			}
			if r := me.firstFactor(t, maria); r.status != 200 {
				t.Fatalf("sign-in after disable: %d %s", r.status, r.body)
			}
			if got := me.counter(t, "spa_totp_verifications_total", "recovery"); got != 2 {
				t.Fatalf("recovery outcomes counted %v, want 2", got)
			}
			audit := me.admin("GET", "/v1/admin/audit?subject=user/"+staff.User, "")
			for _, action := range []string{"totp.enrol", "totp.enable", "totp.disable"} {
				if !bytes.Contains(audit.body, []byte(`"`+action+`"`)) {
					t.Fatalf("audit lacks %s: %s", action, audit.body)
				}
			}
		})
	}
}

// counter reads one labelled value of a counter from the env's registry
// (0 when the series does not exist yet).
func (me *mfaEnv) counter(t *testing.T, name, outcome string) float64 {
	t.Helper()
	mfs, err := me.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestTOTPBruteForceLockout: guessing codes locks the factor within the
// limit, the lock holds the right code out too, it is per user (a new
// challenge does not reset it), and it lives in the store, so a gateway
// built afresh on the same store (a restart) still refuses.
func TestTOTPBruteForceLockout(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), false)
			_, secret, _ := me.staffWithTOTP(t, maria)
			ch := me.challenge(t, maria)
			wrong := me.wrong(t, secret)
			for i := 1; i <= 4; i++ {
				if r := me.secondFactor(ch, wrong); r.status != 400 {
					t.Fatalf("wrong code %d: %d %s", i, r.status, r.body)
				}
			}
			r := me.secondFactor(ch, wrong)
			if r.status != 429 || r.errCode(t) != "otp_locked" || r.header.Get("Retry-After") != "300" {
				t.Fatalf("fifth wrong code: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			if r := me.secondFactor(ch, me.code(t, secret, 0)); r.status != 429 {
				t.Fatalf("right code while locked: %d %s", r.status, r.body)
			}

			// A restart: a new gateway over the same store still refuses.
			app, err := New(Deps{Store: me.store, Tokens: me.tokens, Identity: me.identity, Now: me.clk.now,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			again := &env{t: t, app: app, store: me.store, tokens: me.tokens, logs: &bytes.Buffer{}}
			if r := again.do("POST", "/v1/auth/totp", `{"challenge":"`+ch+`","code":"`+me.code(t, secret, 0)+`"}`, jsonHdr("")...); r.status != 429 {
				t.Fatalf("right code after a restart, still locked: %d %s", r.status, r.body)
			}

			// The lock is the user's, not the challenge's; once it ends the right
			// code works, and the count starts again from zero.
			ch = me.challenge(t, maria) // a quarter of an hour later: unlocked
			if r := me.secondFactor(ch, me.code(t, secret, 0)); r.status != 200 {
				t.Fatalf("right code after the lockout: %d %s", r.status, r.body)
			}
			ch = me.challenge(t, maria)
			for i := 1; i <= 5; i++ {
				r := me.secondFactor(ch, me.wrong(t, secret))
				if want := map[bool]int{true: 429, false: 400}[i == 5]; r.status != want {
					t.Fatalf("wrong code %d after a success: %d %s", i, r.status, r.body)
				}
			}
			// Without a success between, each further wrong code doubles the lock.
			me.clk.add(5*time.Minute + time.Second)
			r = me.secondFactor(me.challenge(t, maria), me.wrong(t, secret))
			if r.status != 429 || r.header.Get("Retry-After") != "600" {
				t.Fatalf("wrong code after the lock ended: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			if got := me.counter(t, "spa_totp_verifications_total", "locked"); got != 1 {
				t.Fatalf("locked outcomes %v, want 1 (the refusal while locked)", got)
			}
		})
	}
}

// TestTOTPConcurrentCodesLinearizable: clients present codes of three
// neighbouring steps at once, each on its own challenge. Whatever the
// interleaving, the answers must be explainable by one order of atomic
// checks against "the last accepted step" (porcupine), so no code is
// accepted twice and no older step after a newer one.
func TestTOTPConcurrentCodesLinearizable(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), false, func(d *Deps) {
				d.TOTP.MaxFailures = 1000 // this test is about replays, not lockouts
			})
			_, secret, _ := me.staffWithTOTP(t, maria)
			var userID string
			var initial int64
			if err := me.store.InTx(t.Context(), func(tx persistence.Tx) error {
				u, err := tx.UserGetByPhoneIndex(t.Context(), me.identity.Index.Sum(pii.FieldPhone, maria))
				if err != nil {
					return err
				}
				f, err := tx.TOTPFactorGet(t.Context(), u.ID)
				userID, initial = u.ID, f.LastStep
				return err
			}); err != nil {
				t.Fatal(err)
			}
			me.clk.add(2 * time.Minute) // four steps on: the three around now are all fresh
			now := me.auth.Step(me.clk.now())

			const clients = 12
			challenges := make([]string, clients)
			for i := range challenges {
				challenges[i] = me.storeChallenge(t, userID)
			}
			var (
				mu  sync.Mutex
				ops []porcupine.Operation
				wg  sync.WaitGroup
			)
			t0 := time.Now()
			for i := range clients {
				offset := i%3 - 1
				step := int64(now) + int64(offset)
				code := me.code(t, secret, offset)
				wg.Add(1)
				go func() {
					defer wg.Done()
					call := time.Since(t0).Nanoseconds()
					r := me.secondFactor(challenges[i], code)
					ret := time.Since(t0).Nanoseconds()
					if r.status != 200 && r.status != 400 {
						t.Errorf("client %d: %d %s", i, r.status, r.body)
						return
					}
					mu.Lock()
					ops = append(ops, porcupine.Operation{ClientId: i, Input: step, Call: call, Output: r.status == 200, Return: ret})
					mu.Unlock()
				}()
			}
			wg.Wait()
			model := porcupine.Model{
				Init: func() any { return initial },
				Step: func(state, input, output any) (bool, any) {
					last, step, accepted := state.(int64), input.(int64), output.(bool)
					if accepted {
						return step > last, step
					}
					return step <= last, last
				},
				DescribeOperation: func(input, output any) string {
					return fmt.Sprintf("step %d → accepted %v", input, output)
				},
			}
			if !porcupine.CheckOperations(model, ops) {
				t.Fatalf("history not linearizable: %+v", ops)
			}
			accepted := 0
			for _, op := range ops {
				if op.Output.(bool) {
					accepted++
				}
			}
			if accepted < 1 || accepted > 3 {
				t.Fatalf("%d codes accepted; between 1 and 3 (one per step) may be", accepted)
			}
		})
	}
}

// TestStaffTokenWithoutSecondFactor (issue 15 item 3): a promoted admin
// who signed in with the login code alone (a SIM swap is enough for that)
// reaches nothing but the enrolment and logout: every other route that
// needs a role answers 403 second_factor_required. Once the factor is
// confirmed, the refreshed token carries it (amr) and the routes open;
// operator tokens (`spa token`) carry it from the start.
func TestStaffTokenWithoutSecondFactor(t *testing.T) {
	me := newMFAEnv(t, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), false)
	p := me.pair(t, me.firstFactor(t, maria))
	if r := me.admin("PUT", "/v1/admin/users/"+p.User+"/roles", `{"roles":["client","admin"],"reason":"promoted"}`); r.status != 200 {
		t.Fatalf("promote: %d %s", r.status, r.body)
	}
	r := me.firstFactor(t, maria)
	if r.status != 200 || r.json(t)["enrol_second_factor_by"] != "2026-11-28T12:15:00Z" {
		t.Fatalf("sign-in after promotion: %d %s", r.status, r.body)
	}
	boss := me.pair(t, r)
	for _, route := range [][2]string{{"GET", "/v1/admin/kiosks"}, {"GET", "/v1/admin/audit"}, {"GET", "/v1/me/sessions"}} {
		if r := me.do(route[0], route[1], "", jsonHdr(boss.Access)...); r.status != 403 || r.errCode(t) != "second_factor_required" {
			t.Fatalf("%s %s without the second factor: %d %s", route[0], route[1], r.status, r.body)
		}
	}
	if r := me.do("GET", "/v1/me/totp", "", jsonHdr(boss.Access)...); r.status != 200 {
		t.Fatalf("status without the second factor: %d %s", r.status, r.body)
	}
	r = me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(boss.Access)...)
	if r.status != 201 {
		t.Fatalf("enrol: %d %s", r.status, r.body)
	}
	enr := decode[enrolmentJSON](t, r)
	if r := me.do("POST", "/v1/me/totp/confirm", `{"code":"`+me.code(t, enr.Secret, 0)+`"}`, jsonHdr(boss.Access)...); r.status != 200 {
		t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	// The access token in hand still lacks it; the refreshed one has it.
	if r := me.do("GET", "/v1/admin/kiosks", "", jsonHdr(boss.Access)...); r.status != 403 {
		t.Fatalf("old token after confirming: %d %s", r.status, r.body)
	}
	r = me.refresh(boss.Refresh)
	if r.status != 200 || r.json(t)["enrol_second_factor_by"] != nil {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	boss = me.pair(t, r)
	if r := me.do("GET", "/v1/admin/kiosks", "", jsonHdr(boss.Access)...); r.status != 200 {
		t.Fatalf("with the second factor: %d %s", r.status, r.body)
	}
	// Logout needs no second factor.
	other := me.pair(t, me.firstFactor(t, juan))
	if r := me.admin("PUT", "/v1/admin/users/"+other.User+"/roles", `{"roles":["staff"]}`); r.status != 200 {
		t.Fatalf("promote: %d %s", r.status, r.body)
	}
	staff := me.pair(t, me.firstFactor(t, juan))
	if r := me.do("POST", "/v1/auth/logout", "", jsonHdr(staff.Access)...); r.status != 204 {
		t.Fatalf("logout without the second factor: %d %s", r.status, r.body)
	}
}

// TestTOTPEnrolRetryIssuesOnce (issue 15 item 9): retrying an enrolment
// under the same Idempotency-Key replays the first answer without the
// secret, leaves the pending secret as it was, and the idempotency record
// holds no secret; another key restarts the enrolment.
func TestTOTPEnrolRetryIssuesOnce(t *testing.T) {
	me := newMFAEnv(t, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), false)
	p := me.pair(t, me.firstFactor(t, maria))
	me.promote(t, p.User, "client", "staff")
	staff := me.pair(t, me.firstFactor(t, maria))
	sealed := func() []byte {
		t.Helper()
		var f persistence.TOTPFactor
		if err := me.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
			f, err = tx.TOTPFactorGet(t.Context(), staff.User)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return f.SecretCipher
	}
	first := me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(staff.Access, "Idempotency-Key", "enrol-1")...)
	enr := decode[enrolmentJSON](t, first)
	if first.status != 201 || enr.Secret == "" || !enr.Pending {
		t.Fatalf("enrol: %d %s", first.status, first.body)
	}
	before := sealed()
	for i := range 2 {
		again := me.do("POST", "/v1/me/totp/enrol", "", jsonHdr(staff.Access, "Idempotency-Key", "enrol-1")...)
		got := decode[enrolmentJSON](t, again)
		if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || got.Secret != "" || got.OTPAuthURI != "" || !got.Pending {
			t.Fatalf("retry %d: %d replayed=%q %s", i, again.status, again.header.Get("Idempotent-Replayed"), again.body)
		}
	}
	if !bytes.Equal(sealed(), before) {
		t.Fatal("a retry replaced the pending secret")
	}
	var stored []byte
	if err := me.store.InTx(t.Context(), func(tx persistence.Tx) error {
		rec, err := tx.IdempotencyGet(t.Context(), "sub:"+staff.User, "enrol-1", me.clk.now())
		stored = rec.ResponseBody
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(enr.Secret)) || bytes.Contains(stored, []byte("otpauth")) {
		t.Fatalf("the idempotency record holds the secret: %s", stored)
	}
	// The secret of the first answer is the one that confirms.
	if r := me.do("POST", "/v1/me/totp/confirm", `{"code":"`+me.code(t, enr.Secret, 0)+`"}`, jsonHdr(staff.Access)...); r.status != 200 {
		t.Fatalf("confirm with the first secret: %d %s", r.status, r.body)
	}
}
