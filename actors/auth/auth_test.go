package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTokens(t *testing.T) (*Tokens, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	tok, err := NewTokens(testKey, "spa-test", c.now)
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

func TestNewTokensRejectsShortKey(t *testing.T) {
	if _, err := NewTokens([]byte("short"), "spa", nil); !errors.Is(err, ErrKeyTooShort) {
		t.Fatalf("err = %v, want ErrKeyTooShort", err)
	}
}

func TestRoundTrip(t *testing.T) {
	tok, _ := newTokens(t)
	s, minted, err := tok.Mint("user-1", RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tok.Verify(s)
	if err != nil {
		t.Fatal(err)
	}
	if got != minted {
		t.Fatalf("verified %+v, minted %+v", got, minted)
	}
	if got.TokenID == "" || got.Role != RoleAdmin || got.Subject != "user-1" {
		t.Fatalf("claims %+v", got)
	}
}

func TestExpired(t *testing.T) {
	tok, c := newTokens(t)
	s, _, err := tok.Mint("u", RoleClient, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Minute + Leeway/2)
	if _, err := tok.Verify(s); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	c.t = c.t.Add(Leeway)
	if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("err = %v, want expired", err)
	}
}

func TestTamperedSignature(t *testing.T) {
	tok, _ := newTokens(t)
	s, _, _ := tok.Mint("u", RoleClient, time.Hour)
	parts := strings.Split(s, ".")
	// Swap the role in the payload but keep the old signature.
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"client"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	if _, err := tok.Verify(strings.Join(parts, ".")); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered payload accepted: %v", err)
	}
	sig := []byte(parts[2])
	sig[0] ^= 1
	if _, err := tok.Verify(parts[0] + "." + parts[1] + "." + string(sig)); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered signature accepted: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	tok, c := newTokens(t)
	other, err := NewTokens([]byte("ffffffffffffffffffffffffffffffff"), "spa-test", c.now)
	if err != nil {
		t.Fatal(err)
	}
	s, _, _ := other.Mint("u", RoleAdmin, time.Hour)
	if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("foreign key accepted: %v", err)
	}
}

func TestAlgNone(t *testing.T) {
	tok, c := newTokens(t)
	claims := jwtClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "spa-test", Subject: "u",
		IssuedAt:  jwt.NewNumericDate(c.t),
		ExpiresAt: jwt.NewNumericDate(c.t.Add(time.Hour)),
	}, Role: "admin"}
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("alg none accepted: %v", err)
	}
	// HS512 with the right key is still refused: only HS256 is pinned.
	s, err = jwt.NewWithClaims(jwt.SigningMethodHS512, claims).SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("HS512 accepted: %v", err)
	}
}

func TestWrongIssuer(t *testing.T) {
	tok, c := newTokens(t)
	other, _ := NewTokens(testKey, "someone-else", c.now)
	s, _, _ := other.Mint("u", RoleAdmin, time.Hour)
	if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("wrong issuer accepted: %v", err)
	}
}

func TestUnknownRole(t *testing.T) {
	tok, c := newTokens(t)
	if _, _, err := tok.Mint("u", Role("owner"), time.Hour); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("mint with unknown role: %v", err)
	}
	// Hand-sign a token with a bogus role and the right key.
	claims := jwtClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "spa-test", Subject: "u",
		IssuedAt:  jwt.NewNumericDate(c.t),
		ExpiresAt: jwt.NewNumericDate(c.t.Add(time.Hour)),
	}, Role: "owner"}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("unknown role accepted: %v", err)
	}
}

func TestGarbage(t *testing.T) {
	tok, _ := newTokens(t)
	for _, s := range []string{"", "a.b.c", "not a token", strings.Repeat("x", 5000)} {
		if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("%q accepted: %v", s, err)
		}
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{RoleClient, RoleStaff, RoleReceptionist, RoleAdmin} {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "root"} {
		if _, err := ParseRole(s); !errors.Is(err, ErrUnknownRole) {
			t.Fatalf("ParseRole(%q) accepted", s)
		}
	}
}

// TestSecondFactorClaim: only a sign-in that passed the TOTP step, or an
// operator token, carries the second factor; the claim survives the round
// trip (and the verification cache) and cannot be added without the key.
func TestSecondFactorClaim(t *testing.T) {
	tok, _ := newTokens(t)
	for _, tc := range []struct {
		name string
		mint func() (string, Claims, error)
		want bool
	}{
		{"operator", func() (string, Claims, error) { return tok.Mint("op", RoleAdmin, time.Hour) }, true},
		{"sms only", func() (string, Claims, error) { return tok.MintSignIn("u", RoleAdmin, "s1", time.Hour, false) }, false},
		{"sms and totp", func() (string, Claims, error) { return tok.MintSignIn("u", RoleAdmin, "s2", time.Hour, true) }, true},
		{"kiosk", func() (string, Claims, error) { return tok.MintSession("k", RoleKiosk, "k", time.Hour) }, false},
	} {
		s, minted, err := tc.mint()
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second answer comes from the cache
			got, err := tok.Verify(s)
			if err != nil || got.SecondFactor != tc.want || got != minted {
				t.Fatalf("%s: second factor %v (want %v), %v", tc.name, got.SecondFactor, tc.want, err)
			}
		}
	}
}

// TestLifetimeCapped: Mint refuses, and Verify refuses a validly signed
// token that claims, a lifetime (exp − iat) over the role's maximum, or no
// issue time at all; kiosk tokens may live as long as their kiosk.
func TestLifetimeCapped(t *testing.T) {
	tok, c := newTokens(t)
	if _, _, err := tok.Mint("u", RoleAdmin, MaxTokenLifetime+time.Second); !errors.Is(err, ErrLifetime) {
		t.Fatalf("mint over the cap: %v", err)
	}
	if _, _, err := tok.Mint("u", RoleAdmin, MaxTokenLifetime); err != nil {
		t.Fatalf("mint at the cap: %v", err)
	}
	if s, _, err := tok.MintSession("k", RoleKiosk, "k", MaxKioskTokenLifetime); err != nil {
		t.Fatalf("kiosk at its cap: %v", err)
	} else if _, err := tok.Verify(s); err != nil {
		t.Fatalf("kiosk at its cap refused: %v", err)
	}
	sign := func(role string, iat *jwt.NumericDate, exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{RegisteredClaims: jwt.RegisteredClaims{
			Issuer: "spa-test", Subject: "u", IssuedAt: iat, ExpiresAt: jwt.NewNumericDate(exp),
		}, Role: role}).SignedString(testKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := jwt.NewNumericDate(c.t)
	for name, s := range map[string]string{
		"ten-year admin":       sign("admin", now, c.t.AddDate(10, 0, 0)),
		"a day and a second":   sign("client", now, c.t.Add(MaxTokenLifetime+time.Second)),
		"old iat, far exp":     sign("staff", jwt.NewNumericDate(c.t.Add(-MaxTokenLifetime)), c.t.Add(time.Hour)),
		"no issue time":        sign("admin", nil, c.t.Add(time.Hour)),
		"kiosk beyond its cap": sign("kiosk", now, c.t.Add(MaxKioskTokenLifetime+time.Second)),
	} {
		if _, err := tok.Verify(s); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrLifetime) {
			t.Errorf("%s: err = %v, want ErrLifetime", name, err)
		}
	}
	if _, err := tok.Verify(sign("admin", now, c.t.Add(MaxTokenLifetime))); err != nil {
		t.Fatalf("a token at the cap: %v", err)
	}
}
