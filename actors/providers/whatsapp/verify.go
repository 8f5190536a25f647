package whatsapp

import (
	"errors"
	"fmt"
	"time"
)

// The checks on an inbound webhook before anything of it is kept: the
// size, the signature over the raw bytes, and the age of every message and
// status it carries.
const (
	// MaxWebhookBytes caps a webhook body. Meta batches up to 1,000
	// updates in one; real bodies are a few KiB.
	MaxWebhookBytes = 256 << 10
	// DefaultWebhookWindow is how old a message or status may be: Meta
	// redelivers an unacknowledged webhook with decreasing frequency for
	// up to 7 days, plus an hour for clocks and queues. Older ones are
	// refused, so a captured body cannot be replayed forever.
	DefaultWebhookWindow = 7*24*time.Hour + time.Hour
	// MaxFutureSkew is how far ahead of our clock a timestamp may be.
	MaxFutureSkew = 5 * time.Minute
)

// Why a webhook is refused. All wrap ErrInvalidWebhook: answer 401 (413
// for ErrTooLarge) and keep nothing.
var (
	ErrInvalidWebhook = errors.New("whatsapp: webhook refused")
	ErrNoAppSecret    = fmt.Errorf("%w: no app secret configured", ErrInvalidWebhook)
	ErrNoSignature    = fmt.Errorf("%w: no %s header", ErrInvalidWebhook, SignatureHeader)
	ErrBadSignature   = fmt.Errorf("%w: signature does not match", ErrInvalidWebhook)
	ErrTooLarge       = fmt.Errorf("%w: body over %d bytes", ErrInvalidWebhook, MaxWebhookBytes)
	ErrStale          = fmt.Errorf("%w: timestamp outside the replay window", ErrInvalidWebhook)
	ErrMalformed      = fmt.Errorf("%w: malformed", ErrInvalidWebhook)
)

// VerifyWebhook checks a webhook POST and parses it: the body's size, the
// X-Hub-Signature-256 header against the raw bytes (constant time), then
// every timestamp within window (DefaultWebhookWindow when <= 0) before
// now and MaxFutureSkew after it. A body of another object than
// whatsapp_business_account is ErrNotWhatsApp (authentic, nothing to do).
func VerifyWebhook(body []byte, header, appSecret string, now time.Time, window time.Duration) (Webhook, error) {
	switch {
	case len(body) > MaxWebhookBytes:
		return Webhook{}, ErrTooLarge
	case appSecret == "":
		return Webhook{}, ErrNoAppSecret
	case header == "":
		return Webhook{}, ErrNoSignature
	case !ValidSignature(appSecret, body, header):
		return Webhook{}, ErrBadSignature
	}
	w, err := ParseWebhook(body)
	if errors.Is(err, ErrNotWhatsApp) {
		return w, err
	}
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if window <= 0 {
		window = DefaultWebhookWindow
	}
	fresh := func(t time.Time) bool { return !t.Before(now.Add(-window)) && !t.After(now.Add(MaxFutureSkew)) }
	for _, m := range w.Messages {
		if !fresh(m.Time) {
			return Webhook{}, ErrStale
		}
	}
	for _, s := range w.Statuses {
		if !fresh(s.Time) {
			return Webhook{}, ErrStale
		}
	}
	return w, nil
}
