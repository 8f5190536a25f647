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
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
	deps     Deps
	key      string
	version  int64
	leases   []lease
	loadErr  error
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

// decide answers m, persisting the new leases first. A write that meets
// another activation's (the row's version moved: a stale owner, or the
// sweep deleted a lapsed row) reloads and decides once more on the truth.
func (a *quotaActor) decide(m any) *Reply {
	for try := 0; ; try++ {
		next, r := a.apply(m, a.deps.Now())
		if next == nil {
			a.deps.Metrics.decided(m, r)
			return r
		}
		err := a.persist(next)
		if err == nil {
			a.deps.Metrics.decided(m, r)
			return r
		}
		if !errors.Is(err, persistence.ErrConflict) || try > 0 {
			r := &Reply{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
			a.deps.Metrics.decided(m, r)
			return r
		}
		if err := a.load(); err != nil {
			a.loadErr = err
			r := &Reply{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
			a.deps.Metrics.decided(m, r)
			return r
		}
	}
}

// apply decides m on the live leases at now: the leases to persist (nil:
// nothing to write) and the reply.
func (a *quotaActor) apply(m any, now time.Time) ([]lease, *Reply) {
	live := prune(a.leases, now)
	switch m := m.(type) {
	case *Release:
		if !slices.ContainsFunc(live, func(l lease) bool { return l.ID != "" && slices.Contains(m.Leases, l.ID) }) {
			a.leases = live
			return nil, &Reply{OK: true, Used: sum(live, "")}
		}
		next := slices.DeleteFunc(a.draft(live), func(l lease) bool { return l.ID != "" && slices.Contains(m.Leases, l.ID) })
		return nonNil(next), &Reply{OK: true, Used: sum(next, "")}
	case *Take:
		if m.Units < 0 || m.Limit < 1 || m.TTL <= 0 {
			return nil, &Reply{Err: fmt.Errorf("%w: units %d, limit %d, ttl %s", ErrInvalid, m.Units, m.Limit, m.TTL)}
		}
		others := sum(live, m.Lease)
		var old int64
		if m.Lease != "" {
			old = sum(live, "") - others
		}
		if m.Units > old && others+m.Units > m.Limit {
			a.leases = live
			return nil, &Reply{Used: others + old, RetryAfter: wait(live, m, others+m.Units-m.Limit, now)}
		}
		next := a.draft(live)
		if m.Lease == "" {
			// Rounded up: an event is counted at least the whole window.
			g := max(m.TTL/60, time.Millisecond)
			until := now.Add(m.TTL).Truncate(g).Add(g).UnixMicro()
			i := slices.IndexFunc(next, func(l lease) bool { return l.ID == "" && l.Until == until })
			if i < 0 {
				next = append(next, lease{Units: m.Units, Until: until})
			} else {
				next[i].Units += m.Units
			}
		} else {
			next = slices.DeleteFunc(next, func(l lease) bool { return l.ID == m.Lease })
			if m.Units > 0 {
				next = append(next, lease{ID: m.Lease, Units: m.Units, Until: now.Add(m.TTL).UnixMicro()})
			}
		}
		return nonNil(next), &Reply{OK: true, Used: others + m.Units, Prev: old}
	}
	return nil, &Reply{Err: fmt.Errorf("%w: %T", ErrInvalid, m)}
}

// draft is the slice a decision may change into the next leases: live
// itself for a key counted in memory (nothing to roll back: its "write"
// cannot fail), a copy otherwise (a failed write keeps the leases as
// they were). A busy address's cap holds thousands of leases in a load
// test, so a copy per grant was most of the quota actors' cost.
func (a *quotaActor) draft(live []lease) []lease {
	if a.inMemory() {
		return live
	}
	return slices.Clone(live)
}

// nonNil keeps "nothing left" distinct from "nothing to write".
func nonNil(ls []lease) []lease {
	if ls == nil {
		return []lease{}
	}
	return ls
}

// prune drops the leases that lapsed by now.
func prune(ls []lease, now time.Time) []lease {
	t := now.UnixMicro()
	lapsed := func(l lease) bool { return l.Until <= t }
	if !slices.ContainsFunc(ls, lapsed) {
		return ls // the common case: nothing to copy
	}
	return slices.DeleteFunc(slices.Clone(ls), lapsed)
}

// sum adds the units of every lease but the one named except ("": none
// excepted).
func sum(ls []lease, except string) int64 {
	var n int64
	for _, l := range ls {
		if except == "" || l.ID != except {
			n += l.Units
		}
	}
	return n
}

// wait is how long until leases holding need units lapse (the request's
// lease itself excepted); the request's TTL when they never would.
func wait(ls []lease, m *Take, need int64, now time.Time) time.Duration {
	if m.Units > m.Limit {
		return m.TTL
	}
	ls = slices.DeleteFunc(slices.Clone(ls), func(l lease) bool { return m.Lease != "" && l.ID == m.Lease })
	slices.SortFunc(ls, func(x, y lease) int { return cmp.Compare(x.Until, y.Until) })
	var freed int64
	for _, l := range ls {
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
		a.version, a.leases = 0, nil
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
	a.version, a.leases = rec.Version, st.Leases
	return nil
}

// persist writes next; only once it is durable does the actor adopt it.
func (a *quotaActor) persist(next []lease) error {
	if a.inMemory() {
		a.leases = next
		return nil
	}
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
	err = a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		rec, err = tx.QuotaPut(ctx, rec)
		return err
	})
	if err != nil {
		return err
	}
	a.version, a.leases = rec.Version, next
	return nil
}
