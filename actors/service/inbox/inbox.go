// Package inbox takes the messaging providers' webhooks (docs/notifications.md,
// Webhooks): messages clients send us on WhatsApp (Meta's Cloud API or
// Twilio) or SMS, and delivery statuses of the messages we sent. It
// applies the house rule for outside input, with the machinery the Wompi
// webhook uses (payments.Event): the body is capped and its signature
// checked in constant time, with a replay window where the format carries
// a timestamp (Meta's, not Twilio's), before anything is kept; a forged
// body is ErrForged (401) and nothing of it is stored. An authentic body is
// stored raw (sealed) in the provider event log under its hash before it
// is handed on; a body already applied is a replay and is handed on no
// more. What it carries goes to an inbound.Receiver (messages) and an
// inbound.StatusReceiver (statuses), composed in cmd/spa; a receiver's
// error leaves the body stored unapplied and answers 5xx, so the provider
// delivers it again, and the receivers deduplicate on the provider's ids.
package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/actors/providers/twilio"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// The refusals. Nothing of a refused body is stored.
var (
	// ErrForged: the signature is missing or wrong, the provider is not
	// configured, or (WhatsApp) a timestamp is outside the replay window.
	ErrForged = fault.Unauthenticated("the webhook's signature, header or timestamp is not valid")
	// ErrTooLarge: the body is over the provider's cap.
	ErrTooLarge = fault.New(fault.CodePayloadTooLarge, "")
	// ErrHandshake: Meta's subscription check with a wrong token or mode.
	ErrHandshake = fault.New(fault.CodeForbidden, "the verify token does not match")
)

// Outcome is what a webhook did.
type Outcome string

// Outcomes.
const (
	OutcomeApplied Outcome = "applied" // handed to the receivers
	OutcomeReplay  Outcome = "replay"  // applied before: nothing handed on
	OutcomeIgnored Outcome = "ignored" // authentic, nothing to hand on (another object, a stage before sent)
	OutcomeForged  Outcome = "forged"
	OutcomeFailed  Outcome = "failed" // stored, a receiver or the store failed: delivered again
)

// WhatsAppConfig is the Cloud API webhook's configuration
// (SPA_WHATSAPP_APP_SECRET, SPA_WHATSAPP_VERIFY_TOKEN).
type WhatsAppConfig struct {
	AppSecret, VerifyToken string
	// Window is the replay window; whatsapp.DefaultWebhookWindow when 0.
	Window time.Duration
}

// TwilioConfig is Twilio's: the auth token that signs the requests and the
// exact public URLs Twilio calls (the signature covers them).
type TwilioConfig struct {
	AuthToken             string
	StatusURL, InboundURL string
}

// Deps are what the service works with.
type Deps struct {
	Store persistence.Store
	// Sealer seals the raw bodies at rest (they carry phone numbers and
	// what clients wrote); nil stores them as they are.
	Sealer   keyed.Sealer
	WhatsApp WhatsAppConfig
	Twilio   TwilioConfig
	// Messages and Statuses receive what the webhooks carry; nil drops
	// that part (still stored and acknowledged).
	Messages inbound.Receiver
	// MessagesInTx also receives the messages, in the transaction that
	// marks their body applied (the 24-hour window: notify.Service), so a
	// webhook costs two transactions, not one more per receiver.
	MessagesInTx TxReceiver
	Statuses     inbound.StatusReceiver
	Metrics      *Metrics // nil: none
	Now          func() time.Time
	Log          *slog.Logger
}

// Service verifies, stores and hands on the messaging webhooks.
type Service struct{ d Deps }

// New returns the service; Store is required.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{d: d}
}

// Handshake answers Meta's subscription check (GET with hub.mode,
// hub.verify_token, hub.challenge): the challenge as received, or
// ErrHandshake (403).
func (s *Service) Handshake(query url.Values) (string, error) {
	challenge, ok := whatsapp.Handshake(query, s.d.WhatsApp.VerifyToken)
	if !ok {
		return "", ErrHandshake
	}
	return challenge, nil
}

