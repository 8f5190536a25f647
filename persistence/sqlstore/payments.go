package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/persistence"
)

// ---- Payment intents ----

const intentColumns = `id, kind, subject_id, client_id, amount_minor, currency, status, transaction_id,
	created_at, updated_at, expires_at, version`

func (t *txn) scanIntent(r row) (persistence.PaymentIntent, error) {
	var p persistence.PaymentIntent
	var kind, status string
	err := r.Scan(&p.ID, &kind, &p.SubjectID, &p.ClientID, &p.AmountMinor, &p.Currency, &status, &p.TransactionID,
		t.at(&p.CreatedAt), t.at(&p.UpdatedAt), t.at(&p.ExpiresAt), &p.Version)
	p.Kind, p.Status = persistence.PaymentKind(kind), persistence.IntentStatus(status)
	return p, err
}

func (t *txn) PaymentIntentCreate(ctx context.Context, p persistence.PaymentIntent) (persistence.PaymentIntent, error) {
	p.Status, p.Version = persistence.IntentPending, 1
	p.CreatedAt, p.ExpiresAt = persistence.CanonicalTime(p.CreatedAt), persistence.CanonicalTime(p.ExpiresAt)
	p.UpdatedAt = p.CreatedAt
	if err := p.Check(); err != nil {
		return p, err
	}
	_, err := t.exec(ctx, `INSERT INTO payment_intents (`+intentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, string(p.Kind), p.SubjectID, p.ClientID, p.AmountMinor, p.Currency, string(p.Status), p.TransactionID,
		t.ts(p.CreatedAt), t.ts(p.UpdatedAt), t.ts(p.ExpiresAt), p.Version)
	return p, err
}

func (t *txn) PaymentIntentGet(ctx context.Context, id string) (persistence.PaymentIntent, error) {
	p, err := t.scanIntent(t.queryRow(ctx, `SELECT `+intentColumns+` FROM payment_intents WHERE id = ?`, id))
	return p, t.mapErr(err)
}

func (t *txn) PaymentIntentsOf(ctx context.Context, kind persistence.PaymentKind, subjectID string) ([]persistence.PaymentIntent, error) {
	return queryList(ctx, t, t.scanIntent, `SELECT `+intentColumns+` FROM payment_intents
		WHERE kind = ? AND subject_id = ? ORDER BY id DESC LIMIT 100`, string(kind), subjectID)
}

func (t *txn) PaymentIntentUpdate(ctx context.Context, ch persistence.IntentChange) (persistence.PaymentIntent, error) {
	cur, err := t.PaymentIntentGet(ctx, ch.ID)
	if err != nil {
		return cur, err
	}
	if cur.Version != ch.FromVersion {
		return cur, fmt.Errorf("payment intent %s is at version %d, not %d: %w", ch.ID, cur.Version, ch.FromVersion,
			persistence.ErrStatusMismatch)
	}
	if !persistence.IntentMayBecome(cur.Status, ch.Status) {
		return cur, fmt.Errorf("persistence: payment intent %s is %s and cannot become %s: %w", ch.ID, cur.Status, ch.Status,
			persistence.ErrInvalid)
	}
	txID := cur.TransactionID
	if ch.TransactionID != "" {
		txID = ch.TransactionID
	}
	n, err := t.exec(ctx, `UPDATE payment_intents SET status = ?, transaction_id = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ?`, string(ch.Status), txID, t.ts(ch.At), ch.ID, ch.FromVersion)
	if err != nil {
		return cur, err
	}
	if n == 0 {
		return cur, fmt.Errorf("payment intent %s changed meanwhile: %w", ch.ID, persistence.ErrStatusMismatch)
	}
	return t.PaymentIntentGet(ctx, ch.ID)
}

