// Package keyed lets the actor that decides a request remember its answer
// under the client's Idempotency-Key, in the same transaction as the
// change the answer reports (the actor's group commit), so a keyed success
// costs no transaction of its own and a keyed refusal none at all.
//
// The key travels with the request into the actor. The actor is the single
// writer of its calendar, so it is also the single place that can tell a
// retry from a first request: its Book holds every answer it gave under a
// key (loaded again on activation, by owner), and a duplicate that arrives
// while the first answer is still being written waits for that answer.
// Only successes are remembered; a refusal decided in memory is decided
// again on retry, which is linearizable and what the client wants.
//
// A key is unique per caller across the whole system (the table's primary
// key): were the same key answered by another actor or by the HTTP edge,
// the actor's write refuses (ErrElsewhere) and the caller reads the stored
// answer instead (Lookup).
package keyed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/persistence"
)

// Key is a client's Idempotency-Key travelling with the request it names.
// The actor only reads it; the caller learns from Replayed whether the
// answer it got was the stored one.
type Key struct {
	Scope string // who may reuse it: "sub:<subject>" or "anonymous"
	Name  string // the header's value
	// Hash is the request's fingerprint (method, target, canonical body);
	// read it with Fingerprint. A key made by Fingerprinted computes it on
	// first use: a refusal decided in memory never compares or stores it,
	// and canonicalising the body is most of what a key would cost.
	Hash []byte

	fingerprint func() []byte
	once        sync.Once
	replayed    bool
}

// Fingerprinted is a key whose fingerprint fp computes when first needed;
// fp may run in another goroutine, after the caller returned, so it must
// not read buffers the caller reuses.
func Fingerprinted(scope, name string, fp func() []byte) *Key {
	return &Key{Scope: scope, Name: name, fingerprint: fp}
}

// Fingerprint is the request's fingerprint, computed once.
func (k *Key) Fingerprint() []byte {
	k.once.Do(func() {
		if k.Hash == nil && k.fingerprint != nil {
			k.Hash = k.fingerprint()
		}
	})
	return k.Hash
}

// MarkReplayed records that the answer to this request is a replay (the
// caller's side, in the request's goroutine).
func (k *Key) MarkReplayed() {
	if k != nil {
		k.replayed = true
	}
}

// Replayed reports whether MarkReplayed was called.
func (k *Key) Replayed() bool { return k != nil && k.replayed }

// keyID is a key's place in a Book (a struct, so a lookup allocates
// nothing).
type keyID struct{ scope, name string }

func (k *Key) id() keyID { return keyID{k.Scope, k.Name} }

// Errors of the protocol. They travel in replies (and across nodes as
// codes), so each is a plain sentinel.
var (
	// ErrReused: the key answered a different request (another fingerprint).
	ErrReused = errors.New("keyed: idempotency key used before for a different request")
	// ErrElsewhere: the key's record was written by someone else (another
	// actor, or the HTTP edge); Lookup reads it.
	ErrElsewhere = errors.New("keyed: idempotency key answered elsewhere")
	// ErrAtEdge: the request takes more than one decision (a room and a
	// staff member, a package session), so no single actor can remember
	// its answer with its effect: a use case returns it, before any
	// effect, for the caller to keep the key by the edge's own protocol.
	ErrAtEdge = errors.New("keyed: this request's key is kept at the edge")
	// ErrUndecided: Lookup found no answer for the key (the write that
	// refused ours has not committed or was rolled back): retry.
	ErrUndecided = errors.New("keyed: no answer stored under the key yet; retry")
)

// DefaultTTL is how long an answer is replayed when Config leaves TTL zero.
const DefaultTTL = 24 * time.Hour

// Config is what the actors of a node share.
type Config struct {
	TTL time.Duration // how long an answer is replayed (DefaultTTL)
	// Seal, when set, encrypts stored answers (they may carry personal
	// data); nil stores them as they are.
	Seal Sealer
}

// Sealer encrypts stored answers: *pii.Keyring.
type Sealer interface {
	Encrypt(plaintext, context []byte) ([]byte, error)
	Decrypt(ciphertext, context []byte) ([]byte, error)
}

func (c Config) ttl() time.Duration {
	if c.TTL <= 0 {
		return DefaultTTL
	}
	return c.TTL
}

