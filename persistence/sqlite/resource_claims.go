package sqlite

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence"
)

func (t *txn) ResourceClaimPut(ctx context.Context, c persistence.ResourceClaim) error {
	c, err := persistence.NormalizeResourceClaim(c)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO resource_claims (resource_id, appointment_id, start_at, end_at, expires_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (resource_id, appointment_id) DO UPDATE
		SET start_at = excluded.start_at, end_at = excluded.end_at, expires_at = excluded.expires_at`,
		c.ResourceID, c.AppointmentID, toMicros(c.Start), toMicros(c.End), toMicros(c.ExpiresAt))
	return err
}

func (t *txn) ResourceClaimDelete(ctx context.Context, resourceID, appointmentID string) error {
	_, err := t.exec(ctx, `DELETE FROM resource_claims WHERE resource_id = ? AND appointment_id = ?`, resourceID, appointmentID)
	return err
}

func (t *txn) ResourceClaimList(ctx context.Context, resourceID string, from, to, now time.Time) ([]persistence.ResourceClaim, error) {
	from, to, err := persistence.CheckTimeRange(from, to)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r rowScanner) (persistence.ResourceClaim, error) {
		var c persistence.ResourceClaim
		var start, end, expires int64
		err := r.Scan(&c.ResourceID, &c.AppointmentID, &start, &end, &expires)
		c.Start, c.End, c.ExpiresAt = fromMicros(start), fromMicros(end), fromMicros(expires)
		return c, err
	}, `SELECT resource_id, appointment_id, start_at, end_at, expires_at FROM resource_claims
		WHERE resource_id = ? AND start_at < ? AND end_at > ? AND expires_at > ?
		ORDER BY start_at, appointment_id`,
		resourceID, toMicros(to), toMicros(from), toMicros(persistence.CanonicalTime(now)))
}
