package idempotency

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"log/slog"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/gateway/reqctx"
	"github.com/spa-engine/spa/persistence"
)

// Header names of the protocol.
const (
	HeaderKey      = "Idempotency-Key"
	HeaderReplayed = "Idempotent-Replayed"
)

// Defaults applied when Config leaves a duration zero.
const (
	DefaultTTL     = 24 * time.Hour
	DefaultLockTTL = 30 * time.Second
	// releaseTimeout bounds the best-effort cleanup that runs after the
	// request context may already be gone.
	releaseTimeout = 5 * time.Second
)

// Config tunes Wrap.
type Config struct {
	// TTL is how long a completed response is kept for replay.
	TTL time.Duration
	// LockTTL is how long an in-progress record blocks duplicates; after it
	// a retry assumes the first attempt died and takes the key over.
	LockTTL time.Duration
	// Seal encrypts stored response bodies (nil: stored as they are).
	Seal keyed.Sealer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger receives cleanup failures (nil: slog.Default()).
	Logger *slog.Logger
	// Holders names this process in the keys it holds and tells whether
	// the holder of another's is gone (nil: this process alone, see
	// Process).
	Holders Holders
}

// Holders tells which process holds an in-progress key. A key whose
// holder is gone (crashed, or restarted as a new incarnation) is taken
// over by the next retry at once instead of after LockTTL.
type Holders interface {
	// Self is this process's incarnation, recorded in the keys it claims.
	Self() string
	// Alive reports whether holder, another process's Self, may still
	// be running; false only when it is known to be gone.
	Alive(holder string) bool
}

// Process is the Holders of a node that runs alone: each process start is
// a new incarnation, so a key held by any other incarnation was held by a
// process that is gone (this node before its restart).
var Process Holders = processHolders(newIncarnation())

type processHolders string

func (p processHolders) Self() string             { return string(p) }
func (p processHolders) Alive(holder string) bool { return holder == string(p) }

// newIncarnation is a random id for this process start.
func newIncarnation() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return derivedIDEncoding.EncodeToString(b[:])
}

// gone reports whether the holder of an in-progress record is known to
// be gone. Records that name no holder (written before holders were
// recorded) wait for their lease as before.
func (c Config) gone(holder string) bool {
	return holder != "" && holder != c.Holders.Self() && !c.Holders.Alive(holder)
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.LockTTL <= 0 {
		c.LockTTL = DefaultLockTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Holders == nil {
		c.Holders = Process
	}
	return c
}

// Handler does the work of a request inside tx. It may run more than once
// when the store retries the transaction, so it must have no effect outside
// tx; Wrap resets the response before each attempt.
type Handler func(c *fiber.Ctx, tx persistence.Tx) error

// handlerError marks an error as the handler's own, as opposed to the
// store's, so only the former can become a remembered answer. It unwraps so
// drivers still recognise their retryable errors inside it.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
func (e handlerError) Unwrap() error { return e.err }

// Wrap runs h in one transaction. With an Idempotency-Key header it also
// records the outcome under (principal, key) in that same transaction and
// replays it for retries; see the package doc. Errors it returns are meant
// for the app's error renderer.
func Wrap(store persistence.Store, cfg Config, h Handler) fiber.Handler {
	cfg = cfg.withDefaults()
	return func(c *fiber.Ctx) error {
		k, err := requestKey(c)
		switch {
		case err != nil:
			return err
		case k == nil:
			return store.InTx(c.UserContext(), func(tx persistence.Tx) error {
				resetResponse(c)
				return h(c, tx)
			})
		}
		r := &run{store: store, cfg: cfg, tx: h, scope: k.Scope, key: k.Name, hash: k.Fingerprint()}
		return r.serve(c)
	}
}

// requestKey is the request's Idempotency-Key with its scope and the
// request's fingerprint; nil when it sent none.
func requestKey(c *fiber.Ctx) (*keyed.Key, error) {
	keys := c.Request().Header.PeekAll(HeaderKey)
	switch {
	case len(keys) == 0:
		return nil, nil
	case len(keys) > 1 || !validKey(keys[0]):
		return nil, fault.New(fault.CodeIdempotencyKeyInvalid, "")
	}
	// Fingerprinted only when compared or stored (a refusal is neither),
	// from copies: fasthttp reuses the request's buffers after it. One copy
	// each, from fasthttp's buffers: with fiber's Immutable setting c.Get
	// and c.OriginalURL copy already, and c.Body copies every header's name
	// looking for Content-Encoding.
	h := &c.Request().Header
	method, target := c.Method(), string(h.RequestURI())
	mediaType, body := string(h.Peek(fiber.HeaderContentType)), bytes.Clone(c.Request().Body())
	if len(h.Peek(fiber.HeaderContentEncoding)) > 0 {
		body = bytes.Clone(c.Body()) // decoded: only c.Body knows what it says
	}
	return keyed.Fingerprinted(Scope(c), string(keys[0]), func() []byte {
		return RequestHash(method, target, mediaType, body)
	}), nil
}

// Scope is who may reuse a key: the authenticated subject, or everybody
// unauthenticated together. The prefix keeps a subject literally named
// "anonymous" apart from the anonymous scope.
func Scope(c *fiber.Ctx) string {
	if p, ok := reqctx.Principal(c); ok && p.Subject != "" {
		return "sub:" + p.Subject
	}
	return "anonymous"
}

// appendScope appends Scope(c) to b.
func appendScope(b []byte, c *fiber.Ctx) []byte {
	if p, ok := reqctx.Principal(c); ok && p.Subject != "" {
		return append(append(b, "sub:"...), p.Subject...)
	}
	return append(b, "anonymous"...)
}

// validKey: 1..255 printable ASCII, so keys are safe to log and index.
func validKey(k []byte) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for _, b := range k {
		if b < 0x20 || b > 0x7e {
			return false
		}
	}
	return true
}

