package sqlstore

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// ---- Kiosks ----

const kioskColumns = `id, label, created_by, created_at, expires_at, revoked_at`

func (t *txn) scanKiosk(r row) (persistence.Kiosk, error) {
	var k persistence.Kiosk
	if err := r.Scan(&k.ID, &k.Label, &k.CreatedBy, t.at(&k.CreatedAt), t.at(&k.ExpiresAt), t.at(&k.RevokedAt)); err != nil {
		return k, err
	}
	return k, nil
}

func (t *txn) KioskCreate(ctx context.Context, k persistence.Kiosk) error {
	k, err := persistence.NormalizeKiosk(k)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO kiosks (`+kioskColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.Label, k.CreatedBy, t.ts(k.CreatedAt), t.ts(k.ExpiresAt), t.nullTS(k.RevokedAt))
	return err
}

func (t *txn) KioskGet(ctx context.Context, id string) (persistence.Kiosk, error) {
	k, err := t.scanKiosk(t.queryRow(ctx, `SELECT `+kioskColumns+` FROM kiosks WHERE id = ?`, id))
	return k, t.mapErr(err)
}

func (t *txn) KioskList(ctx context.Context, now time.Time, all bool, limit int) ([]persistence.Kiosk, error) {
	if err := persistence.CheckLimit("kiosk list", limit, persistence.MaxKioskListLimit); err != nil {
		return nil, err
	}
	if all {
		return queryList(ctx, t, t.scanKiosk, `SELECT `+kioskColumns+` FROM kiosks ORDER BY id DESC LIMIT ?`, limit)
	}
	return queryList(ctx, t, t.scanKiosk, `SELECT `+kioskColumns+` FROM kiosks
		WHERE revoked_at IS NULL AND expires_at > ? ORDER BY id DESC LIMIT ?`, t.ts(now), limit)
}

func (t *txn) KioskRevoke(ctx context.Context, id string, at time.Time) (bool, error) {
	n, err := t.exec(ctx, `UPDATE kiosks SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, t.ts(at), id)
	if err != nil || n > 0 {
		return n > 0, err
	}
	if _, err := t.KioskGet(ctx, id); err != nil {
		return false, err
	}
	return false, nil
}

func (t *txn) KioskCountLive(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT count(*) FROM kiosks WHERE revoked_at IS NULL AND expires_at > ?`, t.ts(now)).Scan(&n)
	return n, t.mapErr(err)
}

var _ persistence.KioskStore = (*txn)(nil)
