package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Delivery statuses and the WhatsApp customer-service window
// (persistence.DeliveryStore).

func (t *txn) NotificationByProviderMessage(ctx context.Context, id string) (persistence.Notification, error) {
	if id == "" { // rows not sent yet carry "": never theirs
		return persistence.Notification{}, t.notFound()
	}
	n, err := t.scanNotification(t.queryRow(ctx, `SELECT `+notificationColumns+` FROM notifications
		WHERE provider_message_id = ? ORDER BY created_at, id LIMIT 1`, id))
	if err != nil {
		return n, t.mapErr(err)
	}
	ns := []persistence.Notification{n}
	err = t.openNotifications(ctx, ns)
	return ns[0], err
}

func (t *txn) MessagingWindowTouch(ctx context.Context, phoneKey string, at time.Time) error {
	if phoneKey == "" || at.IsZero() {
		return persistence.ErrInvalid
	}
	// The later time wins: an inbound webhook delivered late never moves
	// the window back.
	_, err := t.exec(ctx, `INSERT INTO messaging_windows (phone_key, last_inbound_at) VALUES (?, ?)
		ON CONFLICT (phone_key) DO UPDATE SET last_inbound_at = excluded.last_inbound_at
		WHERE messaging_windows.last_inbound_at < excluded.last_inbound_at`, phoneKey, t.ts(at))
	return err
}

func (t *txn) MessagingWindowLast(ctx context.Context, phoneKey string) (time.Time, error) {
	var at time.Time
	err := t.queryRow(ctx, `SELECT last_inbound_at FROM messaging_windows WHERE phone_key = ?`, phoneKey).Scan(t.at(&at))
	if err != nil {
		if err = t.mapErr(err); errors.Is(err, persistence.ErrNotFound) {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	return at, nil
}

func (t *txn) EarlyStatusPut(ctx context.Context, s persistence.EarlyStatus, dropBefore time.Time) error {
	if s.ProviderMessageID == "" || s.Status == "" || s.ReceivedAt.IsZero() {
		return persistence.ErrInvalid
	}
	if !dropBefore.IsZero() {
		if _, err := t.exec(ctx, `DELETE FROM early_delivery_statuses WHERE received_at < ?`, t.ts(dropBefore)); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, `INSERT INTO early_delivery_statuses (provider_message_id, status, provider, error_code, received_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider_message_id, status) DO NOTHING`,
		s.ProviderMessageID, s.Status, s.Provider, s.ErrorCode, t.ts(s.ReceivedAt))
	return err
}

func (t *txn) EarlyStatusTake(ctx context.Context, id string) ([]persistence.EarlyStatus, error) {
	if id == "" {
		return nil, nil
	}
	rows, err := t.query(ctx, `SELECT provider_message_id, status, provider, error_code, received_at
		FROM early_delivery_statuses WHERE provider_message_id = ? ORDER BY status`, id)
	if err != nil {
		return nil, err
	}
	var out []persistence.EarlyStatus
	for rows.Next() {
		var s persistence.EarlyStatus
		if err := rows.Scan(&s.ProviderMessageID, &s.Status, &s.Provider, &s.ErrorCode, t.at(&s.ReceivedAt)); err != nil {
			rows.Close()
			return nil, t.mapErr(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, t.mapErr(err)
	}
	rows.Close()
	if len(out) == 0 {
		return nil, nil
	}
	_, err = t.exec(ctx, `DELETE FROM early_delivery_statuses WHERE provider_message_id = ?`, id)
	return out, err
}
