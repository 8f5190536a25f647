package sqlstore

import (
	"context"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// ---- Quota counters (actors/quota) ----

func (t *txn) QuotaGet(ctx context.Context, key string) (persistence.QuotaCounter, error) {
	c := persistence.QuotaCounter{Key: key}
	err := t.queryRow(ctx, `SELECT state, expires_at, version, updated_at FROM quota_counters WHERE key = ?`, key).
		Scan(&c.State, t.at(&c.ExpiresAt), &c.Version, t.at(&c.UpdatedAt))
	if err != nil {
		return persistence.QuotaCounter{}, t.mapErr(err)
	}
	return c, nil
}

func (t *txn) QuotaPut(ctx context.Context, c persistence.QuotaCounter) (persistence.QuotaCounter, error) {
	c, err := persistence.NormalizeQuotaCounter(c)
	if err != nil {
		return c, err
	}
	var n int
	if c.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO quota_counters (key, state, expires_at, version, updated_at)
			VALUES (?, ?, ?, 1, ?) ON CONFLICT (key) DO NOTHING`,
			c.Key, c.State, t.ts(c.ExpiresAt), t.ts(c.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE quota_counters SET state = ?, expires_at = ?, version = version + 1, updated_at = ?
			WHERE key = ? AND version = ?`,
			c.State, t.ts(c.ExpiresAt), t.ts(c.UpdatedAt), c.Key, c.Version)
	}
	if err != nil {
		return c, err
	}
	if n == 0 {
		return c, persistence.VersionConflict("quota counter", c.Key, c.Version)
	}
	c.Version++
	return c, nil
}

func (t *txn) QuotaDeleteExpired(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("quota delete", limit, 0); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM quota_counters WHERE key IN (
		SELECT key FROM quota_counters WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`,
		t.ts(before), limit)
}
