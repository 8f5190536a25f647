// Package otp holds the rules of phone login codes: how a code is drawn,
// how it is stored, when it is accepted, and how many attempts and sends a
// phone number is allowed.
//
// Its place: the session actor of the identity issue (one per phone number)
// owns a Challenge and a State and asks this package every question; the
// identity endpoints translate the answers into responses. Nothing here does
// I/O, reads the clock or keeps global state: time and randomness are passed
// in, and Challenge and State are plain values with exported fields so the
// actor can persist them (JSON or any codec) and the limits survive a
// restart or a move to another node. That replaces the old system's Redis
// counters, which failed open when Redis was down.
//
// Codes are never stored: a Challenge keeps only HMAC-SHA256(server key,
// phone|code), compared in constant time. Failures are counted per phone
// across codes, so asking for a new code never buys an attacker fresh
// guesses.
package otp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"time"
)

// CodeLen is the number of decimal digits in a login code.
const CodeLen = 6

// MaxTTL is the longest a code may stay valid.
const MaxTTL = 10 * time.Minute

// MinKeyLen is the minimum length of the HMAC key that hashes codes.
const MinKeyLen = 32

// codeSpace is 10^CodeLen.
const codeSpace = 1_000_000

// acceptBelow is the largest multiple of codeSpace that fits in 32 bits.
// Drawing a uint32 and rejecting values at or above it makes value%codeSpace
// exactly uniform: plain modulo would favour the low codes slightly.
const acceptBelow = (1 << 32) / codeSpace * codeSpace

// Errors returned by NewHasher and NewChallenge.
var (
	// ErrShortKey: the HMAC key is shorter than MinKeyLen bytes.
	ErrShortKey = errors.New("otp: key too short")
	// ErrInvalidTTL: a code lifetime outside (0, MaxTTL].
	ErrInvalidTTL = errors.New("otp: code lifetime must be positive and at most 10 minutes")
	// ErrRandom: the random source failed. The code is not issued.
	ErrRandom = errors.New("otp: random source failed")
)

// NewCode draws a code of CodeLen digits, uniformly from 000000-999999,
// from r (crypto/rand.Reader in production).
func NewCode(r io.Reader) (string, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", ErrRandom
		}
		v := binary.BigEndian.Uint32(b[:])
		if v < acceptBelow {
			return formatCode(v % codeSpace), nil
		}
	}
}

func formatCode(v uint32) string {
	var out [CodeLen]byte
	for i := CodeLen - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
	return string(out[:])
}

// Hasher turns a (phone, code) pair into the value a Challenge stores. It is
// safe for concurrent use.
type Hasher struct {
	key []byte
}

// NewHasher returns a Hasher keyed with key, which must be at least
// MinKeyLen bytes of secret randomness. Rotating the key invalidates the
// codes outstanding at that moment (they live ten minutes at most).
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < MinKeyLen {
		return nil, ErrShortKey
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Sum returns HMAC-SHA256(key, phone|code). Binding the phone means a code
// hash leaked from one actor's state is useless for another number. The
// phone is an E.164 string, which never contains '|', so the encoding is
// unambiguous.
func (h *Hasher) Sum(phone, code string) []byte {
	m := hmac.New(sha256.New, h.key)
	io.WriteString(m, phone)
	io.WriteString(m, "|")
	io.WriteString(m, code)
	return m.Sum(nil)
}

// Equal reports, in constant time, whether sum is the hash of (phone, code).
func (h *Hasher) Equal(sum []byte, phone, code string) bool {
	return hmac.Equal(sum, h.Sum(phone, code))
}