// ExternalHandler does its work outside the store's transactions: in an
// actor that persists by itself. It must be idempotent on its own (for
// example by deriving the id of what it creates from the key with
// DerivedID), because a crash between its effect and the stored response
// makes a retry run it again.
type ExternalHandler func(c *fiber.Ctx) error

// WrapExternal gives h the same protocol as Wrap (claim, replay, refuse,
// take over), except that h runs outside any transaction and its response
// is remembered in a transaction of its own right after. Holding a store
// transaction open while an actor writes would deadlock SQLite's single
// writer and stretch every lock elsewhere.
func WrapExternal(store persistence.Store, cfg Config, h ExternalHandler) fiber.Handler {
	cfg = cfg.withDefaults()
	return func(c *fiber.Ctx) error {
		k, err := requestKey(c)
		switch {
		case err != nil:
			return err
		case k == nil:
			return h(c)
		}
		r := &run{store: store, cfg: cfg, external: h, scope: k.Scope, key: k.Name, hash: k.Fingerprint()}
		return r.serve(c)
	}
}

// WrapKeyed gives h, whose effect one actor decides, the protocol with
// the key travelling into that actor (actors/keyed): h hands KeyOf(c) to
// its use case, the actor remembers the answer in the transaction of the
// change it reports, and a refusal it decides in memory is not stored, so
// a keyed request costs what an unkeyed one does. Replays, a reused key
// (422) and a duplicate (it waits for the first answer) are the actor's.
// A use case that finds the request needs more than one decision answers
// keyed.ErrAtEdge before any effect, and the request then runs under the
// edge's protocol (WrapExternal) without a key for the actor.
func WrapKeyed(store persistence.Store, cfg Config, h fiber.Handler) fiber.Handler {
	atEdge := WrapExternal(store, cfg, ExternalHandler(h))
	return func(c *fiber.Ctx) error {
		k, err := requestKey(c)
		switch {
		case err != nil:
			return err
		case k == nil:
			return h(c)
		}
		c.Locals(keyLocal{}, k)
		err = h(c)
		switch {
		case errors.Is(err, keyed.ErrAtEdge):
			c.Locals(keyLocal{}, nil)
			resetResponse(c)
			return atEdge(c)
		case err == nil && k.Replayed():
			c.Set(HeaderReplayed, "true")
		}
		return err
	}
}

type keyLocal struct{}

// KeyOf is the key WrapKeyed hands the request's use case (nil: none).
func KeyOf(c *fiber.Ctx) *keyed.Key {
	k, _ := c.Locals(keyLocal{}).(*keyed.Key)
	return k
}

// DerivedID is a stable id for what the request under the current
// Idempotency-Key creates ("" without a key): the same caller retrying the
// same key gets the same id, so an actor recognises the retry.
func DerivedID(c *fiber.Ctx, prefix string) string {
	key := c.Request().Header.Peek(HeaderKey)
	if len(key) == 0 {
		return ""
	}
	// sha256(Scope(c) + "\x00" + key), built in a buffer on the stack
	// (every keyed claim derives its appointment id here).
	var buf [320]byte
	b := append(appendScope(buf[:0], c), 0)
	b = append(b, key...)
	sum := sha256.Sum256(b)
	var id [26]byte // 16 bytes in unpadded base32
	derivedIDEncoding.Encode(id[:], sum[:16])
	return prefix + string(id[:])
}

var derivedIDEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// run is one keyed request going through the protocol.
type run struct {
	store      persistence.Store
	cfg        Config
	tx         Handler         // runs inside the effect's transaction
	external   ExternalHandler // or outside any
	scope, key string
	hash       []byte
}

func (r *run) serve(c *fiber.Ctx) error {
	ctx := c.UserContext()

	// Phase 1: claim the key, or learn that we must replay or refuse.
	var (
		replay  *persistence.IdempotencyRecord
		refusal error
	)
	err := r.store.InTx(ctx, func(tx persistence.Tx) error {
		replay, refusal = nil, nil
		now := r.cfg.Now()
		rec, err := tx.IdempotencyGet(ctx, r.scope, r.key, now)
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			// Free: claim below.
		case err != nil:
			return err
		case !rec.ExpiresAt.IsZero() && rec.ExpiresAt.Before(now):
			// Expired but not yet swept: as good as absent.
		case !bytes.Equal(rec.RequestHash, r.hash):
			refusal = fault.New(fault.CodeIdempotencyKeyReused, "")
			return nil
		case rec.State == persistence.IdempotencyCompleted:
			replay = &rec
			return nil
		case rec.LockedUntil.After(now) && !r.cfg.gone(rec.Holder):
			refusal = fault.New(fault.CodeIdempotencyKeyInUse, "")
			return nil
		default:
			// In progress with a lapsed lease, or held by a process that
			// is gone (it crashed or restarted): the first attempt died
			// before finishing, so this retry takes the key over.
		}
		return tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{
			Scope:       r.scope,
			Key:         r.key,
			RequestHash: r.hash,
			State:       persistence.IdempotencyInProgress,
			LockedUntil: now.Add(r.cfg.LockTTL),
			Holder:      r.cfg.Holders.Self(),
			CreatedAt:   now,
			ExpiresAt:   now.Add(r.cfg.TTL),
		})
	})
	switch {
	case err != nil:
		return err
	case refusal != nil:
		return refusal
	case replay != nil:
		return r.sendReplay(c, *replay)
	}

	if r.external != nil {
		return r.serveExternal(c)
	}

	// Phase 2: the handler's effects and the completed record, together.
	var lost *persistence.IdempotencyRecord
	err = r.store.InTx(ctx, func(tx persistence.Tx) error {
		lost = nil
		now := r.cfg.Now()
		cur, err := tx.IdempotencyGet(ctx, r.scope, r.key, now)
		switch {
		case err == nil && cur.State == persistence.IdempotencyCompleted:
			// Our lease lapsed and a takeover finished first: its effects
			// stand, ours must not happen.
			lost = &cur
			return nil
		case err != nil && !errors.Is(err, persistence.ErrNotFound):
			return err
		}
		resetResponse(c)
		if herr := r.tx(c, tx); herr != nil {
			return handlerError{herr}
		}
		rec, err := r.completed(c, now)
		if err != nil {
			return err
		}
		return tx.IdempotencyPut(ctx, rec)
	})
	if lost != nil && err == nil {
		if !bytes.Equal(lost.RequestHash, r.hash) {
			return fault.New(fault.CodeIdempotencyKeyReused, "")
		}
		return r.sendReplay(c, *lost)
	}
	if err == nil {
		return nil
	}

	var he handlerError
	if errors.As(err, &he) && apierr.IsClientError(he.err) {
		// Phase 3: the request itself was wrong. Its effects are rolled
		// back; remember the answer so a retry gets the same one.
		e, _ := apierr.From(he.err)
		resetResponse(c)
		if werr := apierr.Write(c, e); werr != nil {
			r.release(ctx)
			return werr
		}
		perr := r.remember(ctx, c)
		if perr != nil {
			r.cfg.Logger.Warn("idempotency: could not store client error",
				slog.String("request_id", reqctx.RequestID(c)), slog.String("error", perr.Error()))
			r.release(ctx)
		}
		return nil // the 4xx is already written
	}

	// A server-side failure: free the key so the client may retry.
	r.release(ctx)
	if errors.As(err, &he) {
		return he.err
	}
	return err
}

