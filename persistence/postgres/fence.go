package postgres

import (
	"context"
	"fmt"

	"github.com/spa-engine/spa/persistence"
)

// CalendarActivateAt makes epoch the calendar's fencing epoch when the
// epoch comes from outside the database: in a cluster, the lease of the
// calendar's partition (cmd/spa/cluster.go). A stored epoch above it means
// a later owner activated the calendar: ErrFenced, and nothing changes.
// The same epoch again is accepted (a later activation under the same
// lease, on the node that holds it). Writes keep checking the epoch with
// CalendarCheckEpoch, unchanged.
func (t *txn) CalendarActivateAt(ctx context.Context, calendarID string, epoch int64) error {
	if err := persistence.CheckCalendarID(calendarID); err != nil {
		return err
	}
	if epoch < 1 {
		return fmt.Errorf("postgres: calendar epoch %d: %w", epoch, persistence.ErrInvalid)
	}
	n, err := t.exec(ctx, `INSERT INTO calendars (id, epoch) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch WHERE calendars.epoch <= excluded.epoch`, calendarID, epoch)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("postgres: calendar %q is past epoch %d: %w", calendarID, epoch, persistence.ErrFenced)
	}
	return nil
}
