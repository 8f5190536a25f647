package otp

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func failN(p Policy, s State, n int, at time.Time) State {
	for range n {
		s = p.RecordFailure(s, at)
	}
	return s
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("DefaultPolicy: %v", err)
	}
	tests := []struct {
		name string
		edit func(*Policy)
	}{
		{"no failures allowed", func(p *Policy) { p.MaxFailures = 0 }},
		{"empty ladder", func(p *Policy) { p.Lockouts = nil }},
		{"zero step", func(p *Policy) { p.Lockouts = []time.Duration{time.Minute, 0} }},
		{"shrinking ladder", func(p *Policy) { p.Lockouts = []time.Duration{5 * time.Minute, time.Minute} }},
		{"forget before longest lockout ends", func(p *Policy) { p.ForgetAfter = time.Hour }},
		{"no sends", func(p *Policy) { p.SendLimit = 0 }},
		{"no window", func(p *Policy) { p.SendWindow = 0 }},
		{"negative resend", func(p *Policy) { p.ResendAfter = -1 }},
	}
	for _, tt := range tests {
		p := DefaultPolicy()
		tt.edit(&p)
		if err := p.Validate(); !errors.Is(err, ErrInvalidPolicy) {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
	}
}

func TestLockoutLadder(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	var s State
	now := t0
	for i, want := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, time.Hour, time.Hour} {
		t.Run(fmt.Sprintf("lockout %d", i+1), func(t *testing.T) {
			s = failN(p, s, p.MaxFailures-1, now)
			if d := s.LockedForNetwork("", now); d != 0 {
				t.Fatalf("locked after %d failures", p.MaxFailures-1)
			}
			s = p.RecordFailure(s, now)
			if d := s.LockedForNetwork("", now); d != want {
				t.Fatalf("LockedFor = %v, want %v", d, want)
			}
			if s.Nets[""].Lockouts != i+1 || s.Nets[""].Failures != 0 {
				t.Fatalf("state %+v", s)
			}
			// Boundaries: locked one nanosecond before the end, free at it.
			if s.LockedForNetwork("", now.Add(want-1)) != 1 {
				t.Fatalf("not locked 1ns before the end")
			}
			now = now.Add(want)
			if s.LockedForNetwork("", now) != 0 {
				t.Fatalf("still locked at LockedUntil")
			}
		})
	}
}

func TestNewCodeDoesNotResetFailures(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	h := testHasher(t)
	var s State
	now := t0
	for i := range p.MaxFailures {
		// Every attempt is against a freshly sent code.
		if err := p.CheckSend(s, now); err != nil {
			t.Fatalf("send %d refused: %v", i, err)
		}
		s = p.RecordSend(s, now)
		code, c, err := NewChallenge(h, seeded(uint64(i)), phone, now, MaxTTL)
		if err != nil {
			t.Fatal(err)
		}
		var r Result
		s, r = p.Attempt(s, &c, h, phone, notCode(code), now)
		if r != ResultWrong {
			t.Fatalf("attempt %d: %v", i, r)
		}
		now = now.Add(p.ResendAfter)
	}
	if s.LockedForNetwork("", now) == 0 {
		t.Fatalf("%d failures spread over %d codes did not lock: %+v", p.MaxFailures, p.MaxFailures, s)
	}
}

func notCode(code string) string {
	if code == "123456" {
		return "654321"
	}
	return "123456"
}

func TestAttempt(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	h := testHasher(t)

	t.Run("success clears failures and ladder", func(t *testing.T) {
		t.Parallel()
		s := failN(p, State{}, p.MaxFailures, t0) // one lockout
		now := t0.Add(time.Minute)
		s = failN(p, s, p.MaxFailures-1, now)
		code, c, _ := NewChallenge(h, seeded(1), phone, now, MaxTTL)
		s, r := p.Attempt(s, &c, h, phone, code, now)
		if r != ResultOK || s.Failures != 0 || s.Lockouts != 0 || !c.Used {
			t.Fatalf("r=%v state=%+v used=%v", r, s, c.Used)
		}
	})
	t.Run("locked phone refuses the right code and does not count it", func(t *testing.T) {
		t.Parallel()
		s := failN(p, State{}, p.MaxFailures, t0)
		code, c, _ := NewChallenge(h, seeded(2), phone, t0, MaxTTL)
		before := s
		s, r := p.Attempt(s, &c, h, phone, code, t0.Add(30*time.Second))
		if r != ResultLocked || c.Used {
			t.Fatalf("r=%v used=%v", r, c.Used)
		}
		if s.Failures != before.Failures || !s.LockedUntil.Equal(before.LockedUntil) {
			t.Fatalf("locked attempt changed state: %+v -> %+v", before, s)
		}
		// At the lockout's end the (still valid) code works.
		s, r = p.Attempt(s, &c, h, phone, code, t0.Add(time.Minute))
		if r != ResultOK {
			t.Fatalf("after lockout: %v", r)
		}
	})
	t.Run("every non-OK result counts", func(t *testing.T) {
		t.Parallel()
		code, c, _ := NewChallenge(h, seeded(3), phone, t0, time.Minute)
		s, r := p.Attempt(State{}, nil, h, phone, code, t0)
		if r != ResultExpired || s.Failures != 1 {
			t.Fatalf("no challenge: r=%v %+v", r, s)
		}
		s, r = p.Attempt(s, &c, h, phone, code, t0.Add(time.Minute))
		if r != ResultExpired || s.Failures != 2 {
			t.Fatalf("expired: r=%v %+v", r, s)
		}
		c.Used = true
		s, r = p.Attempt(s, &c, h, phone, code, t0)
		if r != ResultUsed || s.Failures != 3 {
			t.Fatalf("used: r=%v %+v", r, s)
		}
	})
	t.Run("input state is not modified", func(t *testing.T) {
		t.Parallel()
		s := p.RecordSend(State{}, t0)
		s = p.RecordFailure(s, t0)
		snapshot := fmt.Sprintf("%+v", s)
		_, c, _ := NewChallenge(h, seeded(4), phone, t0, MaxTTL)
		_, _ = p.Attempt(s, &c, h, phone, "000000", t0)
		_ = p.RecordSend(s, t0.Add(time.Minute))
		if got := fmt.Sprintf("%+v", s); got != snapshot {
			t.Fatalf("state mutated: %s -> %s", snapshot, got)
		}
	})
}

