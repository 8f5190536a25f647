package sqlstore

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
		c.ResourceID, c.AppointmentID, t.ts(c.Start), t.ts(c.End), t.ts(c.ExpiresAt))
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
	return queryList(ctx, t, func(r row) (persistence.ResourceClaim, error) {
		var c persistence.ResourceClaim
		err := r.Scan(&c.ResourceID, &c.AppointmentID, t.at(&c.Start), t.at(&c.End), t.at(&c.ExpiresAt))
		return c, err
	}, `SELECT resource_id, appointment_id, start_at, end_at, expires_at FROM resource_claims
		WHERE resource_id = ? AND start_at < ? AND end_at > ? AND expires_at > ?
		ORDER BY start_at, appointment_id`,
		resourceID, t.ts(to), t.ts(from), t.ts(now))
}
