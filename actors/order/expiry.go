package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// SweepResult counts what one expiry sweep did.
type SweepResult struct {
	Expired           int      // orders moved to expired
	Lost              int      // orders paid or cancelled while the sweep looked at them
	CreditsExpired    int      // credit grants that ran out
	RestockedVariants []string // variants that got units back, possibly repeated
}

// Sweep expires up to limit pending_payment orders past their ExpiresAt,
// each in its own transaction (so one failure does not hold the others
// back), then expires lapsed credit grants. An order paid or cancelled
// between the listing and its transaction is counted in Lost, not an
// error: the conditional transition decided the race.
func Sweep(ctx context.Context, store persistence.Store, now time.Time, limit int) (SweepResult, error) {
	var res SweepResult
	var due []persistence.Order
	if err := store.InTx(ctx, func(tx persistence.Tx) (err error) {
		due, err = tx.OrderListExpired(ctx, now, limit)
		return err
	}); err != nil {
		return res, err
	}
	for _, o := range due {
		var r Result
		err := store.InTx(ctx, func(tx persistence.Tx) (err error) {
			r, err = Transition(ctx, tx, Change{OrderID: o.ID, To: persistence.OrderExpired, Actor: System,
				Reason: "not paid by " + o.ExpiresAt.UTC().Format(time.RFC3339), At: now})
			return err
		})
		switch {
		case err == nil:
			res.Expired++
			res.RestockedVariants = append(res.RestockedVariants, r.RestockedVariants...)
		case errIsMismatch(err) || errors.Is(err, ErrTransitionRefused):
			res.Lost++
		default:
			return res, fmt.Errorf("order: expire %s: %w", o.ID, err)
		}
	}
	err := store.InTx(ctx, func(tx persistence.Tx) (err error) {
		res.CreditsExpired, err = tx.CreditExpire(ctx, now, limit)
		return err
	})
	return res, err
}
