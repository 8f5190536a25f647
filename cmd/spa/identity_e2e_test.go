package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "modernc.org/sqlite"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var sixDigitCode = regexp.MustCompile(`\b[0-9]{6}\b`)

// lastCode is the code of the newest message the dev log sink printed for
// a number ending in the same four digits.
func lastCode(t *testing.T, logs *syncBuffer, phone string) string {
	t.Helper()
	code := ""
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg, To, Body, Purpose string
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "dev message sink" || line.Purpose != "otp" {
			continue
		}
		if strings.HasSuffix(line.To, phone[len(phone)-4:]) {
			code = sixDigitCode.FindString(line.Body)
		}
	}
	if code == "" {
		t.Fatalf("no code for %s in the log", phone)
	}
	return code
}

// signIn requests a code, reads it from the dev sink and exchanges it.
func signIn(t *testing.T, a api, logs *syncBuffer, phone string) (access, refresh string) {
	t.Helper()
	a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
	out := a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": lastCode(t, logs, phone), "device": "e2e"})
	return out["access_token"].(string), out["refresh_token"].(string)
}

// TestIdentityEndToEnd: request a code (the dev sink prints it), verify it,
// call a protected endpoint, refresh, reuse the old refresh token and see
// the session revoked, sign in again and log out; on each driver.
func TestIdentityEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			base, _, logs := serveInProcess(t, envFor(t), t.TempDir())
			a := api{t, base}
			const phone = "+573001234567"

			access, refresh := signIn(t, a, logs, phone)
			if strings.Contains(logs.String(), "3001234567") {
				t.Fatal("the phone number is in the log unmasked")
			}
			sessions := a.must(200, "GET", "/v1/me/sessions", access, nil)["sessions"].([]any)
			if len(sessions) != 1 || sessions[0].(map[string]any)["current"] != true {
				t.Fatalf("sessions: %v", sessions)
			}
			a.must(200, "GET", "/v1/me/packages", access, nil) // a protected endpoint of another area

			next := a.must(200, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": refresh})
			access2, refresh2 := next["access_token"].(string), next["refresh_token"].(string)
			a.must(200, "GET", "/v1/me/sessions", access2, nil)

			// Reuse of the first refresh token: the session is revoked.
			if out := a.must(401, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": refresh}); out["error"].(map[string]any)["code"] != "refresh_token_invalid" {
				t.Fatalf("reuse: %v", out)
			}
			a.must(401, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": refresh2})
			a.must(401, "GET", "/v1/me/sessions", access2, nil)
			a.must(401, "GET", "/v1/me/sessions", access, nil)

			// Sign in again (after the resend interval would be a wait:
			// a second number keeps the test fast) and log out.
			access3, refresh3 := signIn(t, a, logs, "+573109876543")
			a.must(200, "GET", "/v1/me/sessions", access3, nil)
			a.must(204, "POST", "/v1/auth/logout", access3, nil)
			a.must(401, "GET", "/v1/me/sessions", access3, nil)
			a.must(401, "POST", "/v1/auth/refresh", "", map[string]any{"refresh_token": refresh3})

			_, metrics := metricsOf(t, base)
			for _, want := range []string{`spa_otp_requests_total{outcome="sent"} 2`, `spa_otp_verifications_total{outcome="ok"} 2`, "spa_sessions_active 0"} {
				if !strings.Contains(metrics, want) {
					t.Errorf("metrics lack %q", want)
				}
			}
		})
	}
}