// sealContext binds a sealed body to its row, so a body copied to another
// key fails to open.
func sealContext(scope, key string) []byte {
	return []byte("idempotency_records.response_body/" + scope + "/" + key)
}

// Seal encrypts a body stored under (scope, key) with s (nil: as is).
func Seal(s Sealer, scope, key string, body []byte) ([]byte, error) {
	if s == nil || len(body) == 0 {
		return body, nil
	}
	return s.Encrypt(body, sealContext(scope, key))
}

// Open reverses Seal. A body that is not sealed (written before sealing
// was on: never starts with the ciphertext's version byte, as a JSON or
// text body cannot) is returned as it is.
func Open(s Sealer, scope, key string, body []byte) ([]byte, error) {
	if len(body) == 0 || body[0] != pii.Version {
		return body, nil
	}
	if s == nil {
		return nil, errors.New("keyed: stored answer is sealed and no key is configured")
	}
	return s.Decrypt(body, sealContext(scope, key))
}

// Book is one actor activation's answers by key. It is used only from the
// actor's goroutine; T is the actor's answer (an appointment, a cart).
type Book[T any] struct {
	cfg   Config
	owner string
	byKey map[keyID]*entry[T]
	// sweepAt is the size at which Keep next drops expired answers, so
	// a calendar that stays active for days does not keep them all.
	sweepAt int
}

type entry[T any] struct {
	hash    []byte
	reply   T
	expires time.Time
}

// Load reads the answers owner gave that have not expired: the activation
// that replays them after a restart or a move to another node.
func Load[T any](ctx context.Context, tx persistence.Tx, cfg Config, owner string, now time.Time) (Book[T], error) {
	recs, err := tx.IdempotencyOwned(ctx, owner, now)
	if err != nil {
		return Book[T]{}, fmt.Errorf("keyed: load %s: %w", owner, err)
	}
	b := Book[T]{cfg: cfg, owner: owner}
	if len(recs) > 0 { // most calendars have none: no map until one comes
		b.byKey = make(map[keyID]*entry[T], len(recs))
	}
	for _, r := range recs {
		reply, err := decode[T](cfg, r)
		if err != nil {
			return Book[T]{}, fmt.Errorf("keyed: load %s: %w", owner, err)
		}
		b.byKey[keyID{r.Scope, r.Key}] = &entry[T]{hash: r.RequestHash, reply: reply, expires: r.ExpiresAt}
	}
	return b, nil
}

func decode[T any](cfg Config, r persistence.IdempotencyRecord) (T, error) {
	var reply T
	body, err := Open(cfg.Seal, r.Scope, r.Key, r.ResponseBody)
	if err != nil {
		return reply, err
	}
	err = json.Unmarshal(body, &reply)
	return reply, err
}

// Find reports the answer this activation gave under k, if any: found with
// the answer, or found with ErrReused when k named a different request.
// A nil key or book finds nothing.
func (b *Book[T]) Find(k *Key, now time.Time) (reply T, found bool, err error) {
	if b == nil || k == nil {
		return reply, false, nil
	}
	e, ok := b.byKey[k.id()]
	switch {
	case !ok:
		return reply, false, nil
	case now.After(e.expires):
		delete(b.byKey, k.id())
		return reply, false, nil
	case string(e.hash) != string(k.Fingerprint()):
		return reply, true, ErrReused
	}
	return e.reply, true, nil
}

// Remember keeps reply as k's answer from now on (a duplicate arriving
// before it is durable finds it, and waits like any answer resting on
// pending changes) and returns the write that stores it, for the batch
// op of the change it answers. The write refuses with ErrElsewhere when a
// live record holds the key. A nil key remembers nothing.
func (b *Book[T]) Remember(k *Key, reply T, now time.Time) func(context.Context, persistence.Tx) error {
	if b == nil || k == nil {
		return func(context.Context, persistence.Tx) error { return nil }
	}
	b.Keep(k, reply, now)
	cfg, owner := b.cfg, b.owner
	// Encoded and sealed in the writer's goroutine, not the actor's.
	return func(ctx context.Context, tx persistence.Tx) error { return Write(ctx, tx, cfg, owner, k, reply, now) }
}

