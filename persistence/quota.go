package persistence

import (
	"context"
	"time"
)

// QuotaCounter is one quota actor's state (actors/quota): the leases of
// one counted key (an IP address, a client, a global shard of a limit),
// serialised by the actor. ExpiresAt is when the last lease lapses: after
// it the row counts nothing and the sweep may delete it.
type QuotaCounter struct {
	Key       string
	State     []byte // JSON, opaque to the store
	ExpiresAt time.Time
	Version   int64 // optimistic concurrency; 0 means not yet stored
	UpdatedAt time.Time
}

// QuotaStore keeps the quota actors' counters.
type QuotaStore interface {
	// QuotaGet returns the key's counter, or ErrNotFound.
	QuotaGet(ctx context.Context, key string) (QuotaCounter, error)
	// QuotaPut stores c if the stored version equals c.Version (0: must
	// not exist) and returns it with Version incremented; ErrConflict on
	// a mismatch (another activation wrote the key, or the sweep deleted
	// it).
	QuotaPut(ctx context.Context, c QuotaCounter) (QuotaCounter, error)
	// QuotaDeleteExpired deletes up to limit counters whose ExpiresAt is
	// before before, and returns how many.
	QuotaDeleteExpired(ctx context.Context, before time.Time, limit int) (int, error)
}

// NormalizeQuotaCounter checks c for QuotaPut.
func NormalizeQuotaCounter(c QuotaCounter) (QuotaCounter, error) {
	if c.Key == "" || len(c.Key) > 200 {
		return c, invalidf("quota counter: key must be 1 to 200 bytes")
	}
	if len(c.State) == 0 {
		return c, invalidf("quota counter %s: empty state", c.Key)
	}
	if c.Version < 0 {
		return c, invalidf("quota counter %s: negative version", c.Key)
	}
	c.ExpiresAt, c.UpdatedAt = CanonicalTime(c.ExpiresAt), CanonicalTime(c.UpdatedAt)
	return c, nil
}