// TestIdentityBruteForceSurvivesRestart: guessing fails within the attempt
// limit, and the lockout still holds after the server restarts on the same
// store: neither the right code nor a new one gets through.
func TestIdentityBruteForceSurvivesRestart(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			env, dataDir := envFor(t), t.TempDir()
			base, stop, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			const phone = "+573001234567"
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			code := lastCode(t, logs, phone)
			wrong := "000000"
			if code == wrong {
				wrong = "111111"
			}
			guesses := 0
			for ; guesses < 20; guesses++ {
				status, out := a.call("POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": wrong})
				if status == 429 {
					break
				}
				if status != 400 || out["error"].(map[string]any)["code"] != "invalid_code" {
					t.Fatalf("guess %d: %d %v", guesses, status, out)
				}
			}
			if guesses != 5 {
				t.Fatalf("%d wrong guesses were evaluated before the lockout, want 5", guesses)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}

			base, _, _ = serveInProcess(t, env, dataDir)
			a = api{t, base}
			status, out := a.call("POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": code})
			if status != 429 || out["error"].(map[string]any)["code"] != "otp_locked" {
				t.Fatalf("right code after restart during lockout: %d %v", status, out)
			}
			status, out = a.call("POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
			if status != 429 || out["error"].(map[string]any)["code"] != "otp_locked" {
				t.Fatalf("new code after restart during lockout: %d %v", status, out)
			}
		})
	}
}

// TestIdentityStoreDownFailsClosed: when the store cannot record a send, a
// code request is 503 and no code is printed. The OTP table is taken away
// under the running server (the store refuses every query on it).
func TestIdentityStoreDownFailsClosed(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			env, dataDir := envFor(t), t.TempDir()
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			breakTable(t, env, dataDir, "ALTER TABLE otp_states RENAME TO otp_states_gone")
			status, out := a.call("POST", "/v1/auth/otp", "", map[string]any{"phone": "+573001234567"})
			if status != 503 || out["error"].(map[string]any)["code"] != "unavailable" {
				t.Fatalf("store down: %d %v", status, out)
			}
			if strings.Contains(logs.String(), "dev message sink") {
				t.Fatal("a code was sent while the store was down")
			}
			breakTable(t, env, dataDir, "ALTER TABLE otp_states_gone RENAME TO otp_states")
			a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": "+573001234567"})
		})
	}
}

// breakTable runs stmt on the server's database behind its back.
func breakTable(t *testing.T, env map[string]string, dataDir, stmt string) {
	t.Helper()
	ctx := context.Background()
	if url := env["DATABASE_URL"]; url != "" {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
		return
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqliteFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatal(err)
	}
}

// TestIdentityRevocationByEvent: a session revoked elsewhere (another
// node: here a second handle on the same store writes the revocation and
// its event, as gateway does) stops being accepted by this node once the
// event arrives over NATS, though the access token itself is unexpired and
// already cached as verified.
func TestIdentityRevocationByEvent(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			env, dataDir := envFor(t), t.TempDir()
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			out := signInFull(t, a, logs, "+573001234567")
			access, sid, uid := out["access_token"].(string), out["session_id"].(string), out["user_id"].(string)
			a.must(200, "GET", "/v1/me/sessions", access, nil)

			ctx := context.Background()
			other, err := openStore(ctx, config{DatabaseURL: env["DATABASE_URL"], DataDir: dataDir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			now := time.Now()
			err = other.InTx(ctx, func(tx persistence.Tx) error {
				if _, err := tx.SessionRevoke(ctx, sid, now, "admin"); err != nil {
					return err
				}
				ev, err := persistence.NewOutboxEvent("user/"+uid, "test", "other-node", &messages.SessionsRevoked{
					UserId: uid, SessionIds: []string{sid}, Reason: "admin", RevokedAt: timestamppb.New(now)}, now)
				if err != nil {
					return err
				}
				return tx.OutboxAppend(ctx, ev)
			})
			if err != nil {
				t.Fatal(err)
			}
			testwait.For(t, 10*time.Second, "the revocation to reach the node", func() bool {
				status, _ := a.call("GET", "/v1/me/sessions", access, nil)
				return status == 401
			})
		})
	}
}

// signInFull is signIn returning the whole answer.
func signInFull(t *testing.T, a api, logs *syncBuffer, phone string) map[string]any {
	t.Helper()
	a.must(202, "POST", "/v1/auth/otp", "", map[string]any{"phone": phone})
	return a.must(200, "POST", "/v1/auth/otp/verify", "", map[string]any{"phone": phone, "code": lastCode(t, logs, phone)})
}
