package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// ---- Idempotency ----

const idemColumns = `scope, key, owner, request_hash, state, locked_until, response_status,
	response_content_type, response_body, created_at, expires_at, holder`

// idemUpsert inserts a record, or on conflict replaces the one there
// (callers add a WHERE to the update).
const (
	idemHead       = `INSERT INTO idempotency_records (` + idemColumns + `) VALUES `
	idemRow        = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	idemUpsert     = idemHead + idemRow + idemOnConflict
	idemOnConflict = `
		ON CONFLICT (scope, key) DO UPDATE SET owner = excluded.owner,
			request_hash = excluded.request_hash,
			state = excluded.state, locked_until = excluded.locked_until,
			response_status = excluded.response_status,
			response_content_type = excluded.response_content_type,
			response_body = excluded.response_body, created_at = excluded.created_at,
			expires_at = excluded.expires_at, holder = excluded.holder`
)

// idemClaimInsert claims a key unless a live record holds it.
var idemClaimInsert = newInsert("idempotency_records", idemHead, idemRow,
	idemOnConflict+` WHERE idempotency_records.expires_at < excluded.created_at`)

func (t *txn) idemArgs(r persistence.IdempotencyRecord) []any {
	return []any{r.Scope, r.Key, r.Owner, r.RequestHash, string(r.State), t.nullTS(r.LockedUntil), r.ResponseStatus,
		r.ResponseContentType, r.ResponseBody, t.ts(r.CreatedAt), t.ts(r.ExpiresAt), r.Holder}
}

func (t *txn) scanIdem(row Row) (persistence.IdempotencyRecord, error) {
	var r persistence.IdempotencyRecord
	var state string
	err := row.Scan(&r.Scope, &r.Key, &r.Owner, &r.RequestHash, &state, t.at(&r.LockedUntil), &r.ResponseStatus,
		&r.ResponseContentType, &r.ResponseBody, t.at(&r.CreatedAt), t.at(&r.ExpiresAt), &r.Holder)
	r.State = persistence.IdempotencyState(state)
	return r, err
}

func (t *txn) IdempotencyGet(ctx context.Context, scope, key string, now time.Time) (persistence.IdempotencyRecord, error) {
	r, err := t.scanIdem(t.queryRow(ctx, `SELECT `+idemColumns+` FROM idempotency_records
		WHERE scope = ? AND key = ? AND expires_at >= ?`, scope, key, t.ts(now)))
	if err != nil {
		return persistence.IdempotencyRecord{}, t.mapErr(err)
	}
	return r, nil
}

func (t *txn) IdempotencyPut(ctx context.Context, r persistence.IdempotencyRecord) error {
	_, err := t.exec(ctx, idemUpsert, t.idemArgs(r)...)
	return err
}

func (t *txn) IdempotencyClaim(ctx context.Context, r persistence.IdempotencyRecord, held error) error {
	return t.later(ctx, Stmt{Insert: idemClaimInsert,
		Args: t.idemArgs(r), Affected: func(n int64) error {
			if n != 1 {
				return held
			}
			return nil
		}})
}

func (t *txn) IdempotencyList(ctx context.Context, now time.Time, afterScope, afterKey string, limit int) ([]persistence.IdempotencyRecord, error) {
	if err := persistence.CheckLimit("idempotency list", limit, 0); err != nil {
		return nil, err
	}
	return t.idemRecords(ctx, `SELECT `+idemColumns+` FROM idempotency_records
		WHERE expires_at >= ? AND (scope > ? OR (scope = ? AND key > ?))
		ORDER BY scope, key LIMIT ?`, t.ts(now), afterScope, afterScope, afterKey, limit)
}

func (t *txn) IdempotencyOwned(ctx context.Context, owner string, now time.Time) ([]persistence.IdempotencyRecord, error) {
	return t.idemRecords(ctx, `SELECT `+idemColumns+` FROM idempotency_records
		WHERE owner = ? AND expires_at >= ?`, owner, t.ts(now))
}

func (t *txn) idemRecords(ctx context.Context, query string, args ...any) ([]persistence.IdempotencyRecord, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, t.mapErr(err)
	}
	defer rows.Close()
	var out []persistence.IdempotencyRecord
	for rows.Next() {
		r, err := t.scanIdem(rows)
		if err != nil {
			return nil, t.mapErr(err)
		}
		out = append(out, r)
	}
	return out, t.mapErr(rows.Err())
}

func (t *txn) IdempotencyDelete(ctx context.Context, scope, key string) error {
	n, err := t.exec(ctx, `DELETE FROM idempotency_records WHERE scope = ? AND key = ?`, scope, key)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) IdempotencyReseal(ctx context.Context, scope, key string, old, body []byte) (bool, error) {
	n, err := t.exec(ctx, `UPDATE idempotency_records SET response_body = ?
		WHERE scope = ? AND key = ? AND response_body = ?`, body, scope, key, old)
	return n == 1, err
}

func (t *txn) IdempotencyDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := persistence.CheckLimit("idempotency delete", limit, 0); err != nil {
		return 0, err
	}
	return t.exec(ctx, `DELETE FROM idempotency_records WHERE (scope, key) IN (
		SELECT scope, key FROM idempotency_records WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`,
		t.ts(now), limit)
}

