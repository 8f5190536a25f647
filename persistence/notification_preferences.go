package persistence

import (
	"context"
	"time"
)

// Notification preferences (docs/notifications.md, Preferences): what a
// client does not want to hear, per category and channel, and the order
// of the channels they prefer. No row means the defaults: every category
// on every channel, in each kind's own channel order. Anonymisation
// deletes the row (UserAnonymise).

// NotificationOptOut is one category the client does not want on one
// channel ("marketing" on "whatsapp").
type NotificationOptOut struct {
	Category NotificationCategory
	Channel  string // "whatsapp", "sms", "email"
}

// NotificationPreferences are one client's preferences.
type NotificationPreferences struct {
	UserID string
	// OptOuts are the category and channel pairs turned off, sorted by
	// category then channel, each once.
	OptOuts []NotificationOptOut
	// ChannelOrder is the client's order of channels, most wanted first;
	// empty: each kind's own order. A channel it leaves out comes after
	// the ones it lists, in the kind's order.
	ChannelOrder []string
	// Version counts the stored changes: 0 for none stored.
	Version   int64
	UpdatedAt time.Time
}

// NotificationPreferenceStore keeps clients' notification preferences.
type NotificationPreferenceStore interface {
	// NotificationPreferencesGet returns the stored preferences of user
	// or ErrNotFound when they never set any.
	NotificationPreferencesGet(ctx context.Context, userID string) (NotificationPreferences, error)
	// NotificationPreferencesPut stores p if the stored version is still
	// p.Version (0: none stored) and returns it with the next version;
	// ErrConflict (VersionConflict) when it changed meanwhile, ErrInvalid
	// when the user, the time or a pair is missing.
	NotificationPreferencesPut(ctx context.Context, p NotificationPreferences) (NotificationPreferences, error)
}

// NormalizeNotificationPreferences checks p for NotificationPreferencesPut
// and makes its time canonical.
func NormalizeNotificationPreferences(p NotificationPreferences) (NotificationPreferences, error) {
	if err := checkID("user", p.UserID); err != nil {
		return p, err
	}
	if p.Version < 0 {
		return p, invalidf("notification preferences of %s: negative version", p.UserID)
	}
	for _, o := range p.OptOuts {
		if o.Category == "" || o.Channel == "" {
			return p, invalidf("notification preferences of %s: an opt-out needs a category and a channel", p.UserID)
		}
	}
	for _, ch := range p.ChannelOrder {
		if ch == "" {
			return p, invalidf("notification preferences of %s: an empty channel in the order", p.UserID)
		}
	}
	p.UpdatedAt = CanonicalTime(p.UpdatedAt)
	if p.UpdatedAt.IsZero() {
		return p, invalidf("notification preferences of %s: no time", p.UserID)
	}
	return p, nil
}