func TestForgetAfter(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	s := failN(p, State{}, p.MaxFailures*2, t0) // two lockouts, last failure at t0
	s = failN(p, s, 2, t0)
	tests := []struct {
		name         string
		at           time.Duration
		wantFailures int
		wantLockouts int
	}{
		{"just before", p.ForgetAfter - 1, 2, 2},
		{"exactly ForgetAfter", p.ForgetAfter, 0, 0},
		{"long after", 30 * 24 * time.Hour, 0, 0},
	}
	for _, tt := range tests {
		got := p.Compact(s, t0.Add(tt.at))
		if got.Nets[""].Failures != tt.wantFailures || got.Nets[""].Lockouts != tt.wantLockouts {
			t.Errorf("%s: %+v", tt.name, got)
		}
	}
	// A failure just before forgetting keeps the ladder position: the next
	// lockout is the third step, not the first.
	s = failN(p, s, p.MaxFailures-2, t0.Add(p.ForgetAfter-1))
	if d := s.LockedForNetwork("", t0.Add(p.ForgetAfter-1)); d != p.Lockouts[2] {
		t.Fatalf("third lockout lasts %v, want %v", d, p.Lockouts[2])
	}
}

func TestSendLimits(t *testing.T) {
	t.Parallel()
	p := Policy{
		MaxFailures: 5, Lockouts: []time.Duration{time.Minute}, ForgetAfter: time.Hour,
		SendLimit: 3, SendWindow: 10 * time.Minute, ResendAfter: 30 * time.Second,
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// Sends at t0, t0+1m, t0+2m fill the window.
	var s State
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := p.CheckSend(s, at); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		s = p.RecordSend(s, at)
	}
	tests := []struct {
		name      string
		at        time.Duration
		wantErr   error
		wantRetry time.Duration
	}{
		{"window full", 5 * time.Minute, ErrSendRateLimited, 5 * time.Minute},
		{"one ns before the oldest leaves", 10*time.Minute - 1, ErrSendRateLimited, 1},
		{"oldest leaves at exactly window", 10 * time.Minute, nil, 0},
	}
	for _, tt := range tests {
		err := p.CheckSend(s, t0.Add(tt.at))
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Fatalf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		var re *RetryError
		if errors.As(err, &re) && re.RetryAfter != tt.wantRetry {
			t.Fatalf("%s: RetryAfter = %v, want %v", tt.name, re.RetryAfter, tt.wantRetry)
		}
	}

	t.Run("resend gap", func(t *testing.T) {
		s := p.RecordSend(State{}, t0)
		err := p.CheckSend(s, t0.Add(10*time.Second))
		var re *RetryError
		if !errors.As(err, &re) || !errors.Is(err, ErrSendRateLimited) || re.RetryAfter != 20*time.Second {
			t.Fatalf("err = %v", err)
		}
		if err := p.CheckSend(s, t0.Add(30*time.Second)); err != nil {
			t.Fatalf("at the gap: %v", err)
		}
	})
	t.Run("locked phone gets no code", func(t *testing.T) {
		s := failN(p, State{}, p.MaxFailures, t0)
		err := p.CheckSend(s, t0.Add(10*time.Second))
		var re *RetryError
		if !errors.As(err, &re) || !errors.Is(err, ErrLockedOut) || re.RetryAfter != 50*time.Second {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("history stays bounded", func(t *testing.T) {
		var s State
		for i := range 100 {
			s = p.RecordSend(s, t0.Add(time.Duration(i)*time.Second))
		}
		if len(s.Sends) != p.SendLimit {
			t.Fatalf("%d sends kept", len(s.Sends))
		}
		if s = p.Compact(s, t0.Add(time.Hour)); s.Sends != nil {
			t.Fatalf("old sends kept: %v", s.Sends)
		}
	})
}

// The limits live in State; persisting it (here as JSON, as an actor would)
// and reloading it after a restart must keep every limit in force.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	s := p.RecordSend(State{}, t0)
	s = failN(p, s, p.MaxFailures+2, t0) // locked, plus two failures towards the next
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Second)
	if back.LockedForNetwork("", now) != s.LockedForNetwork("", now) || back.Nets[""].Failures != 2 || back.Nets[""].Lockouts != 1 {
		t.Fatalf("restored %+v from %s", back, b)
	}
	if err := p.CheckSend(back, now); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("restored state allows sending: %v", err)
	}
	// Three more failures after the lockout reach the second ladder step.
	back = failN(p, back, p.MaxFailures-2, t0.Add(time.Minute))
	if d := back.LockedForNetwork("", t0.Add(time.Minute)); d != p.Lockouts[1] {
		t.Fatalf("second lockout %v", d)
	}
}

