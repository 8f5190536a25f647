package notify

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/whatsapp/cswindow"
	"github.com/spa-engine/spa/persistence"
)

// WhatsApp's customer-service window (docs/notifications.md, The 24-hour
// window): free-form text may go to a number only within 24 hours of the
// last message it sent us; outside, only an approved template. Each
// inbound WhatsApp message opens or refreshes the window (Receive); what
// we send never extends it. The number is kept as its blind index only.

// CustomerServiceWindow is how long after a client's last message
// free-form text may go to them on WhatsApp (cswindow's, the bot's too).
const CustomerServiceWindow = cswindow.Length

// PhoneIndex is the keyed hash the window is kept under
// (*pii.BlindIndex, the key users.phone_key holds).
type PhoneIndex interface {
	Sum(f pii.Field, v string) []byte
}

// Template categories (Meta's; Twilio's content templates use the same).
const (
	CategoryUtility        = "utility"
	CategoryMarketing      = "marketing"
	CategoryAuthentication = "authentication"
)

// WhatsAppTemplate is the approved template a kind is sent as outside the
// window: its name (Meta's template name, or Twilio's ContentSid),
// language, category and validity. The rendered text is its one body
// parameter ({{1}}).
type WhatsAppTemplate struct {
	Name, Language, Category string
	// TTL is how long the provider may keep trying to deliver it; capped
	// at the time left before the appointment (or the offer's expiry).
	// 0: the provider's default, still capped.
	TTL time.Duration
}

func (s *Service) phoneKey(phone string) string {
	return hex.EncodeToString(s.deps.PhoneIndex.Sum(pii.FieldPhone, phone))
}

// Receive is inbound.Receiver: each WhatsApp message opens or refreshes
// its sender's window (SMS messages open none).
func (s *Service) Receive(ctx context.Context, msgs []inbound.Message) error {
	if s.deps.PhoneIndex == nil {
		return nil
	}
	return s.deps.Store.InTx(ctx, func(tx persistence.Tx) error { return s.ApplyMessages(ctx, tx, msgs) })
}

// ApplyMessages is Receive inside tx (inbox.TxReceiver): the webhook opens
// the windows in the transaction that marks its body applied.
func (s *Service) ApplyMessages(ctx context.Context, tx persistence.Tx, msgs []inbound.Message) error {
	if s.deps.PhoneIndex == nil {
		return nil
	}
	for _, m := range msgs {
		if m.Channel != string(sender.ChannelWhatsApp) || m.From == "" {
			continue
		}
		at := m.Time
		if at.IsZero() {
			at = s.deps.Now()
		}
		if err := tx.MessagingWindowTouch(ctx, s.phoneKey(m.From), at); err != nil {
			return err
		}
	}
	return nil
}

var _ inbound.Receiver = (*Service)(nil)

// whatsAppRules readies m for WhatsApp: as it is inside the client's
// window, as its kind's approved template outside (its TTL no longer than
// the time left before deadline), or refused (sender.ErrRejected, so the
// next channel carries it) when the kind has no template or deadline has
// passed. Without a PhoneIndex no window is kept and m goes as it is.
func (s *Service) whatsAppRules(ctx context.Context, m *sender.Message, kind Kind, deadline time.Time) error {
	if m.Channel != sender.ChannelWhatsApp || s.deps.PhoneIndex == nil {
		return nil
	}
	var last time.Time
	if err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		last, err = tx.MessagingWindowLast(ctx, s.phoneKey(m.To))
		return err
	}); err != nil {
		return err
	}
	now := s.deps.Now()
	if cswindow.Open(last, now) {
		return nil
	}
	t, ok := s.cfg.WhatsAppTemplates[kind]
	if !ok {
		return fmt.Errorf("%w: outside the client's 24-hour WhatsApp window and %s has no approved template", sender.ErrRejected, kind)
	}
	ttl := t.TTL
	if !deadline.IsZero() {
		left := deadline.Sub(now)
		if left <= 0 {
			return fmt.Errorf("%w: outside the 24-hour WhatsApp window and no time left for a template", sender.ErrRejected)
		}
		if ttl <= 0 || ttl > left {
			ttl = left
		}
	}
	m.Template = &sender.Template{Name: t.Name, Language: t.Language, Category: t.Category,
		Params: []string{m.Body}, TTL: ttl}
	return nil
}

// deadline is when a message of in stops being worth delivering: the
// offer's expiry, the appointment's start; zero for none (payments).
func (in intent) deadline() time.Time {
	if !in.expires.IsZero() {
		return in.expires
	}
	return in.start
}

// ParseWhatsAppTemplates reads SPA_WHATSAPP_TEMPLATES: entries separated
// by ";", each kind=name:language:category[:ttl], e.g.
// "appointment_reminder_24h=cita_recordatorio:es:utility:12h". "" is none
// (outside the window WhatsApp is skipped for the next channel).
func ParseWhatsAppTemplates(v string) (map[Kind]WhatsAppTemplate, error) {
	out := map[Kind]WhatsAppTemplate{}
	for entry := range strings.SplitSeq(v, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		k, spec, ok := strings.Cut(entry, "=")
		kind := Kind(strings.TrimSpace(k))
		parts := strings.Split(spec, ":")
		if !ok || !(knownKind(kind) || kind == KindLoginCode || kind == KindStaffReply) || len(parts) < 3 || len(parts) > 4 {
			return nil, fmt.Errorf("entry %q: want kind=name:language:category[:ttl] with a known kind", entry)
		}
		t := WhatsAppTemplate{Name: strings.TrimSpace(parts[0]), Language: strings.TrimSpace(parts[1]),
			Category: strings.ToLower(strings.TrimSpace(parts[2]))}
		switch {
		case t.Name == "" || t.Language == "":
			return nil, fmt.Errorf("entry %q: a template needs a name and a language", entry)
		case t.Category != CategoryUtility && t.Category != CategoryMarketing && t.Category != CategoryAuthentication:
			return nil, fmt.Errorf("entry %q: category must be utility, marketing or authentication", entry)
		case (kind == KindLoginCode) != (t.Category == CategoryAuthentication):
			// Meta files a code under authentication and nothing else there.
			return nil, fmt.Errorf("entry %q: the login_code template, and only it, is of category authentication", entry)
		}
		if len(parts) == 4 {
			d, err := time.ParseDuration(strings.TrimSpace(parts[3]))
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("entry %q: ttl %q: want a positive duration such as 12h", entry, parts[3])
			}
			t.TTL = d
		}
		out[kind] = t
	}
	return out, nil
}

func knownKind(k Kind) bool {
	for _, x := range Kinds() {
		if x == k {
			return true
		}
	}
	return false
}
