package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// catalogueCache keeps the active services and staff the booking path
// reads on every request, so a claim costs no database read: deciding it is
// the schedule actor's job, in memory. Entries live for ttl; this node's
// own catalogue writes drop them at once (other nodes' writes are seen
// within ttl).
type catalogueCache struct {
	ttl   time.Duration
	now   func() time.Time
	store persistence.Store

	mu       sync.Mutex
	loadedAt time.Time
	services map[string]persistence.Service
	staff    []persistence.StaffMember // active only
}

func newCatalogueCache(store persistence.Store, ttl time.Duration) *catalogueCache {
	return &catalogueCache{ttl: ttl, now: time.Now, store: store}
}

// invalidate drops everything; the next read reloads.
func (c *catalogueCache) invalidate() {
	c.mu.Lock()
	c.loadedAt = time.Time{}
	c.mu.Unlock()
}

// snapshot returns the services (active or not) and active staff, loading
// them if the cached copy is older than ttl. Callers must not modify them.
func (c *catalogueCache) snapshot(ctx context.Context) (map[string]persistence.Service, []persistence.StaffMember, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loadedAt.IsZero() && c.now().Sub(c.loadedAt) < c.ttl {
		return c.services, c.staff, nil
	}
	var services []persistence.Service
	var staff []persistence.StaffMember
	err := c.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if services, err = tx.ServiceList(ctx, false); err != nil {
			return err
		}
		staff, err = tx.StaffList(ctx, true)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c.services = make(map[string]persistence.Service, len(services))
	for _, s := range services {
		c.services[s.ID] = s
	}
	c.staff, c.loadedAt = staff, c.now()
	return c.services, c.staff, nil
}