// WhatsApp handles a Cloud API webhook POST: body as received, signature
// the X-Hub-Signature-256 header.
func (s *Service) WhatsApp(ctx context.Context, body []byte, signature string) (Outcome, error) {
	now := s.d.Now()
	w, err := whatsapp.VerifyWebhook(body, signature, s.d.WhatsApp.AppSecret, now, s.d.WhatsApp.Window)
	ignored := errors.Is(err, whatsapp.ErrNotWhatsApp)
	if err != nil && !ignored {
		return s.refuse(inbound.ProviderWhatsApp, "webhook", err, errors.Is(err, whatsapp.ErrTooLarge))
	}
	var msgs []inbound.Message
	var sts []inbound.Status
	for _, m := range w.Messages {
		msgs = append(msgs, inbound.Message{Provider: inbound.ProviderWhatsApp, ID: m.ID, From: "+" + m.From, Time: m.Time,
			Channel: "whatsapp", Text: m.Text, Payload: m.Payload})
	}
	for _, st := range w.Statuses {
		code := ""
		if len(st.ErrorCodes) > 0 {
			code = strconv.Itoa(st.ErrorCodes[0])
		}
		sts = append(sts, inbound.Status{Provider: inbound.ProviderWhatsApp, MessageID: st.ID, Status: st.Status,
			Time: st.Time, ErrorCode: code})
	}
	return s.apply(ctx, inbound.ProviderWhatsApp, "webhook", body, now, msgs, sts)
}

// TwilioStatus handles a status callback (form body, X-Twilio-Signature).
func (s *Service) TwilioStatus(ctx context.Context, body []byte, signature string) (Outcome, error) {
	now := s.d.Now()
	form, err := twilio.VerifyWebhook(body, signature, s.d.Twilio.AuthToken, s.d.Twilio.StatusURL)
	if err != nil {
		return s.refuse(inbound.ProviderTwilio, "status", err, errors.Is(err, twilio.ErrTooLarge))
	}
	var sts []inbound.Status
	sc, err := twilio.ParseStatus(form)
	switch {
	case err != nil:
		return "", fault.Invalid(err.Error())
	case sc.Status != "":
		sts = []inbound.Status{{Provider: inbound.ProviderTwilio, MessageID: sc.MessageSID, Status: sc.Status, Time: now,
			ErrorCode: sc.ErrorCode}}
	}
	return s.apply(ctx, inbound.ProviderTwilio, "status", body, now, nil, sts)
}

// TwilioInbound handles a message a client sent through Twilio.
func (s *Service) TwilioInbound(ctx context.Context, body []byte, signature string) (Outcome, error) {
	now := s.d.Now()
	form, err := twilio.VerifyWebhook(body, signature, s.d.Twilio.AuthToken, s.d.Twilio.InboundURL)
	if err != nil {
		return s.refuse(inbound.ProviderTwilio, "inbound", err, errors.Is(err, twilio.ErrTooLarge))
	}
	m, err := twilio.ParseInbound(form)
	if err != nil {
		return "", fault.Invalid(err.Error())
	}
	text := m.Body
	if m.ButtonText != "" {
		text = m.ButtonText
	}
	msgs := []inbound.Message{{Provider: inbound.ProviderTwilio, ID: m.MessageSID, From: m.From, Time: now,
		Channel: m.Channel, Text: text, Payload: m.ButtonPayload}}
	return s.apply(ctx, inbound.ProviderTwilio, "inbound", body, now, msgs, nil)
}

// refuse counts and logs a refused body (without its content) and
// returns the error to answer with.
func (s *Service) refuse(provider, route string, err error, tooLarge bool) (Outcome, error) {
	s.d.Metrics.webhook(provider, route, OutcomeForged)
	s.d.Log.Warn("messaging webhook refused", "provider", provider, "route", route, "reason", err.Error())
	if tooLarge {
		return OutcomeForged, ErrTooLarge
	}
	return OutcomeForged, ErrForged
}

