package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// txn is one transaction's persistence.Tx.
type txn struct {
	tx       *sql.Tx
	appended bool // an outbox event was appended
}

func (t *txn) exec(ctx context.Context, query string, args ...any) (int, error) {
	res, err := t.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), mapErr(err)
}

// ---- Idempotency ----

const idemColumns = `scope, key, request_hash, state, locked_until, response_status,
	response_content_type, response_body, created_at, expires_at`

func (t *txn) IdempotencyGet(ctx context.Context, scope, key string, now time.Time) (persistence.IdempotencyRecord, error) {
	var r persistence.IdempotencyRecord
	var locked sql.NullInt64
	var created, expires int64
	err := t.tx.QueryRowContext(ctx, `SELECT `+idemColumns+` FROM idempotency_records
		WHERE scope = ? AND key = ? AND expires_at >= ?`, scope, key, toMicros(now)).
		Scan(&r.Scope, &r.Key, &r.RequestHash, &r.State, &locked, &r.ResponseStatus,
			&r.ResponseContentType, &r.ResponseBody, &created, &expires)
	if err != nil {
		return persistence.IdempotencyRecord{}, mapErr(err)
	}
	r.LockedUntil, r.CreatedAt, r.ExpiresAt = fromNullMicros(locked), fromMicros(created), fromMicros(expires)
	return r, nil
}

func (t *txn) IdempotencyPut(ctx context.Context, r persistence.IdempotencyRecord) error {
	_, err := t.exec(ctx, `INSERT INTO idempotency_records (`+idemColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (scope, key) DO UPDATE SET request_hash = excluded.request_hash,
			state = excluded.state, locked_until = excluded.locked_until,
			response_status = excluded.response_status,
			response_content_type = excluded.response_content_type,
			response_body = excluded.response_body, created_at = excluded.created_at,
			expires_at = excluded.expires_at`,
		r.Scope, r.Key, r.RequestHash, string(r.State), toNullMicros(r.LockedUntil), r.ResponseStatus,
		r.ResponseContentType, r.ResponseBody, toMicros(r.CreatedAt), toMicros(r.ExpiresAt))
	return err
}

func (t *txn) IdempotencyDelete(ctx context.Context, scope, key string) error {
	n, err := t.exec(ctx, `DELETE FROM idempotency_records WHERE scope = ? AND key = ?`, scope, key)
	if err == nil && n == 0 {
		err = mapErr(sql.ErrNoRows)
	}
	return err
}

func (t *txn) IdempotencyDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("idempotency delete", limit, 0); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM idempotency_records WHERE (scope, key) IN (
		SELECT scope, key FROM idempotency_records WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`,
		toMicros(now), limit)
}

// ---- Audit ----

func (t *txn) AuditAppend(ctx context.Context, e persistence.AuditEntry) error {
	_, err := t.exec(ctx, `INSERT INTO audit_log
		(id, at, actor_id, actor_role, action, subject, request_id, reason, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, toMicros(e.At), e.ActorID, e.ActorRole, e.Action, e.Subject, e.RequestID, e.Reason, e.Detail)
	return err
}

func (t *txn) AuditList(ctx context.Context, p persistence.AuditListParams) ([]persistence.AuditEntry, error) {
	if err := persistence.CheckLimit("audit list", p.Limit, persistence.MaxAuditListLimit); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if p.Subject != "" {
		where, args = append(where, "subject = ?"), append(args, p.Subject)
	}
	if p.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, p.BeforeID)
	}
	q := `SELECT id, at, actor_id, actor_role, action, subject, request_id, reason, detail FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := t.tx.QueryContext(ctx, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []persistence.AuditEntry{}
	for rows.Next() {
		var e persistence.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.ActorID, &e.ActorRole, &e.Action, &e.Subject,
			&e.RequestID, &e.Reason, &e.Detail); err != nil {
			return nil, mapErr(err)
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

// ---- Outbox ----

func (t *txn) OutboxAppend(ctx context.Context, e persistence.OutboxEvent) error {
	_, err := t.exec(ctx, `INSERT INTO outbox (id, subject, type, payload, created_at, published_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, e.Subject, e.Type, e.Payload, toMicros(e.CreatedAt), toNullMicros(e.PublishedAt))
	if err == nil {
		t.appended = true
	}
	return err
}

func (t *txn) OutboxPending(ctx context.Context, limit int) ([]persistence.OutboxEvent, error) {
	if err := persistence.CheckLimit("outbox pending", limit, 0); err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT id, subject, type, payload, created_at FROM outbox
		WHERE published_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []persistence.OutboxEvent{}
	for rows.Next() {
		var e persistence.OutboxEvent
		var created int64
		if err := rows.Scan(&e.ID, &e.Subject, &e.Type, &e.Payload, &created); err != nil {
			return nil, mapErr(err)
		}
		e.CreatedAt = fromMicros(created)
		out = append(out, e)
	}
	return out, mapErr(rows.Err())
}

func (t *txn) OutboxMarkPublished(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{toMicros(at)}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := t.exec(ctx, `UPDATE outbox SET published_at = ?
		WHERE published_at IS NULL AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, args...)
	return err
}

func (t *txn) OutboxDeletePublished(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("outbox delete", limit, 0); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM outbox WHERE id IN (SELECT id FROM outbox
		WHERE published_at < ? ORDER BY published_at LIMIT ?)`, toMicros(before), limit)
}

func (t *txn) OutboxCount(ctx context.Context) (pending, published int, err error) {
	err = t.tx.QueryRowContext(ctx, `SELECT COUNT(*) - COUNT(published_at), COUNT(published_at) FROM outbox`).
		Scan(&pending, &published)
	return pending, published, mapErr(err)
}

// ---- Studio ----

func (t *txn) StudioGet(ctx context.Context, id string) (persistence.Studio, error) {
	var s persistence.Studio
	var updated int64
	err := t.tx.QueryRowContext(ctx, `SELECT id, name, time_zone, currency, phone, email, version, updated_at
		FROM studios WHERE id = ?`, id).
		Scan(&s.ID, &s.Name, &s.TimeZone, &s.Currency, &s.Phone, &s.Email, &s.Version, &updated)
	if err != nil {
		return persistence.Studio{}, mapErr(err)
	}
	s.UpdatedAt = fromMicros(updated)
	return s, nil
}

func (t *txn) StudioPut(ctx context.Context, s persistence.Studio) (persistence.Studio, error) {
	var n int
	var err error
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO studios (id, name, time_zone, currency, phone, email, version, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?)`,
			s.ID, s.Name, s.TimeZone, s.Currency, s.Phone, s.Email, toMicros(s.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE studios SET name = ?, time_zone = ?, currency = ?, phone = ?, email = ?,
			version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
			s.Name, s.TimeZone, s.Currency, s.Phone, s.Email, toMicros(s.UpdatedAt), s.ID, s.Version)
	}
	if err != nil {
		return persistence.Studio{}, err
	}
	if n == 0 {
		return persistence.Studio{}, persistence.StudioVersionConflict(s)
	}
	s.Version++
	s.UpdatedAt = persistence.CanonicalTime(s.UpdatedAt)
	return s, nil
}