// TestTargetedLockoutIsPerNetwork (issue 15 item 7): wrong codes from one
// network lock the number for that network only, so the owner elsewhere
// still signs in; spread over networks they first make a CAPTCHA
// necessary and only much later lock the number as a whole.
func TestTargetedLockoutIsPerNetwork(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	h := testHasher(t)
	now := t0
	code, c, err := NewChallenge(h, seeded(1), phone, now, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	const owner = "203.0.113.0/24"
	attacker := func(i int) string { return fmt.Sprintf("198.51.%d.0/24", i) }
	var s State
	var r Result
	for range p.MaxFailures {
		if s, r = p.AttemptFrom(s, &c, h, phone, notCode(code), attacker(0), false, now); r != ResultWrong {
			t.Fatalf("guess: %v", r)
		}
	}
	if _, r = p.AttemptFrom(s, &c, h, phone, code, attacker(0), false, now); r != ResultLocked {
		t.Fatalf("attacker's network after %d guesses: %v", p.MaxFailures, r)
	}
	if err := p.CheckSendFrom(s, attacker(0), true, now); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("send to the attacker's network: %v", err)
	}
	if s.LockedFor(now) != 0 || p.CheckSendFrom(s, owner, false, now) != nil {
		t.Fatal("the number is locked for its owner")
	}
	spent := c // a success marks the challenge used: keep c for the guesses below
	if st, r := p.AttemptFrom(s, &spent, h, phone, code, owner, false, now); r != ResultOK || st.LockedForNetwork(attacker(0), now) == 0 {
		t.Fatalf("owner's sign-in: %v (the attacker's lock must stay: %+v)", r, st.Nets)
	}

	// Guesses spread over networks: from CaptchaAfter on, nobody is
	// answered without a CAPTCHA; a send neither.
	for i := 1; s.Failures < p.CaptchaAfter; i++ {
		s, _ = p.AttemptFrom(s, &c, h, phone, notCode(code), attacker(i), false, now)
	}
	if _, r = p.AttemptFrom(s, &c, h, phone, code, owner, false, now); r != ResultCaptchaRequired {
		t.Fatalf("after %d failures without a CAPTCHA: %v", s.Failures, r)
	}
	if err := p.CheckSendFrom(s, owner, false, now); !errors.Is(err, ErrCaptchaRequired) {
		t.Fatalf("send without a CAPTCHA: %v", err)
	}
	// With CAPTCHAs, PhoneMaxFailures lock the number as a whole.
	for i := 100; s.LockedFor(now) == 0; i++ {
		for range p.MaxFailures - 1 {
			s, _ = p.AttemptFrom(s, &c, h, phone, notCode(code), attacker(i), true, now)
		}
	}
	if _, r = p.AttemptFrom(s, &c, h, phone, code, owner, true, now); r != ResultLocked || s.Lockouts != 1 {
		t.Fatalf("after %d failures: %v, %+v", p.PhoneMaxFailures, r, s)
	}
	if len(s.Nets) > p.MaxNetworks {
		t.Fatalf("%d networks kept", len(s.Nets))
	}
	// Still a CAPTCHA after the whole-phone lockout ends.
	if !p.CaptchaRequired(s, now.Add(p.Lockouts[0])) {
		t.Fatal("no CAPTCHA after a whole-phone lockout")
	}
}

func TestNetworkOf(t *testing.T) {
	for ip, want := range map[string]string{
		"203.0.113.7":        "203.0.113.0/24",
		"::ffff:203.0.113.7": "203.0.113.0/24",
		"2001:db8:1:2::1":    "2001:db8:1::/48",
		"not an address":     "",
	} {
		if got := NetworkOf(ip); got != want {
			t.Errorf("NetworkOf(%q) = %q, want %q", ip, got, want)
		}
	}
}
