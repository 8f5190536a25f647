package resource

import (
	"context"

	"github.com/spa-engine/spa/persistence"
)

// Fence takes the fencing epoch of an activating calendar, in the
// activating transaction. Alone, a node lets the database issue it
// (CalendarActivate); in a cluster the epoch is the lease epoch of the
// calendar's partition, so an activation on a node whose lease was taken
// over is refused (persistence.ErrFenced) instead of fencing out the new
// owner. Writes check the epoch the same way either way.
type Fence func(ctx context.Context, tx persistence.Tx, calendarID string) (int64, error)

// takeEpoch runs the configured Fence, or CalendarActivate without one.
func (d Deps) takeEpoch(ctx context.Context, tx persistence.Tx, calendarID string) (int64, error) {
	if d.Fence != nil {
		return d.Fence(ctx, tx, calendarID)
	}
	return tx.CalendarActivate(ctx, calendarID)
}
