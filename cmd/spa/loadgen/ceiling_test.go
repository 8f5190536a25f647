package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seenClaim is what a fake server saw of one request.
type seenClaim struct {
	method, path, key, auth string
	body                    claimBody
}

// fixedServer records every request and answers it with answer(n), n
// counting requests from 1.
func fixedServer(t *testing.T, answer func(n int64) (int, string)) (*httptest.Server, func() []seenClaim) {
	t.Helper()
	var mu sync.Mutex
	var seen []seenClaim
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seenClaim{method: r.Method, path: r.URL.Path, key: r.Header.Get("Idempotency-Key"), auth: r.Header.Get("Authorization")}
		_ = json.NewDecoder(r.Body).Decode(&s.body)
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
		status, body := answer(n.Add(1))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seenClaim {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenClaim(nil), seen...)
	}
}

const takenBody = `{"error":{"code":"slot_taken","message":"that slot is no longer free; see the alternatives","request_id":"r","details":{"alternatives":[]}}}`

func fakeMint(subject, role string) (string, error) { return "tok-" + role + "-" + subject, nil }

func ceilingOptions(url string, keyed bool) Options {
	return Options{BaseURL: url, Scenario: ScenarioCeiling, Workers: 4, Duration: 200 * time.Millisecond,
		Idempotency: keyed, Mint: fakeMint, Name: "ceiling", Label: CeilingLabel}
}

// TestCeilingSendsHotClaimsAndCountsAnswers: the ceiling seeds nothing
// and needs no database; it sends only hot's claims (a client's token,
// one staff member's day, a fresh Idempotency-Key each when keyed, none
// when not) and counts every fixed refusal as a decision, checking
// nothing else.
func TestCeilingSendsHotClaimsAndCountsAnswers(t *testing.T) {
	for _, keyed := range []bool{true, false} {
		srv, seen := fixedServer(t, func(int64) (int, string) { return http.StatusConflict, takenBody })
		res, err := Run(context.Background(), ceilingOptions(srv.URL, keyed))
		if err != nil {
			t.Fatalf("keyed %v: %v", keyed, err)
		}
		got := seen()
		if len(got) == 0 {
			t.Fatalf("keyed %v: no claim reached the server", keyed)
		}
		keys := map[string]bool{}
		for _, s := range got {
			if s.method != http.MethodPost || s.path != "/v1/appointments" {
				t.Fatalf("the ceiling sent %s %s: it must seed nothing and send only claims", s.method, s.path)
			}
			if s.body.ServiceID != res.RunID+"-svc" || s.body.StaffID != res.RunID+"-s0000" || s.body.ClientID != "" {
				t.Fatalf("claim body %+v (run %s): not hot's", s.body, res.RunID)
			}
			if at, err := time.Parse(time.RFC3339, s.body.Start); err != nil || at.Minute()%15 != 0 {
				t.Fatalf("claim start %q: not on the 15-minute grid (%v)", s.body.Start, err)
			}
			if !strings.HasPrefix(s.auth, "Bearer tok-client-"+res.RunID+"-c") {
				t.Fatalf("Authorization %q: want a client token minted per worker", s.auth)
			}
			switch {
			case keyed && (s.key == "" || keys[s.key]):
				t.Fatalf("Idempotency-Key %q: want a fresh one per claim", s.key)
			case !keyed && s.key != "":
				t.Fatalf("an unkeyed run sent Idempotency-Key %q", s.key)
			}
			keys[s.key] = true
		}
		c, v := res.Claims, res.Correct
		if c.Refusals != int64(len(got)) || c.Decisions != c.Refusals || c.Successes != 0 || res.Ops[OpClaim].Count != int64(len(got)) {
			t.Fatalf("keyed %v: the server answered %d claims; result %+v, ops %+v", keyed, len(got), c, res.Ops[OpClaim])
		}
		if !v.OK || v.Unchecked == "" || v.ClaimsChecked != 0 || v.OverlapChecked || len(v.Violations) != 0 {
			t.Fatalf("keyed %v: correctness %+v, want OK with nothing checked", keyed, v)
		}
		if res.Scenario != ScenarioCeiling || res.Idempotency != keyed || res.Label != CeilingLabel {
			t.Fatalf("result: scenario %s, idempotency %v, label %s", res.Scenario, res.Idempotency, res.Label)
		}
	}
}

// TestCeilingRefusesOtherAnswers: an answer other than the fixed refusal
// means the ceiling measured something else (a real node answers 201
// too), and the run fails.
func TestCeilingRefusesOtherAnswers(t *testing.T) {
	srv, _ := fixedServer(t, func(n int64) (int, string) {
		if n%2 == 0 {
			return http.StatusCreated, `{"id":"ap1"}`
		}
		return http.StatusConflict, takenBody
	})
	res, err := Run(context.Background(), ceilingOptions(srv.URL, true))
	if !errors.Is(err, ErrViolation) || res == nil || res.Correct.OK {
		t.Fatalf("Run = %v, want ErrViolation", err)
	}
	if v := strings.Join(res.Correct.Violations, "; "); !strings.Contains(v, "were not 409 slot_taken") || !strings.Contains(v, "201: ") {
		t.Fatalf("violations: %s", v)
	}

	srv, _ = fixedServer(t, func(int64) (int, string) { return http.StatusCreated, `{"id":"ap1"}` })
	res, err = Run(context.Background(), ceilingOptions(srv.URL, true))
	if !errors.Is(err, ErrViolation) || !strings.Contains(strings.Join(res.Correct.Violations, "; "), "no claim got the fixed refusal") {
		t.Fatalf("Run = %v, violations %v", err, res.Correct.Violations)
	}
}
