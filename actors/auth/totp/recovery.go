package totp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
)

// Recovery codes let a user who lost the authenticator sign in a few more
// times. Each carries 80 random bits, far beyond online or offline guessing,
// so a plain SHA-256 is enough to store them: there is no low-entropy
// password here for a slow hash to protect.

// recoveryAlphabet is Crockford's base32: no i, l, o or u, so a code read
// aloud or copied by hand survives.
const recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

var recoveryEncoding = base32.NewEncoding(recoveryAlphabet).WithPadding(base32.NoPadding)

const (
	recoveryBytes = 10 // 80 bits
	recoveryChars = 16 // 80 / 5
	// MaxRecoveryCodes bounds how many codes one set may hold.
	MaxRecoveryCodes = 100
)

// Errors returned by the recovery code functions.
var (
	// ErrInvalidRecoveryCode: the code is malformed or not in the set.
	ErrInvalidRecoveryCode = errors.New("totp: invalid recovery code")
	// ErrRecoveryCodeUsed: the code is in the set but was redeemed before.
	ErrRecoveryCodeUsed = errors.New("totp: recovery code already used")
	// ErrRecoveryCount: NewRecoveryCodes was asked for a count outside
	// 1..MaxRecoveryCodes.
	ErrRecoveryCount = errors.New("totp: recovery code count out of range")
)

// RecoveryCode is the stored form of one recovery code.
type RecoveryCode struct {
	// Hash is SHA-256 of the normalised code.
	Hash []byte `json:"hash"`
	// Used is set once the code has been redeemed.
	Used bool `json:"used,omitempty"`
	// UsedAt is when the code was redeemed, for the audit trail.
	UsedAt time.Time `json:"used_at,omitzero"`
}

// RecoverySet is a user's recovery codes as the actor persists them: hashes
// only. Treat it as a value: Redeem returns a new set.
type RecoverySet struct {
	// Codes are the stored codes, in generation order.
	Codes []RecoveryCode `json:"codes"`
}

// NewRecoveryCodes draws n codes from r (crypto/rand.Reader in production).
// It returns the codes, formatted "xxxx-xxxx-xxxx-xxxx", to show the user
// once, and the set to store. Generating a new set replaces the old one.
func NewRecoveryCodes(r io.Reader, n int) ([]string, RecoverySet, error) {
	if n < 1 || n > MaxRecoveryCodes {
		return nil, RecoverySet{}, ErrRecoveryCount
	}
	plain := make([]string, n)
	set := RecoverySet{Codes: make([]RecoveryCode, n)}
	buf := make([]byte, recoveryBytes)
	for i := range n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, RecoverySet{}, ErrRandom
		}
		raw := recoveryEncoding.EncodeToString(buf)
		plain[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		set.Codes[i] = RecoveryCode{Hash: hashRecovery(raw)}
	}
	return plain, set, nil
}

func hashRecovery(normalised string) []byte {
	sum := sha256.Sum256([]byte(normalised))
	return sum[:]
}

// normaliseRecovery accepts what a user might type: any case, dashes and
// spaces, and the letters Crockford's alphabet folds onto digits.
func normaliseRecovery(code string) (string, bool) {
	var b strings.Builder
	for _, c := range strings.ToLower(code) {
		switch c {
		case '-', ' ':
			continue
		case 'i', 'l':
			c = '1'
		case 'o':
			c = '0'
		}
		if !strings.ContainsRune(recoveryAlphabet, c) {
			return "", false
		}
		b.WriteRune(c)
		if b.Len() > recoveryChars {
			return "", false
		}
	}
	return b.String(), b.Len() == recoveryChars
}

// Remaining returns the number of unused codes.
func (s RecoverySet) Remaining() int {
	n := 0
	for _, c := range s.Codes {
		if !c.Used {
			n++
		}
	}
	return n
}

// Redeem spends code at now and returns the updated set, or
// ErrInvalidRecoveryCode / ErrRecoveryCodeUsed with s unchanged. Every
// stored hash is compared in constant time.
func (s RecoverySet) Redeem(code string, now time.Time) (RecoverySet, error) {
	norm, ok := normaliseRecovery(code)
	if !ok {
		return s, ErrInvalidRecoveryCode
	}
	h := hashRecovery(norm)
	match := -1
	for i, c := range s.Codes {
		if subtle.ConstantTimeCompare(h, c.Hash) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return s, ErrInvalidRecoveryCode
	}
	if s.Codes[match].Used {
		return s, ErrRecoveryCodeUsed
	}
	out := RecoverySet{Codes: slices.Clone(s.Codes)}
	out.Codes[match].Used, out.Codes[match].UsedAt = true, now
	return out, nil
}
