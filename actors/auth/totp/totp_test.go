package totp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"
)

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func mustNew(tb testing.TB, cfg Config) *Authenticator {
	tb.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = "Spa Engine"
	}
	a, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// RFC 6238 Appendix B. The seeds are the ASCII digits repeated to the
// hash's block-size key length: 20 bytes for SHA1, 32 for SHA256, 64 for
// SHA512.
func TestRFC6238Vectors(t *testing.T) {
	t.Parallel()
	seeds := map[Algorithm]string{
		SHA1:   "12345678901234567890",
		SHA256: "12345678901234567890123456789012",
		SHA512: "1234567890123456789012345678901234567890123456789012345678901234",
	}
	vectors := []struct {
		unix int64
		want map[Algorithm]string
	}{
		{59, map[Algorithm]string{SHA1: "94287082", SHA256: "46119246", SHA512: "90693936"}},
		{1111111109, map[Algorithm]string{SHA1: "07081804", SHA256: "68084774", SHA512: "25091201"}},
		{1111111111, map[Algorithm]string{SHA1: "14050471", SHA256: "67062674", SHA512: "99943326"}},
		{1234567890, map[Algorithm]string{SHA1: "89005924", SHA256: "91819424", SHA512: "93441116"}},
		{2000000000, map[Algorithm]string{SHA1: "69279037", SHA256: "90698825", SHA512: "38618901"}},
		{20000000000, map[Algorithm]string{SHA1: "65353130", SHA256: "77737706", SHA512: "47863826"}},
	}
	for alg, seed := range seeds {
		a := mustNew(t, Config{Digits: 8, Algorithm: alg})
		secret := SecretFromBytes([]byte(seed))
		for _, v := range vectors {
			at := time.Unix(v.unix, 0).UTC()
			got, err := a.CodeAt(secret, at)
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want[alg] {
				t.Errorf("alg %d at %d: CodeAt = %s, want %s", alg, v.unix, got, v.want[alg])
			}
			// Verify agrees, and the same code is refused the second time.
			st, err := a.Verify(secret, State{}, v.want[alg], at)
			if err != nil || st.LastStep != uint64(v.unix)/30 {
				t.Errorf("alg %d at %d: Verify = %+v, %v", alg, v.unix, st, err)
			}
			if _, err := a.Verify(secret, st, v.want[alg], at); !errors.Is(err, ErrReplayed) {
				t.Errorf("alg %d at %d: replay err = %v", alg, v.unix, err)
			}
		}
	}
}

