package auth

import (
	"errors"
	"testing"
	"time"
)

func TestSessionClaimRoundTrip(t *testing.T) {
	tok, _ := newTokens(t)
	s, minted, err := tok.MintSession("user-1", RoleClient, "sess-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tok.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != minted || got.SessionID != "sess-1" {
		t.Fatalf("verified %+v, minted %+v", got, minted)
	}
	plain, _, _ := tok.Mint("op", RoleAdmin, time.Minute)
	if c, err := tok.Verify(plain); err != nil || c.SessionID != "" {
		t.Fatalf("operator token: %+v %v", c, err)
	}
}

// TestRevokedSessionRefused: a token verified (and cached) before its
// session was revoked is refused afterwards; other sessions and tokens
// without a session are untouched.
func TestRevokedSessionRefused(t *testing.T) {
	tok, clk := newTokens(t)
	revoked := NewRevokedSessions(15*time.Minute, clk.now)
	tok.SetRevocations(revoked)
	a, _, _ := tok.MintSession("u", RoleClient, "sess-a", 15*time.Minute)
	b, _, _ := tok.MintSession("u", RoleClient, "sess-b", 15*time.Minute)
	plain, _, _ := tok.Mint("op", RoleAdmin, 15*time.Minute)
	for _, s := range []string{a, b, plain} {
		if _, err := tok.Verify(s); err != nil {
			t.Fatal(err)
		}
	}
	revoked.Add(time.Time{}, "sess-a")
	tok.ForgetSession("sess-a")
	if _, err := tok.Verify(a); !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked session: %v", err)
	}
	for _, s := range []string{b, plain} {
		if _, err := tok.Verify(s); err != nil {
			t.Fatalf("unrevoked token refused: %v", err)
		}
	}
	// Cached verifications are checked too, without ForgetSession.
	revoked.Add(time.Time{}, "sess-b")
	if _, err := tok.Verify(b); !errors.Is(err, ErrRevoked) {
		t.Fatalf("cached token of a revoked session: %v", err)
	}
}

func TestRevokedSessionsExpire(t *testing.T) {
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	r := NewRevokedSessions(time.Minute, clk.now)
	r.Add(time.Time{}, "s1", "", "s2")
	if !r.Revoked("s1") || !r.Revoked("s2") || r.Revoked("") || r.Revoked("s3") {
		t.Fatal("membership after Add")
	}
	clk.t = clk.t.Add(time.Minute + Leeway - time.Second)
	if !r.Revoked("s1") {
		t.Fatal("forgotten before the retention ended")
	}
	clk.t = clk.t.Add(time.Second)
	if r.Revoked("s1") {
		t.Fatal("still revoked after the retention: a token minted for it has expired")
	}
	r.Add(time.Time{}, "s3") // sweeps the expired entries
	if r.Len() != 1 {
		t.Fatalf("%d entries after the sweep, want 1", r.Len())
	}
}
