package postgres

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
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (resource_id, appointment_id) DO UPDATE
		SET start_at = excluded.start_at, end_at = excluded.end_at, expires_at = excluded.expires_at`,
		c.ResourceID, c.AppointmentID, ts(c.Start), ts(c.End), ts(c.ExpiresAt))
	return err
}

func (t *txn) ResourceClaimDelete(ctx context.Context, resourceID, appointmentID string) error {
	_, err := t.exec(ctx, `DELETE FROM resource_claims WHERE resource_id = $1 AND appointment_id = $2`, resourceID, appointmentID)
	return err
}

func (t *txn) ResourceClaimList(ctx context.Context, resourceID string, from, to, now time.Time) ([]persistence.ResourceClaim, error) {
	from, to, err := persistence.CheckTimeRange(from, to)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r rowScanner) (persistence.ResourceClaim, error) {
		var c persistence.ResourceClaim
		var start, end, expires time.Time
		err := r.Scan(&c.ResourceID, &c.AppointmentID, &start, &end, &expires)
		c.Start, c.End, c.ExpiresAt = ts(start), ts(end), ts(expires)
		return c, err
	}, `SELECT resource_id, appointment_id, start_at, end_at, expires_at FROM resource_claims
		WHERE resource_id = $1 AND start_at < $2 AND end_at > $3 AND expires_at > $4
		ORDER BY start_at, appointment_id`,
		resourceID, ts(to), ts(from), ts(now))
}