func TestVerifySkewAndReplay(t *testing.T) {
	t.Parallel()
	a := mustNew(t, Config{})
	secret := SecretFromBytes([]byte("12345678901234567890"))
	now := time.Unix(1_800_000_015, 0) // middle of step 60_000_000
	step := a.Step(now)
	code := func(delta int) string {
		c, err := a.CodeAt(secret, now.Add(time.Duration(delta)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		last     uint64
		code     string
		wantErr  error
		wantStep uint64
	}{
		{name: "current step", code: code(0), wantStep: step},
		{name: "one step behind", code: code(-1), wantStep: step - 1},
		{name: "one step ahead", code: code(1), wantStep: step + 1},
		{name: "two steps behind", code: code(-2), wantErr: ErrInvalidCode},
		{name: "two steps ahead", code: code(2), wantErr: ErrInvalidCode},
		{name: "spaces ignored", code: code(0)[:3] + " " + code(0)[3:], wantStep: step},
		{name: "replay of the accepted step", last: step, code: code(0), wantErr: ErrReplayed},
		{name: "older step after a newer one", last: step, code: code(-1), wantErr: ErrReplayed},
		{name: "newer step after an older one", last: step - 1, code: code(0), wantStep: step},
		{name: "ahead after current", last: step, code: code(1), wantStep: step + 1},
		{name: "everything replayed after ahead", last: step + 1, code: code(1), wantErr: ErrReplayed},
		{name: "too short", code: code(0)[:5], wantErr: ErrInvalidCode},
		{name: "letters", code: "12345a", wantErr: ErrInvalidCode},
		{name: "empty", code: "", wantErr: ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := State{LastStep: tt.last}
			got, err := a.Verify(secret, in, tt.code, now)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if got != in {
					t.Fatalf("state changed on error: %+v", got)
				}
				return
			}
			if got.LastStep != tt.wantStep {
				t.Fatalf("LastStep = %d, want %d", got.LastStep, tt.wantStep)
			}
		})
	}

	t.Run("step boundary", func(t *testing.T) {
		t.Parallel()
		start := time.Unix(int64(step)*30, 0)
		c0, _ := a.CodeAt(secret, start)
		// Valid throughout its own step and the next (skew), not after.
		for _, at := range []time.Time{start, start.Add(29 * time.Second), start.Add(59 * time.Second)} {
			if _, err := a.Verify(secret, State{}, c0, at); err != nil {
				t.Fatalf("at +%v: %v", at.Sub(start), err)
			}
		}
		if _, err := a.Verify(secret, State{}, c0, start.Add(60*time.Second)); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("two steps later: %v", err)
		}
	})
	t.Run("corrupt secret", func(t *testing.T) {
		t.Parallel()
		if _, err := a.Verify("not base32!", State{}, "123456", now); !errors.Is(err, ErrInvalidSecret) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEnrol(t *testing.T) {
	t.Parallel()
	a := mustNew(t, Config{Issuer: "Spa Engine", Rand: seeded(1)})
	e, err := a.Enrol("ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Secret) != 32 { // 20 bytes in base32 without padding
		t.Fatalf("secret %d chars", len(e.Secret))
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Spa Engine:ana@example.com" ||
		q.Get("secret") != e.Secret || q.Get("issuer") != "Spa Engine" ||
		q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Fatalf("URL %s", e.URL)
	}
	// The enrolment is confirmed by the app's first code.
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	code, _ := a.CodeAt(e.Secret, now)
	if _, err := a.Verify(e.Secret, State{}, code, now); err != nil {
		t.Fatal(err)
	}
	// Secrets differ between enrolments.
	e2, _ := a.Enrol("ana@example.com")
	if e2.Secret == e.Secret {
		t.Fatal("same secret twice")
	}
	if _, err := a.Enrol(""); !errors.Is(err, ErrMissingAccount) {
		t.Fatalf("empty account: %v", err)
	}
	broken := mustNew(t, Config{Rand: bytes.NewReader(nil)})
	if _, err := broken.Enrol("x"); !errors.Is(err, ErrRandom) {
		t.Fatalf("broken rand: %v", err)
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"no issuer":       {},
		"colon in issuer": {Issuer: "a:b"},
		"7 digits":        {Issuer: "x", Digits: 7},
		"small secret":    {Issuer: "x", SecretSize: 10},
		"bad algorithm":   {Issuer: "x", Algorithm: 9},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	t.Parallel()
	plain, set, err := NewRecoveryCodes(seeded(5), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 10 || len(set.Codes) != 10 || set.Remaining() != 10 {
		t.Fatalf("%d codes, %d stored, %d remaining", len(plain), len(set.Codes), set.Remaining())
	}
	seen := map[string]bool{}
	for _, p := range plain {
		if len(p) != 19 || strings.Count(p, "-") != 3 || seen[p] {
			t.Fatalf("code %q", p)
		}
		seen[p] = true
	}
	stored, _ := json.Marshal(set)
	for _, p := range plain {
		if bytes.Contains(stored, []byte(strings.ReplaceAll(p, "-", ""))) || bytes.Contains(stored, []byte(p)) {
			t.Fatal("stored set contains a plaintext code")
		}
	}

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	after, err := set.Redeem(plain[3], now)
	if err != nil {
		t.Fatal(err)
	}
	if after.Remaining() != 9 || !after.Codes[3].Used || !after.Codes[3].UsedAt.Equal(now) {
		t.Fatalf("after redeem: %+v", after.Codes[3])
	}
	if set.Remaining() != 10 {
		t.Fatal("Redeem modified its receiver")
	}
	// Once only, also after persisting.
	var back RecoverySet
	b, _ := json.Marshal(after)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, err := back.Redeem(plain[3], now); !errors.Is(err, ErrRecoveryCodeUsed) {
		t.Fatalf("second redeem: %v", err)
	}
	// Typed by hand: upper case, no dashes, spaces, look-alike letters.
	typed := strings.ToUpper(strings.ReplaceAll(plain[4], "-", " "))
	typed = strings.NewReplacer("1", "L", "0", "O").Replace(typed)
	if _, err := back.Redeem(typed, now); err != nil {
		t.Fatalf("hand-typed %q: %v", typed, err)
	}
	for _, bad := range []string{"", "abcd", plain[0] + "0", strings.Repeat("0", 16), "uuuu-uuuu-uuuu-uuuu", strings.Repeat("0", 1000)} {
		if _, err := back.Redeem(bad, now); !errors.Is(err, ErrInvalidRecoveryCode) {
			t.Errorf("Redeem(%q) = %v", bad, err)
		}
	}
	// Zero time still marks the code used.
	z, err := set.Redeem(plain[0], time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := z.Redeem(plain[0], time.Time{}); !errors.Is(err, ErrRecoveryCodeUsed) {
		t.Fatalf("zero-time reuse: %v", err)
	}

	for _, n := range []int{0, -1, MaxRecoveryCodes + 1} {
		if _, _, err := NewRecoveryCodes(seeded(1), n); !errors.Is(err, ErrRecoveryCount) {
			t.Errorf("n=%d: %v", n, err)
		}
	}
	if _, _, err := NewRecoveryCodes(bytes.NewReader(make([]byte, 15)), 2); !errors.Is(err, ErrRandom) {
		t.Fatalf("short rand: %v", err)
	}
}

// FuzzUserInput feeds arbitrary user input to the two functions that take
// it: Verify never panics and never accepts what is not the code, Redeem
// never panics and never accepts what is not in the set.
func FuzzUserInput(f *testing.F) {
	a := mustNew(f, Config{})
	secret := SecretFromBytes([]byte("12345678901234567890"))
	now := time.Unix(1_800_000_015, 0)
	plain, set, err := NewRecoveryCodes(seeded(11), 3)
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]bool{}
	for d := -1; d <= 1; d++ {
		c, _ := a.CodeAt(secret, now.Add(time.Duration(d)*30*time.Second))
		valid[c] = true
		f.Add(c)
	}
	for _, p := range plain {
		f.Add(p)
	}
	f.Add("")
	f.Add("12 34 56")
	f.Add("ILO0-iloo-1111-0000")
	f.Fuzz(func(t *testing.T, in string) {
		if st, err := a.Verify(secret, State{}, in, now); err == nil {
			if !valid[strings.ReplaceAll(in, " ", "")] || st.LastStep == 0 {
				t.Fatalf("Verify accepted %q", in)
			}
		}
		if out, err := set.Redeem(in, now); err == nil {
			norm, _ := normaliseRecovery(in)
			found := false
			for _, p := range plain {
				if pn, _ := normaliseRecovery(p); pn == norm {
					found = true
				}
			}
			if !found || out.Remaining() != 2 {
				t.Fatalf("Redeem accepted %q", in)
			}
		}
	})
}
