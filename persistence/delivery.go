package persistence

import (
	"context"
	"time"
)

// Delivery statuses and the WhatsApp customer-service window
// (docs/notifications.md, Delivery statuses): the provider's statuses of
// a message are applied to its notification found by the provider's
// message id; the last message a phone sent us on WhatsApp opens the
// 24-hour window in which free-form text may be sent to it. The phone is
// kept only as its blind index (pii.BlindIndex, the key users.phone_key
// holds), never in the clear.

// DeliveryStore finds notifications by provider id and keeps the windows.
type DeliveryStore interface {
	// NotificationByProviderMessage returns the notification whose
	// ProviderMessageID is id, or ErrNotFound (a message that is not a
	// notification, such as a sign-in code; an empty id).
	NotificationByProviderMessage(ctx context.Context, id string) (Notification, error)
	// MessagingWindowTouch records that the phone whose blind index is
	// phoneKey wrote to us at at; an earlier time than the one stored
	// changes nothing (webhooks arrive out of order).
	MessagingWindowTouch(ctx context.Context, phoneKey string, at time.Time) error
	// MessagingWindowLast is the last time the phone wrote to us (zero
	// when never).
	MessagingWindowLast(ctx context.Context, phoneKey string) (time.Time, error)
	// EarlyStatusPut keeps s, a status whose provider message id no
	// notification carries yet (the provider answered the send and the
	// status webhook overtook the row's write), until the id is recorded.
	// The same id and status twice is one. Statuses received before
	// dropBefore are dropped: those of messages that are not
	// notifications (bot answers, login codes) never find theirs.
	EarlyStatusPut(ctx context.Context, s EarlyStatus, dropBefore time.Time) error
	// EarlyStatusTake returns the statuses kept for provider message id
	// and deletes them.
	EarlyStatusTake(ctx context.Context, id string) ([]EarlyStatus, error)
}

// EarlyStatus is a delivery status kept until its message's provider id
// is recorded (docs/notifications.md, Delivery statuses).
type EarlyStatus struct {
	ProviderMessageID, Provider, Status, ErrorCode string
	ReceivedAt                                     time.Time
}
