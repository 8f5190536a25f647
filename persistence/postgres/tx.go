package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/persistence"
)

// txn is one transaction's persistence.Tx.
type txn struct {
	tx       pgx.Tx
	appended bool // an outbox event was appended
}

func (t *txn) exec(ctx context.Context, query string, args ...any) (int, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	return int(tag.RowsAffected()), mapErr(err)
}

// ts is t as stored: UTC microseconds. nullTS maps the zero time to NULL.
func ts(t time.Time) time.Time { return persistence.CanonicalTime(t) }

func nullTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ts(t)
	return &t
}

func fromNullTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return ts(*t)
}

// ---- Idempotency ----

const idemColumns = `scope, key, request_hash, state, locked_until, response_status,
	response_content_type, response_body, created_at, expires_at`

func (t *txn) IdempotencyGet(ctx context.Context, scope, key string, now time.Time) (persistence.IdempotencyRecord, error) {
	var r persistence.IdempotencyRecord
	var locked *time.Time
	var state string
	var status int64
	err := t.tx.QueryRow(ctx, `SELECT `+idemColumns+` FROM idempotency_records
		WHERE scope = $1 AND key = $2 AND expires_at >= $3`, scope, key, ts(now)).
		Scan(&r.Scope, &r.Key, &r.RequestHash, &state, &locked, &status,
			&r.ResponseContentType, &r.ResponseBody, &r.CreatedAt, &r.ExpiresAt)
	if err != nil {
		return persistence.IdempotencyRecord{}, mapErr(err)
	}
	r.State, r.ResponseStatus = persistence.IdempotencyState(state), int(status)
	r.LockedUntil, r.CreatedAt, r.ExpiresAt = fromNullTS(locked), ts(r.CreatedAt), ts(r.ExpiresAt)
	return r, nil
}

func (t *txn) IdempotencyPut(ctx context.Context, r persistence.IdempotencyRecord) error {
	_, err := t.exec(ctx, `INSERT INTO idempotency_records (`+idemColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
			state = excluded.state, locked_until = excluded.locked_until,
			response_status = excluded.response_status,
			response_content_type = excluded.response_content_type,
			response_body = excluded.response_body, created_at = excluded.created_at,
			expires_at = excluded.expires_at`,
		r.Scope, r.Key, r.RequestHash, string(r.State), nullTS(r.LockedUntil), int64(r.ResponseStatus),
		r.ResponseContentType, r.ResponseBody, ts(r.CreatedAt), ts(r.ExpiresAt))
	return err
}

func (t *txn) IdempotencyDelete(ctx context.Context, scope, key string) error {
	n, err := t.exec(ctx, `DELETE FROM idempotency_records WHERE scope = $1 AND key = $2`, scope, key)
	if err == nil && n == 0 {
		err = mapErr(pgx.ErrNoRows)
	}
	return err
}

func (t *txn) IdempotencyDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("idempotency delete", limit, 0); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM idempotency_records WHERE (scope, key) IN (
		SELECT scope, key FROM idempotency_records WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`,
		ts(now), limit)
}

// ---- Audit ----

func (t *txn) AuditAppend(ctx context.Context, e persistence.AuditEntry) error {
	_, err := t.exec(ctx, `INSERT INTO audit_log
		(id, at, actor_id, actor_role, action, subject, request_id, reason, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, ts(e.At), e.ActorID, e.ActorRole, e.Action, e.Subject, e.RequestID, e.Reason, e.Detail)
	return err
}

func (t *txn) AuditList(ctx context.Context, p persistence.AuditListParams) ([]persistence.AuditEntry, error) {
	if err := persistence.CheckLimit("audit list", p.Limit, persistence.MaxAuditListLimit); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if p.Subject != "" {
		args = append(args, p.Subject)
		where = append(where, fmt.Sprintf("subject = $%d", len(args)))
	}
	if p.BeforeID != "" {
		args = append(args, p.BeforeID)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	q := `SELECT id, at, actor_id, actor_role, action, subject, request_id, reason, detail FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, p.Limit)
	rows, _ := t.tx.Query(ctx, q+fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args)), args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.AuditEntry, error) {
		var e persistence.AuditEntry
		err := row.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorRole, &e.Action, &e.Subject,
			&e.RequestID, &e.Reason, &e.Detail)
		e.At = ts(e.At)
		return e, err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return append([]persistence.AuditEntry{}, out...), nil
}

