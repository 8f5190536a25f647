package notify

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spa-engine/spa/actors/providers/sender"
)

// The login code through the notification service (docs/notifications.md,
// The login code). It is the one kind not fed by an event: the session
// actor sends it while the client waits, so it goes at once, in the
// request, through LoginCodes (a sender.Sender the actor holds) rather
// than through the event stream, which would put a secret in a replicated
// stream and a queue's delay in front of a person at the sign-in screen.
// What it shares with the other kinds: the channel order with fallback
// (WhatsApp, then SMS), the 24-hour window and the approved template
// outside it, and the metrics. What it does not: a stored row (the body is
// the code; the session actor keeps the send's record and its limits), the
// client's preferences and quiet hours (an authentication message the
// client asked for goes at any hour), retries beyond the provider
// wrapper's (the client asks again).

// KindLoginCode is the sign-in code. Its WhatsApp template (the entry
// login_code in SPA_WHATSAPP_TEMPLATES, or SPA_WHATSAPP_OTP_TEMPLATE) must
// be of category authentication.
const KindLoginCode Kind = "login_code"

// KindStaffReply is a person's reply in a WhatsApp bot conversation
// (docs/bot.md, Hand-off). Its template (the entry staff_reply in
// SPA_WHATSAPP_TEMPLATES, category utility or marketing, the person's
// text as its one body parameter) carries a reply sent after the client's
// 24-hour window closed. The bot sends it, not this service.
const KindStaffReply Kind = "staff_reply"

// LoginCodes is the sender.Sender the session actors send login codes
// through: the service's channel rules, or next (the node's sender as
// before) until the service is set, e.g. on a node with notifications off.
type LoginCodes struct {
	svc  atomic.Pointer[Service]
	next sender.Sender
}

// NewLoginCodes returns a LoginCodes that sends through next until Use.
// The node builds it before the service: the sign-in path starts first.
func NewLoginCodes(next sender.Sender) *LoginCodes { return &LoginCodes{next: next} }

// Use sends the login codes through svc from now on.
func (l *LoginCodes) Use(svc *Service) { l.svc.Store(svc) }

// Send sends m, a login code when m.Purpose is "otp"; anything else goes
// to next untouched.
func (l *LoginCodes) Send(ctx context.Context, m sender.Message) error {
	svc := l.svc.Load()
	if svc == nil || m.Purpose != "otp" {
		return l.next.Send(ctx, m)
	}
	return svc.SendLoginCode(ctx, m)
}

// loginChannels is the order a code goes in: the channel the client asked
// for and SMS after it; with none asked, WhatsApp first where a real
// WhatsApp provider is configured (the window is kept), else SMS, the
// router's default, as before there was a choice.
func (s *Service) loginChannels(asked sender.Channel) []sender.Channel {
	switch {
	case asked == sender.ChannelSMS:
		return []sender.Channel{sender.ChannelSMS}
	case asked == sender.ChannelWhatsApp:
		return []sender.Channel{sender.ChannelWhatsApp, sender.ChannelSMS}
	case s.deps.PhoneIndex != nil:
		return []sender.Channel{sender.ChannelWhatsApp, sender.ChannelSMS}
	}
	return []sender.Channel{sender.ChannelSMS}
}

// SendLoginCode sends a login code (m.Body, to m.To) on the first channel
// of its order that takes it. WhatsApp inside the client's 24-hour window
// goes as text; outside, as the login_code template (category
// authentication, its TTL no longer than the code's life), or not at all
// when there is none (no provider call: SMS carries it). A channel that
// refuses the code or is unavailable passes it to the next at once.
func (s *Service) SendLoginCode(ctx context.Context, m sender.Message) error {
	var errs []error
	var from sender.Channel
	order := s.loginChannels(m.Channel)
	for i, ch := range order {
		msg := m
		msg.Channel = ch
		if ch == sender.ChannelWhatsApp {
			if err := s.loginWhatsApp(ctx, &msg); err != nil {
				if !errors.Is(err, sender.ErrRejected) {
					return err // the store: the code is not sent, the client asks again
				}
				s.deps.Metrics.loginFailed(ch, FailedRejected)
				errs, from = append(errs, err), ch
				continue
			}
		}
		if from != "" {
			s.deps.Metrics.fallback(KindLoginCode, string(from), string(ch))
		}
		err := s.sendShare(ctx, msg, len(order)-i)
		if err == nil {
			s.deps.Metrics.loginSent(ch)
			return nil
		}
		reason := FailedRejected
		if !errors.Is(err, sender.ErrRejected) {
			reason = FailedUnavailable
		}
		s.deps.Metrics.loginFailed(ch, reason)
		s.deps.Log.Warn("notify: login code not sent", "channel", ch, "err", redact(err, m.To))
		errs, from = append(errs, fmt.Errorf("%s: %w", ch, err)), ch
	}
	return errors.Join(errs...)
}

// loginWhatsApp readies the code for WhatsApp as any kind is readied
// (whatsAppRules): text inside the window, outside it the login_code
// template (category authentication, enforced when the templates are
// parsed) living no longer than the code, refused without one.
func (s *Service) loginWhatsApp(ctx context.Context, m *sender.Message) error {
	var deadline time.Time
	if life := s.cfg.LoginCodeTTL; life > 0 {
		deadline = s.deps.Now().Add(life)
	}
	return s.whatsAppRules(ctx, m, KindLoginCode, deadline)
}

// sendShare sends m with at most 1/left of the time ctx has left, so a
// provider that hangs leaves the next channel time to carry the code
// before the client's request gives up.
func (s *Service) sendShare(ctx context.Context, m sender.Message, left int) error {
	if d, ok := ctx.Deadline(); ok && left > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Until(d)/time.Duration(left))
		defer cancel()
	}
	return s.deps.Sender.Send(ctx, m)
}
