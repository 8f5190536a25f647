package otp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const phone = "+573001234567"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testHasher(tb testing.TB) *Hasher {
	tb.Helper()
	h, err := NewHasher(bytes.Repeat([]byte{0x42}, MinKeyLen))
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func TestNewCodeFormat(t *testing.T) {
	t.Parallel()
	r := seeded(1)
	for range 1000 {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != CodeLen || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("bad code %q", c)
		}
	}
}

// uint32s feeds NewCode exact 32-bit draws.
func uint32s(vs ...uint32) *bytes.Reader {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return bytes.NewReader(b)
}

func TestNewCodeRejectionSampling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		draws []uint32
		want  string
	}{
		{"zero", []uint32{0}, "000000"},
		{"leading zeros kept", []uint32{42}, "000042"},
		{"reduced modulo", []uint32{1_000_123}, "000123"},
		{"last accepted draw", []uint32{acceptBelow - 1}, "999999"},
		// Draws at or above acceptBelow would map onto 000000-967295 and
		// favour them; they are thrown away and the next draw is used.
		{"first rejected draw", []uint32{acceptBelow, 7}, "000007"},
		{"max draw rejected", []uint32{1<<32 - 1, 1<<32 - 2, 999_999}, "999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NewCode(uint32s(tt.draws...))
			if err != nil || got != tt.want {
				t.Fatalf("NewCode = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := NewCode(uint32s(acceptBelow)); !errors.Is(err, ErrRandom) {
		t.Fatalf("exhausted reader: err = %v, want ErrRandom", err)
	}
	if acceptBelow%codeSpace != 0 || acceptBelow+codeSpace <= 1<<32-1 {
		t.Fatalf("acceptBelow %d is not the largest multiple of %d below 2^32", acceptBelow, codeSpace)
	}
}

// A coarse uniformity check: each leading digit and each last digit must
// appear about a tenth of the time (chi-square, 9 degrees of freedom; 27.88
// is the 0.001 critical value, and the stream is seeded so this is stable).
func TestNewCodeUniform(t *testing.T) {
	t.Parallel()
	const n = 100_000
	var first, last [10]int
	r := seeded(7)
	for range n {
		c, err := NewCode(r)
		if err != nil {
			t.Fatal(err)
		}
		first[c[0]-'0']++
		last[c[CodeLen-1]-'0']++
	}
	for name, counts := range map[string][10]int{"first": first, "last": last} {
		var chi float64
		for _, o := range counts {
			d := float64(o) - n/10
			chi += d * d / (n / 10)
		}
		if chi > 27.88 {
			t.Errorf("%s digit distribution %v: chi2 = %.1f", name, counts, chi)
		}
	}
}

func TestHasher(t *testing.T) {
	t.Parallel()
	if _, err := NewHasher(make([]byte, MinKeyLen-1)); !errors.Is(err, ErrShortKey) {
		t.Fatalf("short key: %v", err)
	}
	h := testHasher(t)
	sum := h.Sum(phone, "123456")
	if len(sum) != 32 {
		t.Fatalf("sum length %d", len(sum))
	}
	if !h.Equal(sum, phone, "123456") {
		t.Fatal("Equal rejects its own sum")
	}
	if h.Equal(sum, phone, "123457") || h.Equal(sum, "+573001234568", "123456") {
		t.Fatal("Equal accepts another code or phone")
	}
	other, _ := NewHasher(bytes.Repeat([]byte{0x43}, MinKeyLen))
	if other.Equal(sum, phone, "123456") {
		t.Fatal("sum does not depend on the key")
	}
	if bytes.Contains(sum, []byte("123456")) {
		t.Fatal("sum contains the code")
	}
}

func TestChallengeVerify(t *testing.T) {
	t.Parallel()
	h := testHasher(t)
	code, base, err := NewChallenge(h, seeded(3), phone, t0, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	tests := []struct {
		name     string
		used     bool
		phone    string
		code     string
		at       time.Time
		want     Result
		wantUsed bool
	}{
		{name: "right code at issue", phone: phone, code: code, at: t0, want: ResultOK, wantUsed: true},
		{name: "right code one ns before expiry", phone: phone, code: code, at: t0.Add(5*time.Minute - 1), want: ResultOK, wantUsed: true},
		{name: "right code at the expiry instant", phone: phone, code: code, at: t0.Add(5 * time.Minute), want: ResultExpired},
		{name: "right code after expiry", phone: phone, code: code, at: t0.Add(time.Hour), want: ResultExpired},
		{name: "wrong code", phone: phone, code: wrong, at: t0, want: ResultWrong},
		{name: "wrong code after expiry says expired", phone: phone, code: wrong, at: t0.Add(5 * time.Minute), want: ResultExpired},
		{name: "right code for another phone", phone: "+573001234568", code: code, at: t0, want: ResultWrong},
		{name: "short code", phone: phone, code: code[:5], at: t0, want: ResultWrong},
		{name: "code with padding", phone: phone, code: " " + code, at: t0, want: ResultWrong},
		{name: "used", used: true, phone: phone, code: code, at: t0, want: ResultUsed, wantUsed: true},
		{name: "used and expired says used", used: true, phone: phone, code: code, at: t0.Add(time.Hour), want: ResultUsed, wantUsed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := base
			c.Used = tt.used
			if got := c.Verify(h, tt.phone, tt.code, tt.at); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
			if c.Used != tt.wantUsed {
				t.Fatalf("Used = %v, want %v", c.Used, tt.wantUsed)
			}
		})
	}

	t.Run("single use", func(t *testing.T) {
		t.Parallel()
		c := base
		if r := c.Verify(h, phone, code, t0); r != ResultOK {
			t.Fatalf("first Verify = %v", r)
		}
		if r := c.Verify(h, phone, code, t0.Add(time.Second)); r != ResultUsed {
			t.Fatalf("second Verify = %v, want used", r)
		}
	})
	t.Run("zero challenge is expired", func(t *testing.T) {
		t.Parallel()
		var c Challenge
		if r := c.Verify(h, phone, code, t0); r != ResultExpired {
			t.Fatalf("Verify = %v", r)
		}
	})
	t.Run("persisted lifetime beyond MaxTTL is not trusted", func(t *testing.T) {
		t.Parallel()
		c := base
		c.ExpiresAt = c.IssuedAt.Add(MaxTTL + time.Second)
		if r := c.Verify(h, phone, code, t0); r != ResultExpired {
			t.Fatalf("Verify = %v", r)
		}
	})
}

func TestNewChallengeTTL(t *testing.T) {
	t.Parallel()
	h := testHasher(t)
	for _, ttl := range []time.Duration{0, -time.Second, MaxTTL + 1} {
		if _, _, err := NewChallenge(h, seeded(1), phone, t0, ttl); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("ttl %v: err = %v", ttl, err)
		}
	}
	code, c, err := NewChallenge(h, seeded(1), phone, t0, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(MaxTTL)) || c.Used {
		t.Fatalf("challenge %+v", c)
	}
	if !h.Equal(c.Hash, phone, code) {
		t.Fatal("challenge hash is not the code's")
	}
	if r := c.Verify(h, phone, code, t0.Add(MaxTTL)); r != ResultExpired {
		t.Fatalf("at MaxTTL: %v", r)
	}
	if _, _, err := NewChallenge(h, bytes.NewReader(nil), phone, t0, MaxTTL); !errors.Is(err, ErrRandom) {
		t.Fatalf("broken rand: %v", err)
	}
}

func TestChallengeJSONHasNoCode(t *testing.T) {
	t.Parallel()
	h := testHasher(t)
	code, c, err := NewChallenge(h, seeded(9), phone, t0, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(code)) {
		t.Fatalf("persisted challenge %s contains the code", b)
	}
	var back Challenge
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if r := back.Verify(h, phone, code, t0.Add(time.Minute)); r != ResultOK {
		t.Fatalf("restored challenge: %v", r)
	}
}

func TestResultString(t *testing.T) {
	t.Parallel()
	want := map[Result]string{ResultOK: "ok", ResultWrong: "wrong", ResultExpired: "expired", ResultUsed: "used", ResultLocked: "locked", 0: "unknown"}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), s)
		}
	}
}
