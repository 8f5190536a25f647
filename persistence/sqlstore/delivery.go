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
