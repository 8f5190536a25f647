package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Saved payment sources. The payer's e-mail is sealed under the client's
// data key, so anonymisation (which destroys the key) shreds it.

const sourceColumns = `id, client_id, provider_id, type, label, email, status, created_at, updated_at`

func sourceEmailPlace(id string) string { return "payment_sources.email/" + id }

func (t *txn) scanSource(ctx context.Context, r row) (persistence.PaymentSource, error) {
	var s persistence.PaymentSource
	var status, email string
	if err := r.Scan(&s.ID, &s.ClientID, &s.ProviderID, &s.Type, &s.Label, &email, &status,
		t.at(&s.CreatedAt), t.at(&s.UpdatedAt)); err != nil {
		return s, err
	}
	s.Status = persistence.PaymentSourceStatus(status)
	var err error
	s.Email, err = t.openText(ctx, s.ClientID, sourceEmailPlace(s.ID), email)
	return s, err
}

func (t *txn) PaymentSourceCreate(ctx context.Context, s persistence.PaymentSource) (persistence.PaymentSource, error) {
	if s.ID == "" || s.ClientID == "" || s.ProviderID <= 0 || s.Type == "" || s.CreatedAt.IsZero() {
		return s, errors.Join(persistence.ErrInvalid, errors.New("payment source: id, client, provider id, type and time are required"))
	}
	email, err := t.sealText(ctx, s.ClientID, sourceEmailPlace(s.ID), s.Email)
	if err != nil {
		return s, err
	}
	s.Status, s.UpdatedAt = persistence.SourceAvailable, s.CreatedAt
	if _, err := t.exec(ctx, `INSERT INTO payment_sources (`+sourceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.ClientID, s.ProviderID, s.Type, s.Label, email, string(s.Status), t.ts(s.CreatedAt), t.ts(s.UpdatedAt)); err != nil {
		return s, t.mapErr(err)
	}
	s.CreatedAt, s.UpdatedAt = persistence.CanonicalTime(s.CreatedAt), persistence.CanonicalTime(s.UpdatedAt)
	return s, nil
}

func (t *txn) PaymentSourceGet(ctx context.Context, id string) (persistence.PaymentSource, error) {
	s, err := t.scanSource(ctx, t.queryRow(ctx, `SELECT `+sourceColumns+` FROM payment_sources WHERE id = ?`, id))
	return s, t.mapErr(err)
}

func (t *txn) PaymentSourceList(ctx context.Context, clientID string) ([]persistence.PaymentSource, error) {
	return queryList(ctx, t, func(r row) (persistence.PaymentSource, error) { return t.scanSource(ctx, r) },
		`SELECT `+sourceColumns+` FROM payment_sources WHERE client_id = ? AND status = ? ORDER BY id`,
		clientID, string(persistence.SourceAvailable))
}

func (t *txn) PaymentSourceVoid(ctx context.Context, id string, at time.Time) error {
	n, err := t.exec(ctx, `UPDATE payment_sources SET status = ?, updated_at = ? WHERE id = ? AND status = ?`,
		string(persistence.SourceVoided), t.ts(at), id, string(persistence.SourceAvailable))
	if err != nil || n > 0 {
		return err
	}
	_, err = t.PaymentSourceGet(ctx, id)
	return err
}
