package otp

import (
	"encoding/json"
	"testing"
	"time"
)

// TestBruteForceWithinAttemptLimit: for many independent codes, an attacker
// who guesses without knowing the code gets exactly MaxFailures evaluated
// guesses before the lockout, and never more. With 2000 trials of 5 guesses
// the chance that any guess hits is 2000*5/10^6 = 1%; the streams are
// seeded, so the run is deterministic and the assertion below is exact.
func TestBruteForceWithinAttemptLimit(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	h := testHasher(t)
	attacker := seeded(0xA77AC4)
	for trial := range 2000 {
		code, c, err := NewChallenge(h, seeded(uint64(trial)+1_000), phone, t0, MaxTTL)
		if err != nil {
			t.Fatal(err)
		}
		var s State
		evaluated := 0
		for guess := 0; ; guess++ {
			g, _ := NewCode(attacker) // independent of code
			var r Result
			s, r = p.Attempt(s, &c, h, phone, g, t0.Add(time.Duration(guess)*time.Second))
			if r == ResultOK {
				t.Fatalf("trial %d: guess %d hit the code", trial, guess)
			}
			if r == ResultLocked {
				break
			}
			evaluated++
		}
		if evaluated != p.MaxFailures {
			t.Fatalf("trial %d: %d guesses evaluated before lockout, want %d", trial, evaluated, p.MaxFailures)
		}
		// The owner's right code is refused too until the lockout ends.
		if _, r := p.Attempt(s, &c, h, phone, code, t0.Add(30*time.Second)); r != ResultLocked {
			t.Fatalf("trial %d: right code during lockout = %v", trial, r)
		}
	}
}

// TestBruteForceCampaign runs a day-long attack against one phone: the
// attacker requests a new code whenever the send limit allows and guesses
// whenever the phone is not locked, one guess a second. The actor state is
// persisted and reloaded (a restart) before every step. The number of
// guesses that get evaluated is bounded by the ladder, not by the attacker's
// speed, so the success probability stays below 2*10^-4 for the day.
func TestBruteForceCampaign(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	h := testHasher(t)
	codeRand := seeded(0xC0DE)
	attacker := seeded(0xBAD)

	restart := func(s State) State {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		return back
	}

	var (
		s         State
		c         Challenge
		evaluated int
		sends     int
	)
	end := t0.Add(24 * time.Hour)
	for now := t0; now.Before(end); now = now.Add(time.Second) {
		s = restart(s)
		if c.Expired(now) || c.Used {
			if p.CheckSend(s, now) == nil {
				var err error
				_, c, err = NewChallenge(h, codeRand, phone, now, MaxTTL)
				if err != nil {
					t.Fatal(err)
				}
				s = p.RecordSend(s, now)
				sends++
			}
		}
		g, _ := NewCode(attacker)
		var r Result
		s, r = p.Attempt(s, &c, h, phone, g, now)
		switch r {
		case ResultOK:
			t.Fatalf("guess hit the code after %d evaluated guesses", evaluated)
		case ResultWrong:
			evaluated++
		}
	}
	// At most MaxFailures guesses per lockout cycle. Cycles of 1, 5 and 15
	// minutes take 21 minutes; the remaining 1419 minutes hold at most 24
	// one-hour cycles (the last one cut short): 27 cycles.
	const bound = 5 * 27
	if evaluated > bound {
		t.Fatalf("%d guesses evaluated in a day, bound %d", evaluated, bound)
	}
	if sends > p.SendLimit*24 {
		t.Fatalf("%d codes sent in a day", sends)
	}
	t.Logf("day-long attack: %d codes sent, %d guesses evaluated against them (success probability <= %.1e)",
		sends, evaluated, float64(evaluated)/1e6)
}