func (t *txn) PaymentIntentList(ctx context.Context, p persistence.IntentListParams) ([]persistence.PaymentIntent, error) {
	if err := persistence.CheckLimit("payment intents", p.Limit, persistence.MaxPaymentListLimit); err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	if len(p.Statuses) > 0 {
		st := make([]string, len(p.Statuses))
		for i, s := range p.Statuses {
			st[i] = string(s)
		}
		var c string
		c, args = t.in("status", st, args)
		conds = append(conds, c)
	}
	if !p.UpdatedSince.IsZero() {
		conds = append(conds, "updated_at >= ?")
		args = append(args, t.ts(p.UpdatedSince))
	}
	if len(conds) == 0 {
		return nil, fmt.Errorf("persistence: payment intents: no status and no time: %w", persistence.ErrInvalid)
	}
	q := `SELECT ` + intentColumns + ` FROM payment_intents WHERE (` + strings.Join(conds, " OR ") + `) AND id > ? ORDER BY id LIMIT ?`
	args = append(args, p.AfterID, p.Limit)
	return queryList(ctx, t, t.scanIntent, q, args...)
}

func (t *txn) PaymentDepositsToSettle(ctx context.Context, since time.Time, afterID string, limit int) ([]persistence.PaymentIntent, error) {
	if err := persistence.CheckLimit("payment intents", limit, persistence.MaxPaymentListLimit); err != nil {
		return nil, err
	}
	// Driven from the appointments that ended recently (index on status,
	// updated_at), so a pass costs what changed, not every deposit ever
	// attached.
	return queryList(ctx, t, t.scanIntent, `SELECT `+intentColumns+` FROM payment_intents
		WHERE kind = ? AND status = ? AND id > ?
		AND subject_id IN (SELECT id FROM appointments WHERE status IN (?, ?) AND updated_at >= ?)
		AND NOT EXISTS (SELECT 1 FROM payment_movements m
			WHERE m.intent_id = payment_intents.id AND m.movement_key = 'fee/' || payment_intents.id)
		ORDER BY id LIMIT ?`,
		string(persistence.PaymentDeposit), string(persistence.IntentApproved), afterID,
		string(persistence.StatusCancelled), string(persistence.StatusNoShow), t.ts(since), limit)
}

// ---- Payment events ----

const paymentEventColumns = `event_key, provider, received_at, body, transaction_id, status, amount_minor, reference,
	applied_at, outcome`

func (t *txn) scanPaymentEvent(r row) (persistence.PaymentEvent, error) {
	var e persistence.PaymentEvent
	err := r.Scan(&e.Key, &e.Provider, t.at(&e.ReceivedAt), &e.Body, &e.TransactionID, &e.Status, &e.AmountMinor,
		&e.Reference, t.at(&e.AppliedAt), &e.Outcome)
	return e, err
}