// serveExternal is phase 2 for an ExternalHandler: run it, then remember
// its answer (a success or a 4xx; a 5xx frees the key for a retry).
func (r *run) serveExternal(c *fiber.Ctx) error {
	ctx := c.UserContext()
	resetResponse(c)
	if err := r.external(c); err != nil {
		if !apierr.IsClientError(err) {
			r.release(ctx)
			return err
		}
		e, _ := apierr.From(err)
		resetResponse(c)
		if werr := apierr.Write(c, e); werr != nil {
			r.release(ctx)
			return werr
		}
	}
	if c.Response().StatusCode() >= 500 {
		r.release(ctx)
		return nil
	}
	// The effect happened: remember it even if the client left.
	if err := r.remember(context.WithoutCancel(ctx), c); err != nil {
		// The effect happened; the retry will redo it idempotently.
		r.cfg.Logger.Warn("idempotency: could not store response",
			slog.String("request_id", reqctx.RequestID(c)), slog.String("error", err.Error()))
		r.release(ctx)
	}
	return nil
}

// remember stores the response now in c, in a transaction of its own.
func (r *run) remember(ctx context.Context, c *fiber.Ctx) error {
	rec, err := r.completed(c, r.cfg.Now())
	if err != nil {
		return err
	}
	return r.store.InTx(ctx, func(tx persistence.Tx) error { return tx.IdempotencyPut(ctx, rec) })
}

// completed is the record remembering the response now in c, its body
// sealed.
func (r *run) completed(c *fiber.Ctx, now time.Time) (persistence.IdempotencyRecord, error) {
	body := bytes.Clone(c.Response().Body()) // fasthttp reuses the buffer after the request
	if redact, ok := c.Locals(redactKey{}).(func([]byte) []byte); ok {
		body = redact(body)
	}
	body, err := keyed.Seal(r.cfg.Seal, r.scope, r.key, body)
	if err != nil {
		return persistence.IdempotencyRecord{}, err
	}
	return persistence.IdempotencyRecord{
		Scope:               r.scope,
		Key:                 r.key,
		RequestHash:         r.hash,
		State:               persistence.IdempotencyCompleted,
		ResponseStatus:      c.Response().StatusCode(),
		ResponseContentType: string(c.Response().Header.ContentType()),
		ResponseBody:        body,
		CreatedAt:           now,
		ExpiresAt:           now.Add(r.cfg.TTL),
	}, nil
}

type redactKey struct{}

// Redact makes the remembered copy of this request's response pass through
// fn: a secret shown once (a voucher code) must not sit in the idempotency
// table, so a replay answers without it.
func Redact(c *fiber.Ctx, fn func(body []byte) []byte) { c.Locals(redactKey{}, fn) }

// release deletes our in-progress record, best effort. It runs detached
// from the request context, which may be the reason we are here.
func (r *run) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	err := r.store.InTx(ctx, func(tx persistence.Tx) error {
		cur, err := tx.IdempotencyGet(ctx, r.scope, r.key, r.cfg.Now())
		if errors.Is(err, persistence.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if cur.State != persistence.IdempotencyInProgress || !bytes.Equal(cur.RequestHash, r.hash) {
			return nil // not ours any more
		}
		if err := tx.IdempotencyDelete(ctx, r.scope, r.key); err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return err
		}
		return nil
	})
	if err != nil {
		// The lease will lapse after LockTTL; until then retries get 409.
		r.cfg.Logger.Warn("idempotency: could not release key", slog.String("error", err.Error()))
	}
}

// resetResponse clears what an earlier attempt may have written.
func resetResponse(c *fiber.Ctx) {
	c.Response().ResetBody()
	c.Response().Header.Del(HeaderReplayed)
	c.Status(fiber.StatusOK)
	c.Response().Header.SetContentType(fiber.MIMETextPlainCharsetUTF8)
}

// sendReplay answers with a stored response.
func (r *run) sendReplay(c *fiber.Ctx, rec persistence.IdempotencyRecord) error {
	body, err := keyed.Open(r.cfg.Seal, rec.Scope, rec.Key, rec.ResponseBody)
	if err != nil {
		return err
	}
	rec.ResponseBody = body
	resetResponse(c)
	c.Status(rec.ResponseStatus)
	if rec.ResponseContentType != "" {
		c.Response().Header.SetContentType(rec.ResponseContentType)
	}
	c.Set(HeaderReplayed, "true")
	return c.Send(rec.ResponseBody)
}