// apply stores the authentic body under its hash, unless stored and
// applied before (a replay), hands on what it carries and marks it applied.
func (s *Service) apply(ctx context.Context, provider, route string, body []byte, now time.Time,
	msgs []inbound.Message, sts []inbound.Status) (Outcome, error) {
	out, err := s.applyBody(ctx, provider, body, now, msgs, sts)
	s.d.Metrics.webhook(provider, route, out)
	return out, err
}

// EventKey is the key a body is stored under in the provider event log:
// the provider and the body's SHA-256.
func EventKey(provider string, body []byte) string {
	sum := sha256.Sum256(body)
	return provider + "/" + hex.EncodeToString(sum[:])
}

func (s *Service) applyBody(ctx context.Context, provider string, body []byte, now time.Time,
	msgs []inbound.Message, sts []inbound.Status) (Outcome, error) {
	rec := persistence.PaymentEvent{Key: EventKey(provider, body), Provider: provider, ReceivedAt: now}
	var err error
	if rec.Body, err = keyed.Seal(s.d.Sealer, "webhook_event", rec.Key, body); err != nil {
		return OutcomeFailed, err
	}
	var stored persistence.PaymentEvent
	var created bool
	if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		stored, created, err = tx.PaymentEventRecord(ctx, rec)
		return err
	}); err != nil {
		return OutcomeFailed, err
	}
	if !created && !stored.AppliedAt.IsZero() {
		return OutcomeReplay, nil
	}
	out := OutcomeIgnored
	if len(msgs) > 0 && s.d.Messages != nil {
		if err := s.d.Messages.Receive(ctx, msgs); err != nil {
			s.d.Log.Warn("inbound messages not taken; the provider will deliver them again", "provider", provider, "err", err)
			return OutcomeFailed, err
		}
		out = OutcomeApplied
	}
	if len(msgs) > 0 && s.d.MessagesInTx != nil {
		out = OutcomeApplied
	}
	inTx, _ := s.d.Statuses.(TxStatusReceiver)
	if len(sts) > 0 && s.d.Statuses != nil {
		if inTx == nil {
			if err := s.d.Statuses.ReceiveStatuses(ctx, sts); err != nil {
				s.d.Log.Warn("delivery statuses not taken; the provider will deliver them again", "provider", provider, "err", err)
				return OutcomeFailed, err
			}
		}
		out = OutcomeApplied
	}
	var after func(context.Context)
	if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		after = nil
		if s.d.MessagesInTx != nil && len(msgs) > 0 {
			if err := s.d.MessagesInTx.ApplyMessages(ctx, tx, msgs); err != nil {
				s.d.Log.Warn("inbound messages not taken; the provider will deliver them again", "provider", provider, "err", err)
				return err
			}
		}
		if inTx != nil && len(sts) > 0 {
			if after, err = inTx.ApplyStatuses(ctx, tx, sts); err != nil {
				s.d.Log.Warn("delivery statuses not taken; the provider will deliver them again", "provider", provider, "err", err)
				return err
			}
		}
		_, err = tx.PaymentEventMarkApplied(ctx, rec.Key, string(out), s.d.Now())
		return err
	}); err != nil {
		return OutcomeFailed, err
	}
	if after != nil {
		after(ctx)
	}
	return out, nil
}

// TxReceiver takes inbound messages in the transaction that marks their
// body applied; like ApplyStatuses, ApplyMessages may run more than once
// (retried) and must do nothing outside tx.
type TxReceiver interface {
	ApplyMessages(ctx context.Context, tx persistence.Tx, msgs []inbound.Message) error
}

// TxStatusReceiver is a StatusReceiver that applies statuses in the
// transaction that marks their body applied, so a body is never applied
// without its statuses nor its statuses twice for a body marked once
// (notify.Service). after runs once that transaction has committed
// (metrics, a fallback to fire); the transaction may run more than once
// (retried), so ApplyStatuses must do nothing else outside it.
type TxStatusReceiver interface {
	inbound.StatusReceiver
	ApplyStatuses(ctx context.Context, tx persistence.Tx, statuses []inbound.Status) (after func(context.Context), err error)
}