func (t *txn) PaymentEventRecord(ctx context.Context, e persistence.PaymentEvent) (persistence.PaymentEvent, bool, error) {
	if e.Key == "" || len(e.Key) > 128 || e.Provider == "" || e.ReceivedAt.IsZero() || len(e.Body) == 0 {
		return e, false, fmt.Errorf("persistence: payment event: empty key, provider, time or body: %w", persistence.ErrInvalid)
	}
	e.ReceivedAt, e.AppliedAt = persistence.CanonicalTime(e.ReceivedAt), persistence.CanonicalTime(e.AppliedAt)
	n, err := t.exec(ctx, `INSERT INTO payment_events (`+paymentEventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (event_key) DO NOTHING`,
		e.Key, e.Provider, t.ts(e.ReceivedAt), e.Body, e.TransactionID, e.Status, e.AmountMinor, e.Reference,
		t.nullTS(e.AppliedAt), e.Outcome)
	if err != nil {
		return e, false, err
	}
	stored, err := t.scanPaymentEvent(t.queryRow(ctx, `SELECT `+paymentEventColumns+` FROM payment_events WHERE event_key = ?`, e.Key))
	return stored, n > 0, t.mapErr(err)
}

func (t *txn) PaymentEventMarkApplied(ctx context.Context, key, outcome string, at time.Time) (bool, error) {
	n, err := t.exec(ctx, `UPDATE payment_events SET applied_at = ?, outcome = ? WHERE event_key = ? AND applied_at IS NULL`,
		t.ts(at), outcome, key)
	return n > 0, err
}

func (t *txn) PaymentEventListUnapplied(ctx context.Context, provider string, before time.Time, limit int) ([]persistence.PaymentEvent, error) {
	if err := persistence.CheckLimit("payment events", limit, persistence.MaxPaymentListLimit); err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanPaymentEvent, `SELECT `+paymentEventColumns+` FROM payment_events
		WHERE applied_at IS NULL AND received_at < ? AND provider = ? ORDER BY received_at, event_key LIMIT ?`,
		t.ts(before), provider, limit)
}

// ---- Ledger ----

func (t *txn) PaymentLedgerPost(ctx context.Context, m persistence.LedgerMovement) error {
	if err := m.Check(); err != nil {
		return err
	}
	at := t.ts(m.At)
	if _, err := t.exec(ctx, `INSERT INTO payment_movements (id, intent_id, movement_key, memo, at) VALUES (?, ?, ?, ?, ?)`,
		m.ID, m.IntentID, m.Key, m.Memo, at); err != nil {
		return err
	}
	for _, l := range m.Lines {
		amount := l.AmountMinor
		if !l.Debit {
			amount = -amount
		}
		if _, err := t.exec(ctx, `INSERT INTO payment_ledger (id, movement_id, intent_id, account, amount_minor, at)
			VALUES (?, ?, ?, ?, ?, ?)`, ulid.Make().String(), m.ID, m.IntentID, l.Account, amount, at); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) PaymentLedgerEntries(ctx context.Context, intentID string) ([]persistence.LedgerEntry, error) {
	return queryList(ctx, t, func(r row) (persistence.LedgerEntry, error) {
		var e persistence.LedgerEntry
		err := r.Scan(&e.ID, &e.MovementID, &e.IntentID, &e.Key, &e.Account, &e.AmountMinor, &e.Memo, t.at(&e.At))
		return e, err
	}, `SELECT l.id, l.movement_id, l.intent_id, m.movement_key, l.account, l.amount_minor, m.memo, l.at
		FROM payment_ledger l JOIN payment_movements m ON m.id = l.movement_id
		WHERE l.intent_id = ? ORDER BY l.id`, intentID)
}

func (t *txn) PaymentLedgerBalances(ctx context.Context) (map[string]int64, error) {
	type bal struct {
		account string
		amount  int64
	}
	rows, err := queryList(ctx, t, func(r row) (bal, error) {
		var b bal
		err := r.Scan(&b.account, &b.amount)
		return b, err
	}, `SELECT account, CAST(SUM(amount_minor) AS BIGINT) FROM payment_ledger GROUP BY account ORDER BY account`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(rows))
	for _, b := range rows {
		out[b.account] = b.amount
	}
	return out, nil
}

// ---- Exceptions ----

const exceptionColumns = `id, class, state, dedupe, intent_id, reference, transaction_id, amount_minor, detail,
	opened_at, resolved_at, resolved_by, resolution, version`

func (t *txn) scanException(r row) (persistence.PaymentException, error) {
	var x persistence.PaymentException
	var class, state string
	err := r.Scan(&x.ID, &class, &state, &x.Dedupe, &x.IntentID, &x.Reference, &x.TransactionID, &x.AmountMinor,
		&x.Detail, t.at(&x.OpenedAt), t.at(&x.ResolvedAt), &x.ResolvedBy, &x.Resolution, &x.Version)
	x.Class, x.State = persistence.ExceptionClass(class), persistence.ExceptionState(state)
	return x, err
}

func (t *txn) PaymentExceptionOpen(ctx context.Context, x persistence.PaymentException) (persistence.PaymentException, bool, error) {
	if x.ID == "" || x.Dedupe == "" || !x.Class.Valid() || !x.State.Valid() || x.OpenedAt.IsZero() {
		return x, false, fmt.Errorf("persistence: payment exception: empty id or dedupe, bad class or state, or zero time: %w",
			persistence.ErrInvalid)
	}
	x.OpenedAt, x.ResolvedAt, x.Version = persistence.CanonicalTime(x.OpenedAt), persistence.CanonicalTime(x.ResolvedAt), 1
	n, err := t.exec(ctx, `INSERT INTO payment_exceptions (`+exceptionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe) DO NOTHING`,
		x.ID, string(x.Class), string(x.State), x.Dedupe, x.IntentID, x.Reference, x.TransactionID, x.AmountMinor,
		x.Detail, t.ts(x.OpenedAt), t.nullTS(x.ResolvedAt), x.ResolvedBy, x.Resolution, x.Version)
	if err != nil {
		return x, false, err
	}
	stored, err := t.scanException(t.queryRow(ctx, `SELECT `+exceptionColumns+` FROM payment_exceptions WHERE dedupe = ?`, x.Dedupe))
	return stored, n > 0, t.mapErr(err)
}

func (t *txn) PaymentExceptionGet(ctx context.Context, id string) (persistence.PaymentException, error) {
	x, err := t.scanException(t.queryRow(ctx, `SELECT `+exceptionColumns+` FROM payment_exceptions WHERE id = ?`, id))
	return x, t.mapErr(err)
}

func (t *txn) PaymentExceptionList(ctx context.Context, p persistence.ExceptionListParams) ([]persistence.PaymentException, error) {
	if err := persistence.CheckLimit("payment exceptions", p.Limit, persistence.MaxPaymentListLimit); err != nil {
		return nil, err
	}
	q := `SELECT ` + exceptionColumns + ` FROM payment_exceptions WHERE 1 = 1`
	var args []any
	if p.State != "" {
		q += ` AND state = ?`
		args = append(args, string(p.State))
	}
	if p.Class != "" {
		q += ` AND class = ?`
		args = append(args, string(p.Class))
	}
	if p.BeforeID != "" {
		q += ` AND id < ?`
		args = append(args, p.BeforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	return queryList(ctx, t, t.scanException, q, append(args, p.Limit)...)
}

func (t *txn) PaymentExceptionResolve(ctx context.Context, r persistence.ExceptionResolve) (persistence.PaymentException, error) {
	if r.State != persistence.ExceptionResolved && r.State != persistence.ExceptionWrittenOff {
		return persistence.PaymentException{}, fmt.Errorf("persistence: resolve exception %s to %q: %w", r.ID, r.State, persistence.ErrInvalid)
	}
	n, err := t.exec(ctx, `UPDATE payment_exceptions SET state = ?, resolved_at = ?, resolved_by = ?, resolution = ?,
		version = version + 1 WHERE id = ? AND state = 'open'`, string(r.State), t.ts(r.At), r.By, r.Reason, r.ID)
	if err != nil {
		return persistence.PaymentException{}, err
	}
	x, err := t.PaymentExceptionGet(ctx, r.ID)
	if err != nil {
		return x, err
	}
	if n == 0 {
		return x, fmt.Errorf("payment exception %s is %s: %w", r.ID, x.State, persistence.ErrStatusMismatch)
	}
	return x, nil
}

func (t *txn) PaymentExceptionStats(ctx context.Context) ([]persistence.ExceptionStat, error) {
	type stat struct {
		class  string
		open   int
		oldest time.Time
	}
	rows, err := queryList(ctx, t, func(r row) (stat, error) {
		var s stat
		err := r.Scan(&s.class, &s.open, t.at(&s.oldest))
		return s, err
	}, `SELECT class, count(*), min(opened_at) FROM payment_exceptions WHERE state = 'open' GROUP BY class`)
	if err != nil {
		return nil, err
	}
	by := map[string]stat{}
	for _, s := range rows {
		by[s.class] = s
	}
	out := make([]persistence.ExceptionStat, 0, len(persistence.ExceptionClasses))
	for _, c := range persistence.ExceptionClasses {
		s := by[string(c)]
		out = append(out, persistence.ExceptionStat{Class: c, Open: s.open, OldestOpenAt: s.oldest})
	}
	return out, nil
}

var _ persistence.PaymentStore = (*txn)(nil)
