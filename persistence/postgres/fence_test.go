package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/spa-engine/spa/persistence"
)

type epochActivator interface {
	CalendarActivateAt(ctx context.Context, calendarID string, epoch int64) error
}

func TestCalendarActivateAtFencesOlderEpochs(t *testing.T) {
	s := open(t, freshSchema(t), persistence.Options{})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	activate := func(epoch int64) error {
		return s.InTx(ctx, func(tx persistence.Tx) error {
			return tx.(epochActivator).CalendarActivateAt(ctx, "staff/ana", epoch)
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
}