// Keep keeps reply as k's answer in memory only: for an actor that writes
// it itself (Write) inside the transaction of its change, once that
// committed. A nil key or book keeps nothing.
func (b *Book[T]) Keep(k *Key, reply T, now time.Time) {
	if b == nil || k == nil {
		return
	}
	if b.byKey == nil {
		b.byKey = map[keyID]*entry[T]{}
	}
	b.byKey[k.id()] = &entry[T]{hash: k.Fingerprint(), reply: reply, expires: now.Add(b.cfg.ttl())}
	if len(b.byKey) >= b.sweepAt {
		for id, e := range b.byKey {
			if now.After(e.expires) {
				delete(b.byKey, id)
			}
		}
		b.sweepAt = 2*len(b.byKey) + 64 // amortised: each sweep at least doubles the book first
	}
}

// Len is how many answers the book keeps.
func (b *Book[T]) Len() int { return len(b.byKey) }

// Owner is the calendar the book's answers are stored under.
func (b *Book[T]) Owner() string { return b.owner }

// Write stores reply as owner's answer under k inside tx: ErrElsewhere
// when a live record holds the key.
func Write[T any](ctx context.Context, tx persistence.Tx, cfg Config, owner string, k *Key, reply T, now time.Time) error {
	body, err := json.Marshal(reply)
	if err != nil {
		return err
	}
	if body, err = Seal(cfg.Seal, k.Scope, k.Name, body); err != nil {
		return err
	}
	return tx.IdempotencyClaim(ctx, persistence.IdempotencyRecord{
		Scope: k.Scope, Key: k.Name, Owner: owner, RequestHash: k.Fingerprint(), State: persistence.IdempotencyCompleted,
		ResponseContentType: ContentType, ResponseBody: body, CreatedAt: now, ExpiresAt: now.Add(cfg.ttl()),
	}, fmt.Errorf("%w (owner %s)", ErrElsewhere, owner))
}

// Stored reads the answer an actor stored under k inside tx: found with
// the answer, or found with ErrReused for a different request. A record
// of the HTTP edge for the same request is found with ErrUndecided: the
// edge answers that one.
func Stored[T any](ctx context.Context, tx persistence.Tx, cfg Config, k *Key, now time.Time) (reply T, found bool, err error) {
	r, err := tx.IdempotencyGet(ctx, k.Scope, k.Name, now)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return reply, false, nil
	case err != nil:
		return reply, false, err
	case string(r.RequestHash) != string(k.Fingerprint()):
		return reply, true, ErrReused
	case r.Owner == "" || r.State != persistence.IdempotencyCompleted:
		return reply, true, ErrUndecided
	}
	reply, err = decode[T](cfg, r)
	return reply, true, err
}

// Resolve completes an actor's answer to a request sent under k (nil:
// none), given whether the actor replayed it and its refusal err: a replay
// marks k; a key the actor found answered elsewhere is read from there, and
// found reports that stored replaces the actor's answer (with Lookup's
// error, if any).
func Resolve[T any](ctx context.Context, store persistence.Store, cfg Config, k *Key, replayed bool, err error, now time.Time) (stored T, found bool, _ error) {
	switch {
	case k == nil:
	case err == nil && replayed:
		k.MarkReplayed()
	case errors.Is(err, ErrElsewhere):
		stored, err = Lookup[T](ctx, store, cfg, k, now)
		if err == nil {
			k.MarkReplayed()
		}
		return stored, true, err
	}
	return stored, false, nil
}

// ContentType marks a record holding an actor's answer (JSON of T), not an
// HTTP response.
const ContentType = "application/vnd.spa.actor-answer+json"

// Lookup reads the answer stored under k by whoever wrote it: the
// fallback after ErrElsewhere. It returns the answer, ErrReused for a
// different request, or ErrUndecided when no actor's answer is stored.
func Lookup[T any](ctx context.Context, store persistence.Store, cfg Config, k *Key, now time.Time) (T, error) {
	var reply T
	err := store.InTx(ctx, func(tx persistence.Tx) error {
		got, found, err := Stored[T](ctx, tx, cfg, k, now)
		if err == nil && !found {
			err = ErrUndecided
		}
		reply = got
		return err
	})
	return reply, err
}