// ---- Audit ----

func (t *txn) AuditAppend(ctx context.Context, e persistence.AuditEntry) error {
	reason := e.Reason
	if e.ReasonClient != "" {
		var err error
		if reason, err = t.sealText(ctx, e.ReasonClient, auditReasonPlace(e.ID), reason); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, `INSERT INTO audit_log
		(id, at, actor_id, actor_role, action, subject, request_id, reason, detail, reason_client)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, t.ts(e.At), e.ActorID, e.ActorRole, e.Action, e.Subject, e.RequestID, reason, e.Detail, e.ReasonClient)
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
	q := `SELECT id, at, actor_id, actor_role, action, subject, request_id, reason, detail, reason_client FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	es, err := queryList(ctx, t, func(r row) (persistence.AuditEntry, error) {
		var e persistence.AuditEntry
		return e, r.Scan(&e.ID, t.at(&e.At), &e.ActorID, &e.ActorRole, &e.Action, &e.Subject,
			&e.RequestID, &e.Reason, &e.Detail, &e.ReasonClient)
	}, q+" ORDER BY id DESC LIMIT ?", append(args, p.Limit)...)
	if err != nil {
		return nil, err
	}
	return es, t.openReasons(ctx, len(es), func(i int) (string, string, *string) {
		return es[i].ReasonClient, auditReasonPlace(es[i].ID), &es[i].Reason
	})
}

// ---- Outbox ----

var outboxInsert = newInsert("outbox", `INSERT INTO outbox (id, subject, type, payload, created_at) VALUES `,
	`(?, ?, ?, ?, ?)`, "")

func (t *txn) OutboxAppend(ctx context.Context, e persistence.OutboxEvent) error {
	err := t.later(ctx, Stmt{Insert: outboxInsert,
		Args: []any{e.ID, e.Subject, e.Type, e.Payload, t.ts(e.CreatedAt)}})
	if err == nil {
		t.appended = append(t.appended, e.ID) // held: a failure fails the transaction, so no commit wakes the relay
	}
	return err
}

func (t *txn) OutboxPending(ctx context.Context, limit int) ([]persistence.OutboxEvent, error) {
	if err := persistence.CheckLimit("outbox pending", limit, 0); err != nil {
		return nil, err
	}
	return t.outboxEvents(ctx, `WHERE published_at IS NULL ORDER BY id LIMIT ?`, limit)
}

func (t *txn) OutboxPendingAmong(ctx context.Context, ids []string) ([]persistence.OutboxEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	in, args := t.in("id", ids, nil)
	return t.outboxEvents(ctx, `WHERE published_at IS NULL AND `+in+` ORDER BY id`, args...)
}

// outboxEvents reads the outbox rows the condition (and order) where picks.
func (t *txn) outboxEvents(ctx context.Context, where string, args ...any) ([]persistence.OutboxEvent, error) {
	return queryList(ctx, t, func(r row) (persistence.OutboxEvent, error) {
		var e persistence.OutboxEvent
		return e, r.Scan(&e.ID, &e.Subject, &e.Type, &e.Payload, t.at(&e.CreatedAt))
	}, `SELECT id, subject, type, payload, created_at FROM outbox `+where, args...)
}

func (t *txn) OutboxDelete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	// A delete, not a mark: marking wrote a new version of the row and an
	// index entry for it, and a sweep deleted the row a day later anyway.
	in, args := t.in("id", ids, nil)
	_, err := t.exec(ctx, `DELETE FROM outbox WHERE `+in, args...)
	return err
}

func (t *txn) OutboxCount(ctx context.Context) (pending int, err error) {
	// published_at is set only on rows an older version marked published
	// and has not swept yet (migration 0029).
	err = t.queryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL`).Scan(&pending)
	return pending, t.mapErr(err)
}

// ---- Studio ----

func (t *txn) StudioGet(ctx context.Context, id string) (persistence.Studio, error) {
	var s persistence.Studio
	err := t.queryRow(ctx, `SELECT id, name, time_zone, currency, phone, email, version, updated_at
		FROM studios WHERE id = ?`, id).
		Scan(&s.ID, &s.Name, &s.TimeZone, &s.Currency, &s.Phone, &s.Email, &s.Version, t.at(&s.UpdatedAt))
	if err != nil {
		return persistence.Studio{}, t.mapErr(err)
	}
	return s, nil
}

func (t *txn) StudioPut(ctx context.Context, s persistence.Studio) (persistence.Studio, error) {
	var n int
	var err error
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO studios (id, name, time_zone, currency, phone, email, version, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?)`,
			s.ID, s.Name, s.TimeZone, s.Currency, s.Phone, s.Email, t.ts(s.UpdatedAt))
	} else {
		n, err = t.exec(ctx, `UPDATE studios SET name = ?, time_zone = ?, currency = ?, phone = ?, email = ?,
			version = version + 1, updated_at = ? WHERE id = ? AND version = ?`,
			s.Name, s.TimeZone, s.Currency, s.Phone, s.Email, t.ts(s.UpdatedAt), s.ID, s.Version)
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
