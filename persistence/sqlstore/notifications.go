package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/spa-engine/spa/persistence"
)

// Notifications. The body is sealed under the client's data key, so
// anonymisation (which destroys the key) shreds it.

const notificationColumns = `id, user_id, kind, category, channel, status, attempts, last_error,
	provider_message_id, body, created_at, updated_at, sent_at`

func notificationBodyPlace(id string) string { return "notifications.body/" + id }

// scanNotification reads a row with the body as stored; openNotifications
// opens the bodies once the rows are closed (a query cannot run while
// rows are read on PostgreSQL, and opening may read the client's key).
func (t *txn) scanNotification(r row) (persistence.Notification, error) {
	var n persistence.Notification
	var category, status string
	err := r.Scan(&n.ID, &n.UserID, &n.Kind, &category, &n.Channel, &status, &n.Attempts, &n.LastError,
		&n.ProviderMessageID, &n.Body, t.at(&n.CreatedAt), t.at(&n.UpdatedAt), t.at(&n.SentAt))
	n.Category, n.Status = persistence.NotificationCategory(category), persistence.NotificationStatus(status)
	return n, err
}

func (t *txn) openNotifications(ctx context.Context, ns []persistence.Notification) error {
	for i := range ns {
		body, err := t.openText(ctx, ns[i].UserID, notificationBodyPlace(ns[i].ID), ns[i].Body)
		if err != nil {
			return err
		}
		ns[i].Body = body
	}
	return nil
}

func (t *txn) NotificationCreate(ctx context.Context, n persistence.Notification) (persistence.Notification, bool, error) {
	if err := persistence.CheckNotification(n); err != nil {
		return n, false, err
	}
	body, err := t.sealText(ctx, n.UserID, notificationBodyPlace(n.ID), n.Body)
	if err != nil {
		return n, false, err
	}
	if n.UpdatedAt.IsZero() {
		n.UpdatedAt = n.CreatedAt
	}
	// DO NOTHING: the id is the cause; a second writer (a redelivery, a
	// second node) reads back the first one's row instead.
	created, err := t.exec(ctx, `INSERT INTO notifications (`+notificationColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		n.ID, n.UserID, n.Kind, string(n.Category), n.Channel, string(n.Status), n.LastError,
		n.ProviderMessageID, body, t.ts(n.CreatedAt), t.ts(n.UpdatedAt), t.nullTS(n.SentAt))
	if err != nil {
		return n, false, err
	}
	stored, err := t.NotificationGet(ctx, n.ID)
	return stored, created == 1, err
}

func (t *txn) NotificationGet(ctx context.Context, id string) (persistence.Notification, error) {
	n, err := t.scanNotification(t.queryRow(ctx, `SELECT `+notificationColumns+` FROM notifications WHERE id = ?`, id))
	if err != nil {
		return n, t.mapErr(err)
	}
	ns := []persistence.Notification{n}
	err = t.openNotifications(ctx, ns)
	return ns[0], err
}

func (t *txn) NotificationUpdate(ctx context.Context, n persistence.Notification) error {
	if !n.Status.Valid() || n.Attempts < 0 {
		return fmt.Errorf("notification %s: status %q, %d attempts: %w", n.ID, n.Status, n.Attempts, persistence.ErrInvalid)
	}
	rows, err := t.exec(ctx, `UPDATE notifications SET status = ?, attempts = ?, last_error = ?, provider_message_id = ?,
		updated_at = ?, sent_at = ? WHERE id = ?`,
		string(n.Status), n.Attempts, n.LastError, n.ProviderMessageID, t.ts(n.UpdatedAt), t.nullTS(n.SentAt), n.ID)
	if err == nil && rows == 0 {
		return t.notFound()
	}
	return err
}

func (t *txn) NotificationList(ctx context.Context, p persistence.NotificationListParams) ([]persistence.Notification, error) {
	if err := persistence.CheckLimit("notification list", p.Limit, persistence.MaxNotificationListLimit); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if p.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(p.Status))
	}
	if p.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, p.Kind)
	}
	q := `SELECT ` + notificationColumns + ` FROM notifications`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	ns, err := queryList(ctx, t, t.scanNotification, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, p.Limit)...)
	if err != nil {
		return nil, err
	}
	return ns, t.openNotifications(ctx, ns)
}
