package catalogue

import (
	"context"
	"sync"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Cache is the catalogue's read model for the booking path: the active
// services and staff it reads on every request, so a claim costs no
// database read (deciding it is the schedule actor's job, in memory).
// Entries live for ttl; this node's own catalogue writes (the Service's)
// drop them at once, other nodes' writes are seen within ttl.
type Cache struct {
	ttl   time.Duration
	now   func() time.Time
	store persistence.Store

	mu       sync.Mutex
	loadedAt time.Time
	services map[string]persistence.Service
	staff    []persistence.StaffMember // active only
}

// NewCache returns an empty cache over store whose entries live for ttl.
// It keeps wall-clock time even where a service runs on a test clock, so
// a frozen clock cannot keep entries forever.
func NewCache(store persistence.Store, ttl time.Duration) *Cache {
	return &Cache{ttl: ttl, now: time.Now, store: store}
}

// Invalidate drops everything; the next read reloads.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.loadedAt = time.Time{}
	c.mu.Unlock()
}

// Snapshot returns the services (active or not) by id and the active
// staff, loading them if the cached copy is older than ttl. Callers must
// not modify them.
func (c *Cache) Snapshot(ctx context.Context) (map[string]persistence.Service, []persistence.StaffMember, error) {
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
