// Package inbound is what the messaging webhooks hand on, whichever
// provider carried it: messages clients sent us (WhatsApp Cloud API,
// Twilio WhatsApp or SMS) and delivery statuses of messages we sent.
// The gateway's webhook routes verify, parse and pass them to a Receiver
// or a StatusReceiver; the notification service (the customer-service
// window, delivery statuses) and the WhatsApp bot (conversations) are the
// receivers, composed in cmd/spa.
package inbound

import (
	"context"
	"time"
)

// Providers.
const (
	ProviderWhatsApp = "whatsapp" // Meta's WhatsApp Cloud API
	ProviderTwilio   = "twilio"   // Twilio (WhatsApp or SMS)
)

// Message is one message a client sent us.
type Message struct {
	Provider string
	// ID is the provider's message id (wamid, MessageSid): providers
	// redeliver, receivers deduplicate on it.
	ID string
	// From is the sender's number in E.164, with "+". It is the only
	// identity a conversation has.
	From string
	Time time.Time
	// Channel is "whatsapp" or "sms".
	Channel string
	// Text is the text, a button's text or an interactive reply's title;
	// Payload is a button payload or an interactive reply id ("" for text).
	Text, Payload string
}

// Receiver takes inbound messages. nil means they are stored durably and
// the webhook may acknowledge them; an error makes the webhook answer 5xx
// so the provider delivers them again.
type Receiver interface {
	Receive(ctx context.Context, msgs []Message) error
}

// Status is one delivery status of a message we sent. Statuses arrive
// more than once and out of order ("read" may come without "delivered").
type Status struct {
	Provider string
	// MessageID is the provider's id of our message, as returned when it
	// was sent.
	MessageID string
	// Status is "sent", "delivered", "read" or "failed" (Twilio's
	// "undelivered" arrives as "failed").
	Status string
	Time   time.Time
	// ErrorCode is the provider's code for a failure ("" otherwise).
	ErrorCode string
}

// StatusReceiver takes delivery statuses; errors as for Receiver.
type StatusReceiver interface {
	ReceiveStatuses(ctx context.Context, statuses []Status) error
}
