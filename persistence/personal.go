package persistence

import (
	"context"
	"errors"
	"time"
)

// Personal free text about a client — a shipping address, the reason of a
// cancellation, a return or a credit grant, the reason an event carries —
// is sealed at rest under a data key of that client (crypto-shredding).
// The store seals and opens those columns itself, so every reader and
// writer gets them in the clear and none can forget; code that puts such
// text anywhere else (an event payload) seals it with PersonalSeal. The
// data key is kept in client_keys sealed under the PII keyring, so a key
// rotation rewraps one small row per client; anonymisation deletes it,
// after which every copy of the text — in the outbox, in the JetStream
// stream, in a backup — no longer opens.

// ErrShredded: the client's data key was destroyed (anonymisation); what
// was sealed under it can never be opened again.
var ErrShredded = errors.New("persistence: the client's data key was destroyed")

// PersonalSealer is the cryptography of client data keys, given to a
// driver in Options (pii.ClientKeys). It does no I/O: the store keeps the
// keys.
type PersonalSealer interface {
	// NewKey returns a fresh data key for clientID and that key wrapped
	// (sealed) for storage.
	NewKey(clientID string) (key, wrapped []byte, err error)
	// UnwrapKey opens a stored data key of clientID.
	UnwrapKey(clientID string, wrapped []byte) ([]byte, error)
	// Seal and Open encrypt under a data key; context names the value's
	// place, so a ciphertext moved elsewhere does not open.
	Seal(key, context, plaintext []byte) ([]byte, error)
	Open(key, context, ciphertext []byte) ([]byte, error)
}

// ClientKey is one client's data key as stored: sealed under the PII
// keyring.
type ClientKey struct {
	ClientID  string
	KeyCipher []byte
	CreatedAt time.Time
}

// ClientKeyStore keeps the client data keys and seals with them.
type ClientKeyStore interface {
	// PersonalSeal seals plaintext, personal text about clientID kept at
	// place ("events.appointment_changed.reason/<appointment id>"), under
	// the client's data key, creating the key on first use. sealed is
	// false, and plaintext returned as it is, when the store has no
	// PersonalSealer (tests, a node without PII keys).
	PersonalSeal(ctx context.Context, clientID, place string, plaintext []byte) (out []byte, sealed bool, err error)
	// PersonalOpen reverses PersonalSeal: ErrShredded when the client's
	// key was destroyed.
	PersonalOpen(ctx context.Context, clientID, place string, ciphertext []byte) ([]byte, error)
	// ClientKeyListAfter returns up to limit stored keys in client id
	// order after after: the key rotation's batches.
	ClientKeyListAfter(ctx context.Context, after string, limit int) ([]ClientKey, error)
	// ClientKeyReplace rewrites a client's wrapped key when it is still
	// old (the rotation's rewrap) and reports whether it did.
	ClientKeyReplace(ctx context.Context, clientID string, old, next []byte) (bool, error)
}
