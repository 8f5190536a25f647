// Package pii protects the personal data of client profiles: envelope
// encryption of fields at rest, a keyed blind index for equality lookups, and
// masking for logs and for responses to roles that do not need the data.
//
// Its place: the profile store and the identity endpoints to come encrypt
// phone, email, document number, birth date and clinical notes with a
// Keyring before they reach persistence, look clients up by phone through a
// BlindIndex column, and mask values with the Mask helpers. Key rotation is a
// background job that finds ciphertexts whose KeyID is not the primary one
// and calls Keyring.Reencrypt. Nothing here does I/O; keys and randomness are
// passed in.
//
// Phone numbers are masked by actors/auth/phone.Mask, which knows country
// codes; the helpers here cover email and document numbers.
//
// Errors never contain key material, plaintext or ciphertext bytes; key ids
// are not secret and may appear.
package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
)

// Version is the format byte at the start of every ciphertext.
const Version byte = 1

// KeyLen is the AES-256 key length.
const KeyLen = 32

// MaxKeyIDLen bounds a key id, which travels in every ciphertext.
const MaxKeyIDLen = 64

const nonceLen = 12

// Errors returned by Keyring.
var (
	// ErrInvalidKey: a key is not KeyLen bytes, or a key id is empty, too
	// long or not printable ASCII.
	ErrInvalidKey = errors.New("pii: invalid key")
	// ErrNoPrimary: the primary key id is not among the loaded keys.
	ErrNoPrimary = errors.New("pii: primary key not loaded")
	// ErrMalformed: the bytes are not a ciphertext of this package.
	ErrMalformed = errors.New("pii: malformed ciphertext")
	// ErrUnsupportedVersion: the ciphertext has an unknown format version.
	ErrUnsupportedVersion = errors.New("pii: unsupported ciphertext version")
	// ErrUnknownKeyID: the ciphertext was sealed under a key not loaded
	// here (retired too early, or a configuration mistake).
	ErrUnknownKeyID = errors.New("pii: unknown key id")
	// ErrDecrypt: authentication failed: the ciphertext or its context was
	// altered, or the key with that id is not the one that sealed it.
	ErrDecrypt = errors.New("pii: decryption failed")
	// ErrRandom: the random source failed.
	ErrRandom = errors.New("pii: random source failed")
)

// KeyringConfig configures a Keyring.
type KeyringConfig struct {
	// Primary is the id of the key new ciphertexts are sealed under.
	Primary string
	// Keys maps key ids to 32-byte AES-256 keys: the primary and every
	// older key whose ciphertexts may still exist. The map and slices are
	// copied.
	Keys map[string][]byte
	// Rand is the nonce source; crypto/rand.Reader when nil.
	Rand io.Reader
}

// Keyring seals and opens PII fields. It is safe for concurrent use.
//
// A ciphertext is
//
//	version (1 byte) | key id length (1 byte) | key id | nonce (12 bytes) | AES-256-GCM sealed data
//
// The header (version and key id) and a caller-chosen context are bound as
// additional authenticated data, so neither the key id nor the field a value
// belongs to can be swapped without detection. Nonces are random: keep a key
// well under 2^32 encryptions, which rotation makes easy.
type Keyring struct {
	primary string
	aeads   map[string]cipher.AEAD

	randMu sync.Mutex
	rand   io.Reader
}

// NewKeyring validates cfg and returns a Keyring.
func NewKeyring(cfg KeyringConfig) (*Keyring, error) {
	k := &Keyring{primary: cfg.Primary, aeads: make(map[string]cipher.AEAD, len(cfg.Keys)), rand: cfg.Rand}
	if k.rand == nil {
		k.rand = rand.Reader
	}
	for id, key := range cfg.Keys {
		if !validKeyID(id) {
			return nil, fmt.Errorf("%w: key id must be 1-%d printable ASCII characters", ErrInvalidKey, MaxKeyIDLen)
		}
		if len(key) != KeyLen {
			return nil, fmt.Errorf("%w: key %q must be %d bytes", ErrInvalidKey, id, KeyLen)
		}
		block, err := aes.NewCipher(key) // copies the key schedule
		if err != nil {
			return nil, fmt.Errorf("%w: key %q", ErrInvalidKey, id)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q", ErrInvalidKey, id)
		}
		k.aeads[id] = aead
	}
	if _, ok := k.aeads[cfg.Primary]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoPrimary, cfg.Primary)
	}
	return k, nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// Primary returns the id new ciphertexts are sealed under.
