package sqlstore

import (
	"context"
	"fmt"

	"github.com/spa-engine/spa/persistence"
)

// Notification template versions and the active one of each kind,
// language and channel (persistence/notification_templates.go).

const notificationTemplateColumns = `kind, lang, channel, version, subject, body, created_at, created_by`

func (t *txn) scanNotificationTemplate(r row) (persistence.NotificationTemplate, error) {
	var nt persistence.NotificationTemplate
	err := r.Scan(&nt.Kind, &nt.Language, &nt.Channel, &nt.Version, &nt.Subject, &nt.Body, t.at(&nt.CreatedAt), &nt.CreatedBy)
	return nt, err
}

func (t *txn) NotificationTemplateCreate(ctx context.Context, nt persistence.NotificationTemplate) error {
	if nt.Kind == "" || nt.Language == "" || nt.Channel == "" || nt.Version < 2 || nt.CreatedAt.IsZero() {
		return fmt.Errorf("notification template %s/%s/%s v%d: kind, language, channel, creation time and a version from 2 are required: %w",
			nt.Kind, nt.Language, nt.Channel, nt.Version, persistence.ErrInvalid)
	}
	_, err := t.exec(ctx, `INSERT INTO notification_templates (`+notificationTemplateColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		nt.Kind, nt.Language, nt.Channel, nt.Version, nt.Subject, nt.Body, t.ts(nt.CreatedAt), nt.CreatedBy)
	return err
}

func (t *txn) NotificationTemplateGet(ctx context.Context, kind, lang, channel string, version int) (persistence.NotificationTemplate, error) {
	nt, err := t.scanNotificationTemplate(t.queryRow(ctx, `SELECT `+notificationTemplateColumns+` FROM notification_templates
		WHERE kind = ? AND lang = ? AND channel = ? AND version = ?`, kind, lang, channel, version))
	return nt, t.mapErr(err)
}

func (t *txn) NotificationTemplateList(ctx context.Context) ([]persistence.NotificationTemplate, error) {
	return queryList(ctx, t, t.scanNotificationTemplate, `SELECT `+notificationTemplateColumns+` FROM notification_templates
		ORDER BY kind, lang, channel, version`)
}

func (t *txn) NotificationTemplateLatest(ctx context.Context, kind, lang, channel string) (int, error) {
	var v int
	err := t.queryRow(ctx, `SELECT COALESCE(MAX(version), 1) FROM notification_templates WHERE kind = ? AND lang = ? AND channel = ?`,
		kind, lang, channel).Scan(&v)
	return v, t.mapErr(err)
}

func (t *txn) NotificationTemplateActivate(ctx context.Context, a persistence.NotificationTemplateActive) error {
	if a.Kind == "" || a.Language == "" || a.Channel == "" || a.Version < 1 || a.ActivatedAt.IsZero() {
		return fmt.Errorf("notification template activation %s/%s/%s v%d: %w", a.Kind, a.Language, a.Channel, a.Version, persistence.ErrInvalid)
	}
	_, err := t.exec(ctx, `INSERT INTO notification_template_active (kind, lang, channel, version, activated_at, activated_by)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, lang, channel) DO UPDATE
		SET version = excluded.version, activated_at = excluded.activated_at, activated_by = excluded.activated_by`,
		a.Kind, a.Language, a.Channel, a.Version, t.ts(a.ActivatedAt), a.ActivatedBy)
	return err
}

func (t *txn) NotificationTemplateActives(ctx context.Context) ([]persistence.NotificationTemplateActive, error) {
	return queryList(ctx, t, func(r row) (persistence.NotificationTemplateActive, error) {
		var a persistence.NotificationTemplateActive
		err := r.Scan(&a.Kind, &a.Language, &a.Channel, &a.Version, t.at(&a.ActivatedAt), &a.ActivatedBy)
		return a, err
	}, `SELECT kind, lang, channel, version, activated_at, activated_by FROM notification_template_active ORDER BY kind, lang, channel`)
}
