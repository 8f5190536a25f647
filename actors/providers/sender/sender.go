// Package sender defines how the engine delivers a text message (an OTP code,
// a reminder) to a phone, independent of the provider that carries it.
package sender

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
)

// Channel is how a message reaches a phone.
type Channel string

const (
	ChannelSMS      Channel = "sms"
	ChannelWhatsApp Channel = "whatsapp"
	// ChannelEmail carries a message to an email address (To), with a
	// Subject and an HTML part beside the plain Body.
	ChannelEmail Channel = "email"
)

// Message is one text to one phone number (E.164), or on ChannelEmail to
// one email address.
type Message struct {
	To      string
	Body    string // plain text
	Channel Channel
	Purpose string // e.g. "otp"
	// Subject and HTML are the email's subject line and HTML part
	// (ChannelEmail only; HTML already escaped by its author).
	Subject string
	HTML    string
	// Template, on ChannelWhatsApp, sends the message as an approved
	// template instead of free-form text (outside the 24-hour window);
	// nil: free-form.
	Template *Template
}

// Template is an approved WhatsApp template to send a message as: Meta's
// template name (or Twilio's ContentSid), its language and category
// (utility, marketing, authentication), its body parameters in order,
// and how long the provider may keep trying (0: its default).
type Template struct {
	Name, Language, Category string
	Params                   []string
	TTL                      time.Duration
}

// Sender delivers messages. Errors wrap ErrRejected (the provider refused:
// bad number, blocked; do not retry) or ErrUnavailable (timeouts, 5xx, open
// breaker: try later).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

var (
	// ErrRejected means the provider refused this message for good (invalid
	// or blocked number, bad content). Retrying the same message is useless.
	ErrRejected = errors.New("sender: message rejected")
	// ErrUnavailable means the provider could not be reached or is failing
	// (timeout, 429, 5xx, open breaker). The caller may try again later.
	ErrUnavailable = errors.New("sender: provider unavailable")
)

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// LogSink is the dev-mode Sender: it writes the message to a logger instead of
// delivering it. It is the one place a code may appear in a log, so it must
// never be wired outside dev mode; the phone number is still masked.
type LogSink struct {
	Logger *slog.Logger
}

// Send logs m at Info level.
func (s LogSink) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l := s.Logger
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(ctx, slog.LevelInfo, "dev message sink",
		slog.String("channel", string(m.Channel)),
		slog.String("purpose", m.Purpose),
		slog.String("to", MaskRecipient(m.Channel, m.To)),
		slog.String("subject", m.Subject),
		slog.String("body", m.Body),
	)
	return nil
}

// MaskRecipient is to as it may be logged: an email address on
// ChannelEmail masked as pii.MaskEmail does ("a***@e***.com"), a phone
// number otherwise (MaskPhone).
func MaskRecipient(c Channel, to string) string {
	if c == ChannelEmail {
		return pii.MaskEmail(to)
	}
	return MaskPhone(to)
}

// MaskPhone keeps a leading "+" and the last 4 digits: "+573001234567" ->
// "+********4567". Numbers with 4 characters or fewer are fully masked.
func MaskPhone(p string) string {
	r := []rune(p)
	start := 0
	if len(r) > 0 && r[0] == '+' {
		start = 1
	}
	keep := 4
	if len(r)-start <= keep {
		keep = 0
	}
	out := make([]rune, len(r))
	for i, c := range r {
		if i >= start && i < len(r)-keep {
			out[i] = '*'
		} else {
			out[i] = c
		}
	}
	return string(out)
}

// ErrNoRoute is wrapped (together with ErrRejected) when the Router has no
// Sender for a message's channel.
var ErrNoRoute = errors.New("sender: no sender for channel")

// Router chooses a Sender per channel. An empty Channel uses Default.
// It is safe for concurrent use.
type Router struct {
	mu       sync.RWMutex
	routes   map[Channel]Sender
	fallback Channel
}

// NewRouter returns a Router with the given routes; messages with an empty
// Channel go to def.
func NewRouter(def Channel, routes map[Channel]Sender) *Router {
	r := &Router{routes: make(map[Channel]Sender, len(routes)), fallback: def}
	for c, s := range routes {
		r.routes[c] = s
	}
	return r
}

// Handle sets (or replaces) the Sender for c.
func (r *Router) Handle(c Channel, s Sender) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes[c] = s
}

// Send routes m by its channel.
func (r *Router) Send(ctx context.Context, m Message) error {
	if m.Channel == "" {
		m.Channel = r.fallback
	}
	r.mu.RLock()
	s, ok := r.routes[m.Channel]
	r.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %w %q", ErrRejected, ErrNoRoute, m.Channel)
	}
	return s.Send(ctx, m)
}

var (
	_ Sender = LogSink{}
	_ Sender = (*Router)(nil)
	_ Sender = SenderFunc(nil)
)
