// Package quota holds the quota actor: the single writer of one counted
// key's leases (an IP address's login-code sends, a global shard of the
// login-code budget, a client's live holds, an IP's reserved units). A
// lease is units granted until a time; a key's limit caps the units of
// its live leases. Two uses share it:
//
//   - sliding windows (login codes): each event is an anonymous lease
//     counted for the window's length, so "20 per hour" is "at most 20
//     units of live one-hour leases". Anonymous leases expiring in the
//     same 1/60 of the window are merged, which bounds a key's state at
//     61 entries and counts each event a little longer than the window,
//     never shorter: the cap can only be stricter, never looser;
//   - live things (holds, reservations): a lease named by the thing's id
//     (an appointment, a reservation) with the thing's TTL, set again
//     when it changes and released when it ends, so it counts exactly
//     while it lives; a release that never comes (a lost reply, a hold
//     that simply expired) is made up for by the lease's own expiry.
//
// Like the session actors, a quota actor persists its state before it
// answers (a version-checked write, so a stale activation on another node
// is fenced by the row's version), and is placed by partition in a
// cluster: a key has one writer in the whole cluster, and a restart
// forgets nothing. A refusal writes nothing. A store that cannot be
// written means no grant (fail closed).
//
// A key under MemoryPrefix is counted in memory only: never loaded nor
// written, so a grant costs no store round trip. The hoarding caps use
// it: one address (a studio's wifi, a carrier's NAT) can send hundreds of
// holds a second through one key, which a write per grant would serialize
// at the store's pace; what a restart or a partition handoff forgets is
// at most one hold TTL of counts, while the holds themselves stay stored.
//
// The limit travels with each request, so the actor needs no
// configuration and callers keep theirs (cmd/spa/config.go).
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
	"github.com/spa-engine/spa/persistence"
)

var (
	// ErrUnavailable: the state could not be loaded or persisted, or the
	// actor could not be reached. Nothing was granted.
	ErrUnavailable = errors.New("quota: unavailable")
	// ErrInvalid: the request is malformed (no limit, negative units).
	ErrInvalid = errors.New("quota: invalid request")
)

// MemoryPrefix starts the keys counted in memory only (see the package
// comment).
const MemoryPrefix = "mem/"

// Take asks for Units under Lease within Limit. An empty Lease is an
// anonymous event counted for TTL (a sliding window). A named Lease is set
// to Units (not added to: a retry or a changed line sets it again) and
// lives TTL from now; Units 0 releases it. Lowering a lease is always
// granted.
type Take struct {
	Lease string
	Units int64
	Limit int64
	TTL   time.Duration
}

// Release gives named leases back (those absent are ignored).
type Release struct {
	Leases []string
}

// Reply answers Take and Release. OK false with Err nil is a refusal:
// Used is what the key's live leases hold, RetryAfter when enough of
// them lapse for the request to fit (its TTL when it never could). Prev
// is a granted Take's lease units before it, so a caller whose next step
// failed can set them back.
type Reply struct {
	OK         bool
	Used       int64
	RetryAfter time.Duration
	Prev       int64
	Err        error
}

// lease is one grant: Units until Until (Unix microseconds); ID empty for
// the merged anonymous events of a window.
type lease struct {
	ID    string `json:"i,omitempty"`
	Units int64  `json:"u"`
	Until int64  `json:"t"`
}

// stored is the persisted form of an actor's state.
type stored struct {
	Leases []lease `json:"l"`
}

// Deps are what every quota actor of a node shares.
type Deps struct {
	Store        persistence.Store
	Now          func() time.Time
	Log          *slog.Logger
	Metrics      *Metrics
	IdleAfter    time.Duration // passivate after this long without a message (5m)
	WriteTimeout time.Duration // bound on one store transaction (5s)
}

func (d Deps) withDefaults() (Deps, error) {
	if d.Store == nil || d.Metrics == nil {
		return d, errors.New("quota: Store and Metrics are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.IdleAfter <= 0 {
		d.IdleAfter = 5 * time.Minute
	}
	if d.WriteTimeout <= 0 {
		d.WriteTimeout = 5 * time.Second
	}
	return d, nil
}

// quotaActor is one activation of a key's leases.
type quotaActor struct {
	deps    Deps
	key     string
	version int64
	book    *book
	loadErr error
	// stale: the book holds a decision the store refused, so the stored
	// leases are read again before the next decision.
	stale    bool
	stopping bool
}

func newActor(deps Deps, key string) actor.Producer {
	return func() actor.Actor { return &quotaActor{deps: deps, key: key} }
}

// Receive is the actor's one message switch, lifecycle first.
func (a *quotaActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.deps.Metrics.live.Inc()
		if a.loadErr = a.load(); a.loadErr != nil {
			a.deps.Log.Warn("quota: state did not load", "key", a.key, "err", a.loadErr)
			directory.Retire(c, a.key)
		}
		c.SetReceiveTimeout(a.deps.IdleAfter)
	case *actor.Stopped:
		a.deps.Metrics.live.Dec()
	case *actor.ReceiveTimeout:
		directory.Retire(c, a.key)
	case directory.Stop:
		a.stopping = true
		c.Stop(c.Self())
	case *Take, *Release:
		if a.usable(c) {
			c.Respond(a.decide(m))
		}
	}
}

