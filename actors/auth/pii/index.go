package pii

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"unicode"
)

// MinIndexKeyLen is the minimum length of a blind index key.
const MinIndexKeyLen = 32

// ErrShortIndexKey: the blind index key is shorter than MinIndexKeyLen.
var ErrShortIndexKey = errors.New("pii: blind index key too short")

// Field names what kind of value is indexed. It selects the normalisation
// and separates the index domains, so an email and a document number that
// happen to be the same string never share an index value.
type Field string

// The indexed fields.
const (
	// FieldPhone: an E.164 number; only '+' and digits are kept.
	FieldPhone Field = "phone"
	// FieldEmail: trimmed and lower-cased.
	FieldEmail Field = "email"
	// FieldDocument: an identity document number; upper-cased with spaces,
	// dots and dashes removed ("1.234.567-8" and "12345678" match).
	FieldDocument Field = "document"
)

// Normalize returns the form of v that is indexed for f. Unknown fields are
// only trimmed.
func Normalize(f Field, v string) string {
	v = strings.TrimSpace(v)
	switch f {
	case FieldPhone:
		return strings.Map(func(r rune) rune {
			if r == '+' || (r >= '0' && r <= '9') {
				return r
			}
			return -1
		}, v)
	case FieldEmail:
		return strings.ToLower(v)
	case FieldDocument:
		return strings.Map(func(r rune) rune {
			if r == '.' || r == '-' || unicode.IsSpace(r) {
				return -1
			}
			return unicode.ToUpper(r)
		}, v)
	}
	return v
}

// BlindIndex computes keyed, deterministic digests of PII so a column can be
// searched for equality ("which client has this phone?") without storing the
// value in clear. Its key must differ from every Keyring key and stay stable:
// changing it means recomputing every index value. It is safe for
// concurrent use.
type BlindIndex struct {
	key []byte
}

// NewBlindIndex returns a BlindIndex under key (at least MinIndexKeyLen
// bytes of secret randomness; the slice is copied).
func NewBlindIndex(key []byte) (*BlindIndex, error) {
	if len(key) < MinIndexKeyLen {
		return nil, ErrShortIndexKey
	}
	return &BlindIndex{key: append([]byte(nil), key...)}, nil
}

// Sum returns HMAC-SHA256(key, field | 0x00 | Normalize(field, v)), 32
// bytes. Equal normalised values give equal sums; without the key a sum
// reveals nothing, and phone numbers' small space is out of reach of
// offline guessing.
func (b *BlindIndex) Sum(f Field, v string) []byte {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(f))
	m.Write([]byte{0})
	m.Write([]byte(Normalize(f, v)))
	return m.Sum(nil)
}
