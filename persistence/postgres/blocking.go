package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/persistence"
)

// Blocklist. A duplicate is found by a read before the insert, because a
// unique violation would abort the transaction.

const blockColumns = `id, kind, value, label, reason, created_by, created_at, expires_at`

func scanBlock(r rowScanner) (persistence.Block, error) {
	var b persistence.Block
	var kind string
	var created time.Time
	var expires *time.Time
	err := r.Scan(&b.ID, &kind, &b.Value, &b.Label, &b.Reason, &b.CreatedBy, &created, &expires)
	b.Kind, b.CreatedAt, b.ExpiresAt = persistence.BlockKind(kind), ts(created), fromNullTS(expires)
	return b, err
}

func (t *txn) BlockAdd(ctx context.Context, b persistence.Block) error {
	b, err := persistence.NormalizeBlock(b)
	if err != nil {
		return err
	}
	// An expired block of the same value is history, not a conflict.
	if _, err := t.exec(ctx, `DELETE FROM blocks WHERE kind = $1 AND value = $2
		AND expires_at IS NOT NULL AND expires_at <= $3`, string(b.Kind), b.Value, ts(b.CreatedAt)); err != nil {
		return err
	}
	var other string
	switch err := t.tx.QueryRow(ctx, `SELECT id FROM blocks WHERE kind = $1 AND value = $2`,
		string(b.Kind), b.Value).Scan(&other); {
	case err == nil:
		return fmt.Errorf("postgres: block %s already in force: %w", other, persistence.ErrConflict)
	case !errors.Is(err, pgx.ErrNoRows):
		return mapErr(err)
	}
	_, err = t.exec(ctx, `INSERT INTO blocks (`+blockColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		b.ID, string(b.Kind), b.Value, b.Label, b.Reason, b.CreatedBy, ts(b.CreatedAt), nullTS(b.ExpiresAt))
	return err
}

func (t *txn) BlockGet(ctx context.Context, id string) (persistence.Block, error) {
	b, err := scanBlock(t.tx.QueryRow(ctx, `SELECT `+blockColumns+` FROM blocks WHERE id = $1`, id))
	if err != nil {
		return persistence.Block{}, mapErr(err)
	}
	return b, nil
}

func (t *txn) BlockRemove(ctx context.Context, id string) error {
	n, err := t.exec(ctx, `DELETE FROM blocks WHERE id = $1`, id)
	if err == nil && n == 0 {
		err = mapErr(pgx.ErrNoRows)
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
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1))
	}
	if p.Kind != "" {
		add("kind = ?", string(p.Kind))
	}
	if !p.ActiveAt.IsZero() {
		add("(expires_at IS NULL OR expires_at > ?)", ts(p.ActiveAt))
	}
	if p.BeforeID != "" {
		add("id < ?", p.BeforeID)
	}
	q := `SELECT ` + blockColumns + ` FROM blocks`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, p.Limit)
	return queryList(ctx, t, scanBlock, q+" ORDER BY id DESC LIMIT $"+strconv.Itoa(len(args)), args...)
}

func (t *txn) BlockFind(ctx context.Context, kind persistence.BlockKind, value string, now time.Time) (persistence.Block, error) {
	b, err := scanBlock(t.tx.QueryRow(ctx, `SELECT `+blockColumns+` FROM blocks
		WHERE kind = $1 AND value = $2 AND (expires_at IS NULL OR expires_at > $3)`,
		string(kind), value, ts(now)))
	if err != nil {
		return persistence.Block{}, mapErr(err)
	}
	return b, nil
}
