package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// testQuotaCounters: a counter is written under a version check (a second
// first write and a stale version both lose) and read back as written, and
// the sweep deletes only counters that lapsed, at most limit at a time.
func testQuotaCounters(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	wantErr(t, "absent", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.QuotaGet(ctx, "otp/ip/192.0.2.1")
		return err
	}), persistence.ErrNotFound)

	var stored persistence.QuotaCounter
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		stored, err = tx.QuotaPut(ctx, persistence.QuotaCounter{Key: "otp/ip/192.0.2.1", State: []byte(`{"l":[1]}`),
			ExpiresAt: base.Add(time.Hour), UpdatedAt: base})
		return err
	})
	wantEqual(t, "first version", stored.Version, int64(1))
	wantErr(t, "insert twice", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.QuotaPut(ctx, persistence.QuotaCounter{Key: "otp/ip/192.0.2.1", State: []byte(`{}`), ExpiresAt: base, UpdatedAt: base})
		return err
	}), persistence.ErrConflict)
	next := stored
	next.State, next.ExpiresAt, next.UpdatedAt = []byte(`{"l":[1,2]}`), base.Add(2*time.Hour), base.Add(time.Second)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		var err error
		next, err = tx.QuotaPut(ctx, next)
		return err
	})
	wantEqual(t, "second version", next.Version, int64(2))
	wantErr(t, "stale version", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.QuotaPut(ctx, stored)
		return err
	}), persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.QuotaGet(ctx, "otp/ip/192.0.2.1")
		wantEqual(t, "read back", got, persistence.QuotaCounter{Key: "otp/ip/192.0.2.1", State: []byte(`{"l":[1,2]}`),
			ExpiresAt: ct(base.Add(2 * time.Hour)), Version: 2, UpdatedAt: ct(base.Add(time.Second))})
		return err
	})
	wantErr(t, "empty state", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.QuotaPut(ctx, persistence.QuotaCounter{Key: "k"})
		return err
	}), persistence.ErrInvalid)

	for i, k := range []string{"a", "b", "c"} {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.QuotaPut(ctx, persistence.QuotaCounter{Key: k, State: []byte(`{}`),
				ExpiresAt: base.Add(time.Duration(i) * time.Minute), UpdatedAt: base})
			return err
		})
	}
	// Lapsed before base+90s: a (base) and b (base+1m); c and the IP's
	// counter (base+2h) stay.
	for _, step := range []struct{ limit, want int }{{1, 1}, {10, 1}, {10, 0}} {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			n, err := tx.QuotaDeleteExpired(ctx, base.Add(90*time.Second), step.limit)
			wantEqual(t, "deleted", n, step.want)
			return err
		})
	}
	for k, want := range map[string]error{"a": persistence.ErrNotFound, "b": persistence.ErrNotFound, "c": nil, "otp/ip/192.0.2.1": nil} {
		wantErr(t, "after sweep "+k, txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.QuotaGet(ctx, k)
			return err
		}), want)
	}
}
