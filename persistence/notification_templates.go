package persistence

import (
	"context"
	"time"
)

// Notification templates (docs/notifications.md, Templates): the texts
// embedded in the binary are version 1 of every kind, language and
// channel; the admin stores further versions here and activates one.
// A template's variables are checked by actors/service/notify before it is
// stored; the store only keeps the text.

// NotificationTemplate is one stored version of the text of a kind in a
// language on a channel.
type NotificationTemplate struct {
	Kind     string // e.g. "appointment_confirmed"
	Language string // "es-CO", "en"
	Channel  string // "whatsapp", "sms", "email"
	Version  int    // 2 and up: 1 is the embedded text
	// Subject is the email's subject line ("" on other channels).
	Subject   string
	Body      string
	CreatedAt time.Time
	CreatedBy string // the admin's subject
}

// NotificationTemplateActive says which version of a kind, language and
// channel is sent (1: the embedded text).
type NotificationTemplateActive struct {
	Kind, Language, Channel string
	Version                 int
	ActivatedAt             time.Time
	ActivatedBy             string
}

// NotificationTemplateStore keeps template versions and which is active.
type NotificationTemplateStore interface {
	// NotificationTemplateCreate stores t; ErrConflict when its version
	// exists, ErrInvalid when a key field is missing or Version < 2.
	NotificationTemplateCreate(ctx context.Context, t NotificationTemplate) error
	// NotificationTemplateGet returns one version or ErrNotFound.
	NotificationTemplateGet(ctx context.Context, kind, lang, channel string, version int) (NotificationTemplate, error)
	// NotificationTemplateList returns every stored version, by kind,
	// language, channel and version.
	NotificationTemplateList(ctx context.Context) ([]NotificationTemplate, error)
	// NotificationTemplateLatest is the highest stored version of a
	// kind, language and channel (1 when none is stored).
	NotificationTemplateLatest(ctx context.Context, kind, lang, channel string) (int, error)
	// NotificationTemplateActivate makes a.Version the one sent.
	NotificationTemplateActivate(ctx context.Context, a NotificationTemplateActive) error
	// NotificationTemplateActives returns every activation recorded (a
	// kind, language and channel without one sends version 1).
	NotificationTemplateActives(ctx context.Context) ([]NotificationTemplateActive, error)
}
