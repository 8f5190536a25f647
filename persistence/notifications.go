package persistence

import (
	"context"
	"time"
)

// Notifications (docs/notifications.md): one row per message to a client
// on one channel, keyed by an id derived from its cause, so an event
// handled twice finds its row instead of sending again. The rendered body
// is sealed under the client's data key (personal.go): anonymisation
// shreds it.

// NotificationStatus is where a notification is in its delivery.
type NotificationStatus string

// Notification statuses.
const (
	// NotificationQueued: stored, not yet accepted by a provider (also
	// while transient failures are retried).
	NotificationQueued NotificationStatus = "queued"
	// NotificationSent: a provider accepted it.
	NotificationSent NotificationStatus = "sent"
	// NotificationDelivered and NotificationRead: the provider said so
	// (delivery-status webhooks, not yet mounted).
	NotificationDelivered NotificationStatus = "delivered"
	NotificationRead      NotificationStatus = "read"
	// NotificationFailed: refused for good on this channel (rejected by
	// the provider, no phone number); the next channel may be tried.
	NotificationFailed NotificationStatus = "failed"
	// NotificationDead: transient failures outlasted every retry; a dead
	// letter, kept with its last error.
	NotificationDead NotificationStatus = "dead"
	// NotificationSkipped: the client's preferences turned the message's
	// category off on every channel that reaches them; never sent, the
	// reason in LastError.
	NotificationSkipped NotificationStatus = "skipped"
)

// Valid reports whether s is a known status.
func (s NotificationStatus) Valid() bool {
	switch s {
	case NotificationQueued, NotificationSent, NotificationDelivered, NotificationRead, NotificationFailed, NotificationDead,
		NotificationSkipped:
		return true
	}
	return false
}

// Final reports whether nothing more will be done with a notification in
// status s on its channel (queued is the only status that is worked on).
func (s NotificationStatus) Final() bool { return s != NotificationQueued }

// Accepted reports whether a provider took the message (sent or later).
func (s NotificationStatus) Accepted() bool {
	return s == NotificationSent || s == NotificationDelivered || s == NotificationRead
}

// NotificationCategory is what a notification is about, for the client's
// preferences and for quiet hours.
type NotificationCategory string

// Notification categories.
const (
	CategoryBooking   NotificationCategory = "booking"
	CategoryPayments  NotificationCategory = "payments"
	CategoryMarketing NotificationCategory = "marketing"
)

// Notification is one message to one client on one channel.
type Notification struct {
	// ID is derived from the cause and the channel, e.g.
	// "appointment:<id>:confirmed:v3:whatsapp": the unique key that makes
	// a redelivered event find the row it already wrote.
	ID       string
	UserID   string // the client
	Kind     string // e.g. "appointment_confirmed"
	Category NotificationCategory
	Channel  string // "whatsapp", "sms"
	Status   NotificationStatus
	Attempts int // provider calls made
	// LastError is the last failure, without personal data.
	LastError string
	// ProviderMessageID is the provider's id of the message once known.
	ProviderMessageID string
	// Body is the rendered text, in the clear here; sealed at rest.
	Body      string
	CreatedAt time.Time
	UpdatedAt time.Time
	SentAt    time.Time // zero until a provider accepted it
}

// NotificationListParams selects notifications, newest first.
type NotificationListParams struct {
	Status NotificationStatus // "": any
	Kind   string             // "": any
	Limit  int                // 1..MaxNotificationListLimit
}

// MaxNotificationListLimit caps one NotificationList.
const MaxNotificationListLimit = 500

// NotificationStore keeps notifications.
type NotificationStore interface {
	// NotificationCreate stores n (its Status as given, Attempts 0) unless
	// a notification with its ID exists, and returns the stored one and
	// whether this call created it. ErrInvalid when the id, user, kind,
	// category, channel, status or creation time is missing or unknown.
	NotificationCreate(ctx context.Context, n Notification) (Notification, bool, error)
	// NotificationGet returns the notification or ErrNotFound.
	NotificationGet(ctx context.Context, id string) (Notification, error)
	// NotificationUpdate writes n's Status, Attempts, LastError,
	// ProviderMessageID, UpdatedAt and SentAt (the body, the user and the
	// cause never change); ErrNotFound when absent.
	NotificationUpdate(ctx context.Context, n Notification) error
	// NotificationList returns notifications newest first (by creation
	// time, then id).
	NotificationList(ctx context.Context, p NotificationListParams) ([]Notification, error)
}

// CheckNotification refuses what NotificationCreate may not store.
func CheckNotification(n Notification) error {
	switch {
	case n.ID == "" || n.UserID == "" || n.Kind == "" || n.Channel == "":
		return invalidf("notification %q: id, user, kind and channel are required", n.ID)
	case n.Category != CategoryBooking && n.Category != CategoryPayments && n.Category != CategoryMarketing:
		return invalidf("notification %s: unknown category %q", n.ID, n.Category)
	case !n.Status.Valid():
		return invalidf("notification %s: unknown status %q", n.ID, n.Status)
	case n.CreatedAt.IsZero():
		return invalidf("notification %s: no creation time", n.ID)
	}
	return nil
}