func (k *Keyring) Primary() string { return k.primary }

// KeyIDs returns the ids of the loaded keys, sorted.
func (k *Keyring) KeyIDs() []string { return slices.Sorted(maps.Keys(k.aeads)) }

func header(keyID string) []byte {
	h := make([]byte, 0, 2+len(keyID)+nonceLen)
	h = append(h, Version, byte(len(keyID)))
	return append(h, keyID...)
}

// aad binds the header and the caller's context. The header's length is
// implied by its own length byte, so the concatenation is unambiguous.
func aad(hdr, context []byte) []byte {
	return append(slices.Clip(hdr), context...)
}

// Encrypt seals plaintext under the primary key. context is authenticated
// but not stored: pass something that names where the value lives (say
// "client_profile.email:" + client id) and give the same at decryption, so a
// ciphertext copied into another row or column fails to open.
func (k *Keyring) Encrypt(plaintext, context []byte) ([]byte, error) {
	return k.seal(k.primary, plaintext, context)
}

func (k *Keyring) seal(keyID string, plaintext, context []byte) ([]byte, error) {
	aead := k.aeads[keyID]
	hdr := header(keyID)
	nonce := make([]byte, nonceLen)
	k.randMu.Lock()
	_, err := io.ReadFull(k.rand, nonce)
	k.randMu.Unlock()
	if err != nil {
		return nil, ErrRandom
	}
	out := make([]byte, 0, len(hdr)+nonceLen+len(plaintext)+aead.Overhead())
	out = append(append(out, hdr...), nonce...)
	return aead.Seal(out, nonce, plaintext, aad(hdr, context)), nil
}

// parsed is a ciphertext split into its parts.
type parsed struct {
	keyID  string
	hdr    []byte
	nonce  []byte
	sealed []byte
}

func parse(ct []byte) (parsed, error) {
	if len(ct) < 2 {
		return parsed{}, ErrMalformed
	}
	if ct[0] != Version {
		return parsed{}, ErrUnsupportedVersion
	}
	n := int(ct[1])
	if n == 0 || n > MaxKeyIDLen || len(ct) < 2+n+nonceLen+16 {
		return parsed{}, ErrMalformed
	}
	id := string(ct[2 : 2+n])
	if !validKeyID(id) {
		return parsed{}, ErrMalformed
	}
	return parsed{
		keyID:  id,
		hdr:    ct[:2+n],
		nonce:  ct[2+n : 2+n+nonceLen],
		sealed: ct[2+n+nonceLen:],
	}, nil
}

// KeyID returns the id of the key ct was sealed under, without decrypting;
// the rotation job uses it to find what still needs re-encryption.
func KeyID(ct []byte) (string, error) {
	p, err := parse(ct)
	if err != nil {
		return "", err
	}
	return p.keyID, nil
}

// Decrypt opens ct with the key its header names, which may be any loaded
// key, so data sealed before a rotation still opens. context must equal the
// one given to Encrypt.
func (k *Keyring) Decrypt(ct, context []byte) ([]byte, error) {
	p, err := parse(ct)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[p.keyID]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKeyID, p.keyID)
	}
	pt, err := aead.Open(nil, p.nonce, p.sealed, aad(p.hdr, context))
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// NeedsReencrypt reports whether ct is sealed under a key other than the
// primary (and so should be rewritten by the rotation job).
func (k *Keyring) NeedsReencrypt(ct []byte) bool {
	id, err := KeyID(ct)
	return err == nil && id != k.primary
}

// Reencrypt opens ct and seals the plaintext again under the primary key,
// with the same context. A ciphertext already under the primary is returned
// unchanged (no new nonce spent).
func (k *Keyring) Reencrypt(ct, context []byte) ([]byte, error) {
	pt, err := k.Decrypt(ct, context)
	if err != nil {
		return nil, err
	}
	if !k.NeedsReencrypt(ct) {
		return ct, nil
	}
	defer clear(pt)
	return k.Encrypt(pt, context)
}
