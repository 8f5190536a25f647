package pii

import (
	"crypto/rand"
	"errors"
	"io"
)

// ClientKeys is crypto-shredding's cryptography (persistence.PersonalSealer):
// each client has a random data key of its own, personal free text about
// the client (a shipping address, a cancellation reason, the reason an
// event carries) is sealed under it, and the data key is stored wrapped —
// sealed under the Keyring, so a rotation rewraps one small value per
// client instead of every sealed value. Destroying the stored key (the
// anonymisation does) makes every copy of that text unreadable, even in
// places the scrub cannot reach: events in the JetStream stream, backups.
// No I/O: the store keeps the wrapped keys.
type ClientKeys struct {
	Keys *Keyring
	// Rand is the source of data keys and nonces; crypto/rand when nil.
	// It must be safe for concurrent use.
	Rand io.Reader
}

// dataKeyID is the key id a ciphertext under a client data key names.
const dataKeyID = "client"

// ClientKeyContext is the context of client_keys.key_cipher.
func ClientKeyContext(clientID string) []byte { return []byte("client_keys.key/" + clientID) }

// NewKey returns a fresh data key for clientID and that key wrapped.
func (c ClientKeys) NewKey(clientID string) (key, wrapped []byte, err error) {
	if c.Keys == nil {
		return nil, nil, errors.New("pii: client keys need a keyring")
	}
	key = make([]byte, KeyLen)
	if _, err := io.ReadFull(c.rand(), key); err != nil {
		return nil, nil, ErrRandom
	}
	wrapped, err = c.Keys.Encrypt(key, ClientKeyContext(clientID))
	return key, wrapped, err
}

func (c ClientKeys) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// UnwrapKey opens a stored data key of clientID.
func (c ClientKeys) UnwrapKey(clientID string, wrapped []byte) ([]byte, error) {
	if c.Keys == nil {
		return nil, errors.New("pii: client keys need a keyring")
	}
	return c.Keys.Decrypt(wrapped, ClientKeyContext(clientID))
}

// Seal encrypts plaintext under a data key, in the Keyring's format (key
// id "client"); context names where the value lives.
func (c ClientKeys) Seal(key, context, plaintext []byte) ([]byte, error) {
	r, err := dataKeyring(key, c.rand())
	if err != nil {
		return nil, err
	}
	return r.Encrypt(plaintext, context)
}

// Open reverses Seal.
func (c ClientKeys) Open(key, context, ciphertext []byte) ([]byte, error) {
	r, err := dataKeyring(key, nil)
	if err != nil {
		return nil, err
	}
	return r.Decrypt(ciphertext, context)
}

func dataKeyring(key []byte, rand io.Reader) (*Keyring, error) {
	return NewKeyring(KeyringConfig{Primary: dataKeyID, Keys: map[string][]byte{dataKeyID: key}, Rand: rand})
}
