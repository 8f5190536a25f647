// Package caps holds the hoarding caps the booking and shop use cases
// share (issue 15, item 5): live holds per client and per IP, units
// reserved per anonymous cart, per IP and per share of a variant's stock.
// Each cap is a quota actor (actors/quota) keyed by what it counts, placed
// by partition like the session actors, so a cap holds for the whole
// cluster. Its key is counted in memory (quota.MemoryPrefix): a grant
// costs no store write, so one busy address does not serialize its
// clients' holds at the store's pace; a restart or a partition handoff
// forgets at most one TTL of counts (the holds and reservations
// themselves are stored). A thing counted is a named lease (the
// appointment's id, the cart line) with the thing's TTL: set when the
// thing is made or changed, released when it ends (confirmed, cancelled,
// removed), and otherwise lapsing when the thing itself would expire.
//
// Order: Take before the deciding actor, then the Undo when it refused
// (anonymous cart lines), or Take only once the actor granted, undoing
// the grant when over a cap (holds; a keyed hold asks KnownFull first, see
// booking.takeHoldCaps). The first keeps every grant within the caps, at
// the price of racing requests counting each other while in flight; the
// second makes refused claims free. Setting back and releasing run before
// the caller is answered, so its next request cannot meet a place its
// last one no longer holds.
package caps

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/service/fault"
)

// Check is one cap on a take: Name labels its refusals in metrics
// ("holds_per_client"), Key is the quota key it counts under, Limit its
// cap (below 1: not checked), Lease the lease's name under that key
// ("": the Take's).
type Check struct {
	Name  string
	Key   string
	Limit int64
	Lease string
}

// Guard takes and releases caps through the quota actors.
type Guard struct {
	quota   *quota.Client
	refused *prometheus.CounterVec
	log     *slog.Logger
	// Timeout bounds a setting back or release whose caller's context is
	// done.
	Timeout time.Duration
	// full remembers, per quota key, until when this node last found it
	// full (a refused take; a later grant or release forgets it): what
	// KnownFull answers from, with no quota actor asked.
	full sync.Map // key → time.Time
	now  func() time.Time
}

// New returns a Guard over q and registers its refusal metric on reg.
func New(q *quota.Client, reg prometheus.Registerer, log *slog.Logger) (*Guard, error) {
	if log == nil {
		log = slog.Default()
	}
	g := &Guard{quota: q, log: log, Timeout: 5 * time.Second, now: time.Now,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_hoarding_refused_total",
			Help: "Holds and cart reservations refused by a hoarding cap, by cap (holds_per_client, holds_per_ip, units_per_cart, units_per_ip, variant_share).",
		}, []string{"cap"})}
	if reg != nil {
		if err := actors.Register(reg, g.refused); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// KnownFull answers the 429 of code when this node found one of the
// checks' keys full and its wait has not passed, asking no quota actor:
// the check a request whose answer will be stored (a keyed hold) makes
// before it is decided, so that a client this node already refused at
// its cap is refused before anything is held, at no cost to the claims
// an actor refuses. It is this node's memory only: a client's first
// request over its cap (or first on another node) passes and meets the
// cap at the Take after the grant.
func (g *Guard) KnownFull(code string, checks ...Check) error {
	now := g.now()
	for _, c := range checks {
		if c.Limit < 1 || c.Key == "" {
			continue
		}
		if v, ok := g.full.Load(c.Key); ok {
			if wait := v.(time.Time).Sub(now); wait > 0 {
				g.refused.WithLabelValues(c.Name).Inc()
				return overCap(code, c.Name, wait)
			}
			g.full.CompareAndDelete(c.Key, v)
		}
	}
	return nil
}

// overCap is the 429 of code for the cap named, with its wait.
func overCap(code, name string, wait time.Duration) error {
	return fault.New(code, "").WithRetryAfter(wait).
		WithDetails(map[string]any{"cap": name, "retry_after_seconds": int64(math.Ceil(wait.Seconds()))})
}

// Refused counts a refusal by cap outside Take (a request over a cap by
// itself, which needs no quota actor).
func (g *Guard) Refused(name string) { g.refused.WithLabelValues(name).Inc() }

// taken is a lease set under one key, with what it held before.
type taken struct {
	key, lease string
	prev       int64
}

// Undo sets back what a Take set; safe to call on a nil Undo.
type Undo func()

// Take sets lease to units under every check's key, within its limit,
// all at once. Over a cap it answers a 429 fault of code (the caps'
// longest wait as Retry-After, the cap's name in the details) and sets
// back the keys it had set; a quota actor that cannot answer is a 503
// (fail closed). The Undo sets every key back to what it held before: the
// caller calls it when the deciding actor refused.
func (g *Guard) Take(ctx context.Context, code, lease string, units int64, ttl time.Duration, checks ...Check) (Undo, error) {
	var mu sync.Mutex
	var done []taken
	var refusal *quota.Reply // the refusal that names the 429
	var refusedBy string
	refusedAt := -1
	var failed error
	var wg sync.WaitGroup
	for i, c := range checks {
		if c.Limit < 1 || c.Key == "" {
			continue
		}
		if c.Lease == "" {
			c.Lease = lease
		}
		wg.Go(func() {
			r := g.quota.Take(ctx, quota.MemoryPrefix+c.Key, &quota.Take{Lease: c.Lease, Units: units, Limit: c.Limit, TTL: ttl})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Err != nil:
				failed = r.Err
			case !r.OK:
				// The longest wait names the refusal; on a tie, the first
				// check (answers arrive in any order).
				if refusal == nil || r.RetryAfter > refusal.RetryAfter || r.RetryAfter == refusal.RetryAfter && i < refusedAt {
					refusal, refusedBy, refusedAt = r, c.Name, i
				}
				g.full.Store(c.Key, g.now().Add(r.RetryAfter))
			default:
				g.full.Delete(c.Key)
				done = append(done, taken{key: c.Key, lease: c.Lease, prev: r.Prev})
			}
		})
	}
	wg.Wait()
	undo := func() { g.setBack(ttl, done) }
	switch {
	case refusal != nil:
		g.refused.WithLabelValues(refusedBy).Inc()
		undo()
		return nil, overCap(code, refusedBy, refusal.RetryAfter)
	case failed != nil:
		undo()
		if errors.Is(failed, quota.ErrInvalid) {
			return nil, failed
		}
		return nil, fault.Unavailable("")
	}
	return undo, nil
}

