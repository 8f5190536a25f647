package sqlitetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Every store Open hands out is fully migrated, and each is its own
// database: a copy of the migrated image, not a handle on a shared file.
func TestOpenGivesMigratedIndependentStores(t *testing.T) {
	ctx := context.Background()
	a, b := Open(t, persistence.Options{}), Open(t, persistence.Options{})
	for name, s := range map[string]persistence.Store{"a": a, "b": b} {
		applied, err := s.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("%s: Migrate again applied %d migrations (%v), want none", name, len(applied), err)
		}
	}
	now := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	rec := persistence.IdempotencyRecord{Scope: "user/ana", Key: "k1", RequestHash: []byte("h"),
		State: persistence.IdempotencyCompleted, ResponseStatus: 201, ResponseBody: []byte("{}"),
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := a.InTx(ctx, func(tx persistence.Tx) error { return tx.IdempotencyClaim(ctx, rec, persistence.ErrConflict) }); err != nil {
		t.Fatalf("write to a: %v", err)
	}
	err := b.InTx(ctx, func(tx persistence.Tx) error {
		_, err := tx.IdempotencyGet(ctx, rec.Scope, rec.Key, now)
		return err
	})
	if !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("b read a's record: %v, want ErrNotFound (each store its own database)", err)
	}
}
