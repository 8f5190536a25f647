package sender

import (
	"context"
	"fmt"
)

// Tracker is a Sender that also tells the provider's id of the message it
// accepted (WhatsApp's wamid, Twilio's MessageSid): the id the provider's
// delivery statuses name, so the notification service can record it on
// the notification and apply the statuses that come back for it
// (docs/notifications.md, Delivery statuses).
//
// It extends Sender instead of changing Send's signature: the sign-in
// codes and the cluster's forwarding send through Send and have no use
// for the id, and every Sender (the dev log sink, the SMTP client, the
// test doubles) keeps working as it is; one that is not a Tracker sends
// with no id, and no status is awaited for its messages.
type Tracker interface {
	Sender
	// SendTracked is Send, returning the provider's id of the message
	// ("" when the provider gives none).
	SendTracked(ctx context.Context, m Message) (id string, err error)
}

// SendTracked sends m through s and returns the provider's message id
// when s is a Tracker, "" otherwise.
func SendTracked(ctx context.Context, s Sender, m Message) (string, error) {
	if t, ok := s.(Tracker); ok {
		return t.SendTracked(ctx, m)
	}
	return "", s.Send(ctx, m)
}

// SendTracked routes m by its channel and returns the id the channel's
// Sender gives ("" when it is not a Tracker).
func (r *Router) SendTracked(ctx context.Context, m Message) (string, error) {
	if m.Channel == "" {
		m.Channel = r.fallback
	}
	r.mu.RLock()
	s, ok := r.routes[m.Channel]
	r.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w: %w %q", ErrRejected, ErrNoRoute, m.Channel)
	}
	return SendTracked(ctx, s, m)
}

var _ Tracker = (*Router)(nil)