// setBack sets each lease back to what it held before a take, all at
// once, before the caller is answered: a client's next request must not
// meet a place its refused one held. A failure only logs: the lease
// lapses at its TTL anyway.
func (g *Guard) setBack(ttl time.Duration, done []taken) {
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range done {
		wg.Go(func() { g.setOne(ctx, ttl, d) })
	}
	wg.Wait()
}

func (g *Guard) setOne(ctx context.Context, ttl time.Duration, d taken) {
	g.full.Delete(d.key)
	var r *quota.Reply
	if d.prev == 0 {
		r = g.quota.Release(ctx, quota.MemoryPrefix+d.key, &quota.Release{Leases: []string{d.lease}})
	} else {
		// What it held before was granted: set it back whatever the limit
		// is now.
		r = g.quota.Take(ctx, quota.MemoryPrefix+d.key, &quota.Take{Lease: d.lease, Units: d.prev, Limit: math.MaxInt64, TTL: ttl})
	}
	if r.Err != nil {
		g.log.Warn("hoarding cap not set back; it lapses with its TTL", "err", r.Err)
	}
}

// Release gives lease back under each key (an empty key is skipped); see
// ReleaseLeases.
func (g *Guard) Release(lease string, keys ...string) {
	var ls []Lease
	for _, k := range keys {
		ls = append(ls, Lease{Key: k, Name: lease})
	}
	g.ReleaseLeases(ls...)
}

// Lease names one lease under one key.
type Lease struct{ Key, Name string }

// ReleaseLeases gives leases back (an empty key is skipped), all at once,
// before the caller is answered (its next hold must find the place
// free); a failure only logs: the lease lapses at its TTL anyway.
func (g *Guard) ReleaseLeases(ls ...Lease) {
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range ls {
		if l.Key == "" {
			continue
		}
		g.full.Delete(l.Key)
		wg.Go(func() {
			if r := g.quota.Release(ctx, quota.MemoryPrefix+l.Key, &quota.Release{Leases: []string{l.Name}}); r.Err != nil {
				g.log.Warn("hoarding cap not released; it lapses with its TTL", "err", r.Err)
			}
		})
	}
	wg.Wait()
}

// IPKey is the key an address is counted under: the address itself for
// IPv4, its /64 for IPv6 (one subscriber routinely has a whole /64), ""
// for none (a channel without an address, such as WhatsApp: no IP cap).
func IPKey(ip string) string {
	if ip == "" {
		return ""
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Unmap().Is6() {
		return ip
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