// usable refuses requests an activation cannot decide: its state did not
// load, or it is stopping (then the request goes to the next activation).
func (a *quotaActor) usable(c actor.Context) bool {
	switch {
	case a.loadErr != nil:
		c.Respond(refusal(nil, fmt.Errorf("%w: state not loaded", ErrUnavailable)))
		return false
	case a.stopping:
		if !directory.Handoff(c, a.key) {
			c.Respond(refusal(nil, ErrUnavailable))
		}
		return false
	}
	return true
}

// refusal is the reply carrying err (every request has the same reply).
func refusal(_ any, err error) any { return &Reply{Err: err} }

// decide answers m, persisting the changed leases first.
func (a *quotaActor) decide(m any) *Reply {
	r := a.decideOnce(m)
	a.deps.Metrics.decided(m, r)
	return r
}

// decideOnce decides m on the book and persists what changed. A write
// that meets another activation's (the row's version moved: a stale
// owner, or the sweep deleted a lapsed row) reloads and decides once more
// on the truth; any failed write leaves the book stale, to be read again.
func (a *quotaActor) decideOnce(m any) *Reply {
	for try := 0; ; try++ {
		if a.stale {
			if err := a.load(); err != nil {
				return &Reply{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
			}
		}
		r, changed := a.apply(m, a.deps.Now())
		if !changed {
			return r
		}
		err := a.persist()
		if err == nil {
			return r
		}
		a.stale = true
		if !errors.Is(err, persistence.ErrConflict) || try > 0 {
			return &Reply{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		}
	}
}

// apply decides m on the live leases at now, changing the book: the
// reply, and whether anything changed that must be persisted.
func (a *quotaActor) apply(m any, now time.Time) (*Reply, bool) {
	b := a.book
	b.prune(now.UnixMicro())
	switch m := m.(type) {
	case *Release:
		changed := b.release(m.Leases)
		return &Reply{OK: true, Used: b.total}, changed
	case *Take:
		if m.Units < 0 || m.Limit < 1 || m.TTL <= 0 {
			return &Reply{Err: fmt.Errorf("%w: units %d, limit %d, ttl %s", ErrInvalid, m.Units, m.Limit, m.TTL)}, false
		}
		var old int64
		if m.Lease != "" {
			old = b.units(m.Lease)
		}
		others := b.total - old
		if m.Units > old && others+m.Units > m.Limit {
			return &Reply{Used: b.total, RetryAfter: wait(b.leases(), m, others+m.Units-m.Limit, now)}, false
		}
		if m.Lease == "" {
			// Rounded up: an event is counted at least the whole window.
			g := max(m.TTL/60, time.Millisecond)
			b.addAnon(m.Units, now.Add(m.TTL).Truncate(g).Add(g).UnixMicro())
		} else {
			b.set(m.Lease, m.Units, now.Add(m.TTL).UnixMicro())
		}
		return &Reply{OK: true, Used: others + m.Units, Prev: old}, true
	}
	return &Reply{Err: fmt.Errorf("%w: %T", ErrInvalid, m)}, false
}

// wait is how long until leases holding need units lapse (the request's
// lease itself excepted); the request's TTL when they never would. ls is
// ordered by expiry.
func wait(ls []lease, m *Take, need int64, now time.Time) time.Duration {
	if m.Units > m.Limit {
		return m.TTL
	}
	var freed int64
	for _, l := range ls {
		if m.Lease != "" && l.ID == m.Lease {
			continue
		}
		freed += l.Units
		if freed >= need {
			return max(time.UnixMicro(l.Until).Sub(now), time.Millisecond)
		}
	}
	return m.TTL
}

// inMemory reports a key counted in memory only (MemoryPrefix).
func (a *quotaActor) inMemory() bool { return strings.HasPrefix(a.key, MemoryPrefix) }

// load reads the key's stored leases (none for a key counted in memory).
func (a *quotaActor) load() error {
	if a.inMemory() {
		a.book = newBook(nil)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.WriteTimeout)
	defer cancel()
	var rec persistence.QuotaCounter
	err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		rec, err = tx.QuotaGet(ctx, a.key)
		return err
	})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		a.version, a.book, a.stale = 0, newBook(nil), false
		return nil
	case err != nil:
		return err
	}
	var st stored
	if err := json.Unmarshal(rec.State, &st); err != nil {
		// A state we cannot read must not become an empty one (that would
		// lift the limit): refuse until an operator looks.
		return fmt.Errorf("quota: stored state unreadable: %w", err)
	}
	a.version, a.book, a.stale = rec.Version, newBook(st.Leases), false
	return nil
}

// persist writes the book (nothing for a key counted in memory).
func (a *quotaActor) persist() error {
	if a.inMemory() {
		return nil
	}
	next := a.book.leases()
	b, err := json.Marshal(stored{Leases: next})
	if err != nil {
		return err
	}
	now := a.deps.Now()
	expires := now.UnixMicro()
	for _, l := range next {
		expires = max(expires, l.Until)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.WriteTimeout)
	defer cancel()
	rec := persistence.QuotaCounter{Key: a.key, State: b, ExpiresAt: time.UnixMicro(expires), Version: a.version, UpdatedAt: now}
	// saved, not rec: a transaction the store retries (a serialization
	// failure at COMMIT) must write from the same version again.
	var saved persistence.QuotaCounter
	err = a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		saved, err = tx.QuotaPut(ctx, rec)
		return err
	})
	if err != nil {
		return err
	}
	a.version = saved.Version
	return nil
}
