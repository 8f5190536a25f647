package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Blocklist. A duplicate is found by a read before the insert, because a
// unique violation would abort the transaction (on PostgreSQL).

const blockColumns = `id, kind, value, label, reason, created_by, created_at, expires_at`

func (t *txn) scanBlock(r row) (persistence.Block, error) {
	var b persistence.Block
	var kind string
	err := r.Scan(&b.ID, &kind, &b.Value, &b.Label, &b.Reason, &b.CreatedBy, t.at(&b.CreatedAt), t.at(&b.ExpiresAt))
	b.Kind = persistence.BlockKind(kind)
	return b, err
}

func (t *txn) BlockAdd(ctx context.Context, b persistence.Block) error {
	b, err := persistence.NormalizeBlock(b)
	if err != nil {
		return err
	}
	// An expired block of the same value is history, not a conflict.
	if _, err := t.exec(ctx, `DELETE FROM blocks WHERE kind = ? AND value = ?
		AND expires_at IS NOT NULL AND expires_at <= ?`, string(b.Kind), b.Value, t.ts(b.CreatedAt)); err != nil {
		return err
	}
	var other string
	switch err := t.queryRow(ctx, `SELECT id FROM blocks WHERE kind = ? AND value = ?`,
		string(b.Kind), b.Value).Scan(&other); {
	case err == nil:
		return t.errorf("block %s already in force: %w", other, persistence.ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return t.mapErr(err)
	}
	_, err = t.exec(ctx, `INSERT INTO blocks (`+blockColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, string(b.Kind), b.Value, b.Label, b.Reason, b.CreatedBy, t.ts(b.CreatedAt), t.nullTS(b.ExpiresAt))
	return err
}

func (t *txn) BlockGet(ctx context.Context, id string) (persistence.Block, error) {
	b, err := t.scanBlock(t.queryRow(ctx, `SELECT `+blockColumns+` FROM blocks WHERE id = ?`, id))
	if err != nil {
		return persistence.Block{}, t.mapErr(err)
	}
	return b, nil
}

func (t *txn) BlockRemove(ctx context.Context, id string) error {
	n, err := t.exec(ctx, `DELETE FROM blocks WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) BlockList(ctx context.Context, p persistence.BlockListParams) ([]persistence.Block, error) {
	p, err := persistence.NormalizeBlockList(p)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if p.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(p.Kind))
	}
	if !p.ActiveAt.IsZero() {
		where, args = append(where, "(expires_at IS NULL OR expires_at > ?)"), append(args, t.ts(p.ActiveAt))
	}
	if p.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	q := `SELECT ` + blockColumns + ` FROM blocks`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return queryList(ctx, t, t.scanBlock, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
}

func (t *txn) BlockFind(ctx context.Context, kind persistence.BlockKind, value string, now time.Time) (persistence.Block, error) {
	b, err := t.scanBlock(t.queryRow(ctx, `SELECT `+blockColumns+` FROM blocks
		WHERE kind = ? AND value = ? AND (expires_at IS NULL OR expires_at > ?)`,
		string(kind), value, t.ts(now)))
	if err != nil {
		return persistence.Block{}, t.mapErr(err)
	}
	return b, nil
}
