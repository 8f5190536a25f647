package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// stores opens a migrated store of each driver: SQLite always, PostgreSQL
// when its variants run (persistence/pgtest).
func stores() map[string]func(t *testing.T) persistence.Store {
	open := map[string]func(t *testing.T) persistence.Store{
		"sqlite": func(t *testing.T) persistence.Store { return sqlitetest.Open(t, persistence.Options{}) },
	}
	if pgtest.Wanted() {
		open["postgres"] = func(t *testing.T) persistence.Store { return pgtest.Open(t, "sqlstore", persistence.Options{}) }
	}
	return open
}

func TestCalendarActivateAtFencesOlderEpochs(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			activate := func(epoch int64) error {
				return s.InTx(ctx, func(tx persistence.Tx) error {
					return tx.CalendarActivateAt(ctx, "staff/ana", epoch)
				})
			}
			check := func(epoch int64) error {
				return s.InTx(ctx, func(tx persistence.Tx) error { return tx.CalendarCheckEpoch(ctx, "staff/ana", epoch) })
			}
			if err := activate(100); err != nil {
				t.Fatal(err)
			}
			if err := check(100); err != nil {
				t.Fatalf("write at the activated epoch: %v", err)
			}
			if err := activate(100); err != nil {
				t.Fatalf("the same epoch again: %v", err)
			}
			if err := activate(250); err != nil {
				t.Fatal(err)
			}
			if err := activate(100); !errors.Is(err, persistence.ErrFenced) {
				t.Fatalf("an older epoch activated: %v", err)
			}
			if err := check(100); !errors.Is(err, persistence.ErrFenced) {
				t.Fatalf("a write at the older epoch: %v", err)
			}
			if err := check(250); err != nil {
				t.Fatalf("a write at the current epoch: %v", err)
			}
			if err := activate(0); !errors.Is(err, persistence.ErrInvalid) {
				t.Fatalf("epoch 0: %v", err)
			}
			// A database-issued activation afterwards continues above it.
			var e int64
			if err := s.InTx(ctx, func(tx persistence.Tx) (err error) { e, err = tx.CalendarActivate(ctx, "staff/ana"); return err }); err != nil || e != 251 {
				t.Fatalf("CalendarActivate after 250: %d %v", e, err)
			}
		})
	}
}