// ---- Outbox ----

func (t *txn) OutboxAppend(ctx context.Context, e persistence.OutboxEvent) error {
	_, err := t.exec(ctx, `INSERT INTO outbox (id, subject, type, payload, created_at, published_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.Subject, e.Type, e.Payload, ts(e.CreatedAt), nullTS(e.PublishedAt))
	if err == nil {
		t.appended = true
	}
	return err
}

func (t *txn) OutboxPending(ctx context.Context, limit int) ([]persistence.OutboxEvent, error) {
	if err := persistence.CheckLimit("outbox pending", limit, 0); err != nil {
		return nil, err
	}
	rows, _ := t.tx.Query(ctx, `SELECT id, subject, type, payload, created_at FROM outbox
		WHERE published_at IS NULL ORDER BY id LIMIT $1`, limit)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (persistence.OutboxEvent, error) {
		var e persistence.OutboxEvent
		err := row.Scan(&e.ID, &e.Subject, &e.Type, &e.Payload, &e.CreatedAt)
		e.CreatedAt = ts(e.CreatedAt)
		return e, err
	})
	if err != nil {
		return nil, mapErr(err)
	}
	return append([]persistence.OutboxEvent{}, out...), nil
}

func (t *txn) OutboxMarkPublished(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := t.exec(ctx, `UPDATE outbox SET published_at = $1
		WHERE published_at IS NULL AND id = ANY($2)`, ts(at), ids)
	return err
}

func (t *txn) OutboxDeletePublished(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("outbox delete", limit, 0); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
		WHERE published_at < $1 ORDER BY published_at LIMIT $2)`, ts(before), limit)
}

func (t *txn) OutboxCount(ctx context.Context) (pending, published int, err error) {
	var p, q int64
	err = t.tx.QueryRow(ctx, `SELECT COUNT(*) - COUNT(published_at), COUNT(published_at) FROM outbox`).Scan(&p, &q)
	return int(p), int(q), mapErr(err)
}

// ---- Studio ----

func (t *txn) StudioGet(ctx context.Context, id string) (persistence.Studio, error) {
	var s persistence.Studio
	err := t.tx.QueryRow(ctx, `SELECT id, name, time_zone, currency, phone, email, version, updated_at
		FROM studios WHERE id = $1`, id).
		Scan(&s.ID, &s.Name, &s.TimeZone, &s.Currency, &s.Phone, &s.Email, &s.Version, &s.UpdatedAt)
	if err != nil {
		return persistence.Studio{}, mapErr(err)
	}
	s.UpdatedAt = ts(s.UpdatedAt)
	return s, nil
}

func (t *txn) StudioPut(ctx context.Context, s persistence.Studio) (persistence.Studio, error) {
	var n int
	var err error
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO studios (id, name, time_zone, currency, phone, email, version, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 1, $7)`,
			s.ID, s.Name, s.TimeZone, s.Currency, s.Phone, s.Email, ts(s.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE studios SET name = $1, time_zone = $2, currency = $3, phone = $4,
			email = $5, version = version + 1, updated_at = $6 WHERE id = $7 AND version = $8`,
			s.Name, s.TimeZone, s.Currency, s.Phone, s.Email, ts(s.UpdatedAt), s.ID, s.Version)
	}
	if err != nil {
		return persistence.Studio{}, err
	}
	if n == 0 {
		return persistence.Studio{}, persistence.StudioVersionConflict(s)
	}
	s.Version++
	s.UpdatedAt = ts(s.UpdatedAt)
	return s, nil
}
