// Package notify turns domain events into messages to clients
// (docs/notifications.md): an appointment confirmed, cancelled or moved,
// a waitlist offer. Each message is stored first under an id derived from
// its cause and channel, so an event handled twice never sends twice; it
// is then sent through the channels of its kind in order (WhatsApp, then
// SMS when WhatsApp refuses it), transient failures are retried with
// backoff, and a message that outlasts its retries is kept as a dead
// letter. The durable consumer that feeds Handle lives in cmd/spa.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// PhoneOpener opens a user's stored phone number (*pii.Keyring: the
// sealing the login path uses for users.phone_cipher).
type PhoneOpener interface {
	Decrypt(ciphertext, context []byte) ([]byte, error)
}

// QuietHours is where quiet hours will plug in (not in this slice): how
// long to hold n before sending it now; 0 sends at once. A held message
// is redelivered after the delay and counts no attempt.
type QuietHours interface {
	// Delay is how long n waits at now for a client in zone (nil: the
	// policy's own clock, the studio's).
	Delay(n persistence.Notification, now time.Time, zone *time.Location) time.Duration
}

// Deps are what the service works with.
type Deps struct {
	Store  persistence.Store
	Sender sender.Sender // a sender.Router: one Sender per channel
	// Phones opens the client's phone number and the email of their
	// profile (*pii.Keyring).
	Phones PhoneOpener
	// Checks keeps the delivery checks that fall back when no status
	// comes (delivery.go); nil: a message that never reports stays on
	// its channel.
	Checks DeliveryChecks
	// PhoneIndex keeps WhatsApp's 24-hour window per number (window.go);
	// nil: no window kept, WhatsApp messages go as free-form text.
	PhoneIndex PhoneIndex
	// Metrics counts sends, deliveries, failures and fallbacks; nil:
	// none.
	Metrics *Metrics
	// Catalog is the templates in force: one over Store with the embedded
	// templates when nil.
	Catalog *Catalog
	// QuietHours: none when nil.
	QuietHours QuietHours
	// Reminders keeps the reminder schedules; nil: no reminders.
	Reminders ReminderScheduler
	// ReminderHours moves reminders out of quiet hours; nil: they keep
	// their lead times.
	ReminderHours ReminderHours
	Now           func() time.Time
	Log           *slog.Logger
}

// Config tunes delivery.
type Config struct {
	// Backoff is the wait before each retry of a transient failure; a
	// message is dead after len(Backoff)+1 failed attempts on a channel.
	// Default DefaultBackoff.
	Backoff []time.Duration
	// Language of the texts (clients have no language preference yet).
	// Default DefaultLanguage.
	Language string
	// Channels is the channel order per kind; DefaultChannels for a kind
	// not listed.
	Channels map[Kind][]sender.Channel
	// SendTimeout bounds one provider call. Default 30 s.
	SendTimeout time.Duration
	// Reminders are the reminder kinds and their lead times, longest
	// first; nil: DefaultReminders; empty: none.
	Reminders []Reminder
	// StatusWindow is how long a sent message waits for a delivery
	// status before its kind's next channel is tried (kinds with a
	// shorter window of their own keep it). Default DefaultStatusWindow.
	StatusWindow time.Duration
	// WhatsAppTemplates are the approved templates kinds are sent as
	// outside the 24-hour window (window.go); a kind without one goes to
	// its next channel there.
	WhatsAppTemplates map[Kind]WhatsAppTemplate
	// LoginCodeTTL is how long a login code lives: its WhatsApp
	// template's TTL is capped at it. 0: no cap.
	LoginCodeTTL time.Duration
}

// DefaultBackoff: a provider that is down for a few minutes loses no
// message; one down for most of an hour leaves dead letters to retry by
// hand.
var DefaultBackoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute}

// Service handles events into notifications. Safe for concurrent use.
type Service struct {
	deps Deps
	cfg  Config
}

// New checks deps and fills cfg's defaults. It loads the embedded
// templates when deps has none, so a broken text fails here.
func New(deps Deps, cfg Config) (*Service, error) {
	if deps.Store == nil || deps.Sender == nil {
		return nil, errors.New("notify: a store and a sender are required")
	}
	if deps.Catalog == nil {
		c, err := NewCatalog(deps.Store, CatalogOptions{Now: deps.Now, Log: deps.Log})
		if err != nil {
			return nil, err
		}
		deps.Catalog = c
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Language == "" {
		cfg.Language = DefaultLanguage
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 30 * time.Second
	}
	if cfg.Reminders == nil {
		cfg.Reminders = DefaultReminders
	}
	if cfg.StatusWindow <= 0 {
		cfg.StatusWindow = DefaultStatusWindow
	}
	return &Service{deps: deps, cfg: cfg}, nil
}

// MaxAttempts is how many provider calls a message gets on one channel
// before it is dead.
func (s *Service) MaxAttempts() int { return len(s.cfg.Backoff) + 1 }

// RetryError asks the caller to hand the event in again after After: a
// transient failure still within its attempts, or quiet hours.
type RetryError struct {
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("notify: retry in %s: %v", e.After, e.Err)
}

func (e *RetryError) Unwrap() error { return e.Err }

// Subjects are the event subjects Handle acts on.
func Subjects() []string {
	return []string{messages.Subject(&messages.AppointmentChanged{}), messages.Subject(&messages.WaitlistOffered{}),
		messages.Subject(&messages.PaymentChanged{}), messages.Subject(&messages.OrderChanged{}),
		messages.Subject(&messages.ReturnProcessed{})}
}

// Handle turns one event payload into its message, if it asks for one,
// and delivers it. nil means done (sent, refused for good); a *DeadError
// means dead: park the event as a dead letter; a *RetryError means hand
// it in again later; any other error is the store's, also worth a retry.
func (s *Service) Handle(ctx context.Context, payload proto.Message) error {
	var in intent
	var ok bool
	switch ev := payload.(type) {
	case *messages.AppointmentChanged:
		// Schedules first: a confirmation that cannot be sent now still
		// gets its reminders.
		if confirmed := string(persistence.StatusConfirmed); ev.ToStatus == confirmed || ev.FromStatus == confirmed {
			if err := s.syncReminders(ctx, ev.AppointmentId); err != nil {
				return err
			}
		}
		in, ok = appointmentIntent(ev)
		if !ok {
			var err error
			if in, ok, err = s.heldIntent(ctx, ev); err != nil {
				return err
			}
		}
	case *messages.WaitlistOffered:
		in, ok = waitlistIntent(ev)
	case *messages.PaymentChanged:
		in, ok = paymentIntent(ev)
	case *messages.OrderChanged:
		var err error
		if in, ok, err = s.orderIntent(ctx, ev); err != nil {
			return err
		}
	case *messages.ReturnProcessed:
		in, ok = returnIntent(ev)
	}
	if !ok {
		return nil
	}
	return s.deliver(ctx, in)
}

// prepared is what a message needs before a channel is picked.
type prepared struct {
	phone string // E.164, "" when none
	email string // from the client's profile, "" when none
	// lang and zone are the client's own language and time zone from the
	// profile, else the studio's (Config.Language; nil: the quiet hours'
	// own clock).
	lang  string
	zone  *time.Location
	vars  Vars
	prefs persistence.NotificationPreferences // the client's (defaults when none)
}

// to is the recipient on ch ("" when the client has none there).
func (p prepared) to(ch sender.Channel) string {
	if ch == sender.ChannelEmail {
		return p.email
	}
	return p.phone
}

// errNoPhone is recorded on the notification of a client no channel of
// the kind can reach (no phone number, none given or anonymised, and no
// email).
const errNoPhone = "the client has no phone number or email on record"

func (s *Service) prepare(ctx context.Context, in intent) (prepared, error) {
	var p prepared
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		p = prepared{lang: s.cfg.Language}
		u, err := tx.UserGet(ctx, in.userID)
		switch {
		case errors.Is(err, persistence.ErrNotFound):
		case err != nil:
			return err
		case s.deps.Phones == nil:
			s.deps.Log.Error("notification: phone numbers and emails cannot be read: no PII keyring", "kind", in.kind)
		default:
			if len(u.PhoneCipher) > 0 {
				num, err := s.deps.Phones.Decrypt(u.PhoneCipher, pii.PhoneContext(u.ID))
				if err != nil {
					return fmt.Errorf("notify: open the phone of user %s: %w", u.ID, err)
				}
				p.phone = string(num)
			}
			// The email is in the client's protected profile, sealed as
			// actors/service/privacy seals it.
			prof, err := tx.ProfileGet(ctx, u.ID)
			switch {
			case errors.Is(err, persistence.ErrNotFound):
			case err != nil:
				return err
			case len(prof.EmailCipher) > 0 && prof.AnonymisedAt.IsZero():
				addr, err := s.deps.Phones.Decrypt(prof.EmailCipher, pii.ProfileContext("email", u.ID))
				if err != nil {
					return fmt.Errorf("notify: open the email of user %s: %w", u.ID, err)
				}
				p.email = string(addr)
			}
			if err == nil && prof.AnonymisedAt.IsZero() {
				if err := s.locale(&p, prof); err != nil {
					return err
				}
			}
		}
		if p.prefs, err = loadPreferences(ctx, tx, in.userID); err != nil {
			return err
		}
		p.vars, err = s.vars(ctx, tx, in, p.lang)
		return err
	})
	return p, err
}

// vars are the kind's variables: names from the catalogue, times in the
// staff member's time zone (the appointment's local time).
func (s *Service) vars(ctx context.Context, tx persistence.Tx, in intent, lang string) (Vars, error) {
	if v, ok := orderVars(in, lang); ok {
		return v, nil
	}
	if categories[in.kind] == persistence.CategoryPayments {
		return paymentVars(in, lang), nil
	}
	service, staff, loc := in.serviceID, in.staffID, time.UTC
	if sv, err := tx.ServiceGet(ctx, in.serviceID); err == nil {
		service = sv.Name
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return nil, err
	}
	st, err := tx.StaffGet(ctx, in.staffID)
	switch {
	case err == nil:
		staff = st.Name
		if l, err := time.LoadLocation(st.TimeZone); err == nil && st.TimeZone != "" {
			loc = l
		}
	case !errors.Is(err, persistence.ErrNotFound):
		return nil, err
	}
	v := Vars{"Service": service, "Staff": staff, "When": formatWhen(in.start, loc, lang)}
	switch in.kind {
	case KindAppointmentRescheduled:
		v["PreviousWhen"] = formatWhen(in.previous, loc, lang)
	case KindWaitlistOffer:
		v["ExpiresAt"] = formatWhen(in.expires, loc, lang)
		v["ExpiresIn"] = formatDuration(max(in.expires.Sub(s.deps.Now()), 0), lang)
	case KindAppointmentHeld:
		v["ExpiresAt"] = formatWhen(in.expires, loc, lang)
		v["ExpiresIn"] = formatDuration(max(in.expires.Sub(s.deps.Now()), 0), lang)
		v["Deposit"] = formatMoney(in.amountMinor, in.currency, lang)
	}
	return v, nil
}

func (s *Service) channels(k Kind) []sender.Channel {
	if cs := s.cfg.Channels[k]; len(cs) > 0 {
		return cs
	}
	return DefaultChannels
}

// render is the stored body of kind's message on ch: the text of the
// template in force, and for an email its subject first (emailBody).
func (s *Service) render(ctx context.Context, kind Kind, lang string, ch sender.Channel, v Vars) (body string, refused, err error) {
	t, err := s.deps.Catalog.Active(ctx, kind, lang, ch)
	if err != nil {
		return "", nil, err
	}
	r, refused := t.Render(v)
	if refused != nil {
		return "", refused, nil
	}
	if ch == sender.ChannelEmail {
		return emailBody(r.Subject, r.Text), nil, nil
	}
	return r.Text, nil, nil
}

// An email's stored body is its subject, a blank line and its plain text:
// what the admin list shows, and what send turns back into the subject,
// the text and the HTML part.
func emailBody(subject, text string) string { return subject + "\n\n" + text }

func splitEmailBody(body string) (subject, text string) {
	subject, text, _ = strings.Cut(body, "\n\n")
	return subject, text
}

// deliver stores the message on its first channel that can reach the
// client and sends it, falling back to the next channel when one refuses
// it. What is stored decides a redelivery: a channel already sent (or
// dead) ends it, one that refused moves on to the next, one still queued
// is sent (again).
func (s *Service) deliver(ctx context.Context, in intent) error {
	p, err := s.prepare(ctx, in)
	if err != nil {
		return err
	}
	reachable, skipped := s.route(in, p)
	if skipped != "" {
		return s.skip(ctx, in, p, skipped)
	}
	if len(reachable) == 0 {
		return s.unreachable(ctx, in)
	}
	for i, ch := range reachable {
		body, refused, err := s.render(ctx, in.kind, p.lang, ch, p.vars)
		if err != nil {
			return err
		}
		n := persistence.Notification{ID: in.cause + ":" + string(ch), UserID: in.userID, Kind: string(in.kind),
			Category: categories[in.kind], Channel: string(ch), Status: persistence.NotificationQueued,
			Body: body, CreatedAt: s.deps.Now()}
		if refused != nil { // the template and its variables disagree: no retry fixes it
			n.Status, n.LastError = persistence.NotificationFailed, refused.Error()
		}
		stored, created, err := s.create(ctx, n)
		if err != nil {
			return err
		}
		if created && refused != nil {
			s.deps.Log.Error("notification not rendered", "id", n.ID, "kind", in.kind, "error", n.LastError)
		}
		if created && i > 0 {
			s.deps.Metrics.fallback(in.kind, string(reachable[i-1]), string(ch))
		}
		switch {
		case stored.Status.Accepted() || stored.Status == persistence.NotificationSkipped:
			return nil
		case stored.Status == persistence.NotificationDead: // parked again: a parking may have failed
			return &DeadError{Notification: stored, Class: textClass(stored.LastError)}
		case stored.Status == persistence.NotificationFailed:
			continue
		}
		if i+1 < len(reachable) { // a channel to fall back to
			if err := s.scheduleCheck(ctx, stored); err != nil {
				return err
			}
		}
		next, err := s.send(ctx, stored, p, ch, in.deadline())
		if err != nil || next.Status != persistence.NotificationFailed {
			return err
		}
	}
	return nil
}

func (s *Service) create(ctx context.Context, n persistence.Notification) (stored persistence.Notification, created bool, err error) {
	err = s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		stored, created, err = tx.NotificationCreate(ctx, n)
		return err
	})
	return stored, created, err
}

// unreachable records, on the kind's first channel, that no channel can
// reach the client: failed, not retried. A row queued there before the
// number went away is failed too.
func (s *Service) unreachable(ctx context.Context, in intent) error {
	ch := s.channels(in.kind)[0]
	n := persistence.Notification{ID: in.cause + ":" + string(ch), UserID: in.userID, Kind: string(in.kind),
		Category: categories[in.kind], Channel: string(ch), Status: persistence.NotificationFailed,
		LastError: errNoPhone, CreatedAt: s.deps.Now()}
	stored, created, err := s.create(ctx, n)
	if err != nil {
		return err
	}
	if created {
		s.deps.Log.Warn("notification not sent", "id", n.ID, "kind", in.kind, "error", errNoPhone)
	}
	if stored.Status != persistence.NotificationQueued {
		return nil
	}
	stored.Status, stored.LastError, stored.UpdatedAt = persistence.NotificationFailed, errNoPhone, s.deps.Now()
	return s.deps.Store.InTx(ctx, func(tx persistence.Tx) error { return tx.NotificationUpdate(ctx, stored) })
}

// send makes one provider call for the queued n and records its outcome.
// It returns n as recorded, and a *RetryError when the call failed for
// now and n has attempts left, a *DeadError when it has none.
func (s *Service) send(ctx context.Context, n persistence.Notification, p prepared, ch sender.Channel, deadline time.Time) (persistence.Notification, error) {
	to := p.to(ch)
	if s.deps.QuietHours != nil {
		if d := s.deps.QuietHours.Delay(n, s.deps.Now(), p.zone); d > 0 {
			return n, &RetryError{After: d, Err: errors.New("held by quiet hours")}
		}
	}
	m := sender.Message{To: to, Body: n.Body, Channel: sender.Channel(n.Channel), Purpose: n.Kind}
	if m.Channel == sender.ChannelEmail {
		m.Subject, m.Body = splitEmailBody(n.Body)
		html, err := emailHTML(p.lang, m.Subject, m.Body)
		if err != nil {
			return n, err
		}
		m.HTML = html
	}
	var id string
	err := s.whatsAppRules(ctx, &m, Kind(n.Kind), deadline)
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
		id, err = sender.SendTracked(sctx, s.deps.Sender, m)
		cancel()
	}
	now := s.deps.Now()
	n.Attempts++
	n.UpdatedAt = now
	var retry error // or the *DeadError
	log := s.deps.Log.With("id", n.ID, "kind", n.Kind, "channel", n.Channel, "to", sender.MaskRecipient(sender.Channel(n.Channel), to), "attempt", n.Attempts)
	switch {
	case err == nil:
		n.Status, n.SentAt, n.LastError = persistence.NotificationSent, now, ""
		n.ProviderMessageID = id // what its delivery statuses will name
		log.Info("notification sent")
	case errors.Is(err, sender.ErrRejected):
		n.Status, n.LastError = persistence.NotificationFailed, redact(err, to)
		log.Warn("notification refused by the channel", "error", n.LastError)
	case n.Attempts >= s.MaxAttempts():
		n.Status, n.LastError = persistence.NotificationDead, redact(err, to)
		log.Error("notification dead after its last attempt", "error", n.LastError)
		retry = &DeadError{Notification: n, Class: ErrorClass(err)}
	default:
		n.LastError = redact(err, to)
		retry = &RetryError{After: s.cfg.Backoff[n.Attempts-1], Err: err}
		log.Warn("notification failed; will retry", "error", n.LastError, "retry_in", s.cfg.Backoff[n.Attempts-1].String())
	}
	sent, recorded := n, n
	if err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		recorded = n
		if n.Status == persistence.NotificationSent && n.ProviderMessageID != "" {
			// A status that overtook this write was kept: applied now.
			if recorded, err = applyEarly(ctx, tx, n, now); err != nil {
				return err
			}
		}
		return tx.NotificationUpdate(ctx, recorded)
	}); err != nil {
		return n, err
	}
	s.deps.Metrics.sendOutcome(sent)
	if recorded.Status != sent.Status {
		if delivered(recorded.Status) {
			s.deps.Metrics.delivered(recorded)
		}
		if recorded.Status == persistence.NotificationFailed {
			// deliver goes on to the next channel at once.
			s.deps.Metrics.failed(recorded, FailedStatus)
			log.Warn("the provider reported the message failed before it was recorded; falling back", "error", recorded.LastError)
		}
	}
	return recorded, retry
}

// redact is err's text with the recipient masked: providers name the
// number (or address) they refused, and the error is logged and stored.
func redact(err error, phone string) string {
	msg := err.Error()
	if phone == "" {
		return msg
	}
	if strings.Contains(phone, "@") {
		return strings.ReplaceAll(msg, phone, sender.MaskRecipient(sender.ChannelEmail, phone))
	}
	msg = strings.ReplaceAll(msg, phone, sender.MaskPhone(phone))
	if bare := strings.TrimPrefix(phone, "+"); len(bare) > 4 {
		msg = strings.ReplaceAll(msg, bare, sender.MaskPhone(bare))
	}
	return msg
}

// locale sets p's language and time zone from the client's profile, when
// it holds them (sealed as actors/service/privacy seals them); a language
// no template is written in, or a zone this node does not know, keeps the
// studio's.
func (s *Service) locale(p *prepared, prof persistence.ClientProfile) error {
	if len(prof.LanguageCipher) > 0 {
		lang, err := s.deps.Phones.Decrypt(prof.LanguageCipher, pii.ProfileContext("language", prof.UserID))
		if err != nil {
			return fmt.Errorf("notify: open the language of user %s: %w", prof.UserID, err)
		}
		if l := string(lang); l == LanguageEnglish || l == DefaultLanguage {
			p.lang = l
		}
	}
	if len(prof.TimeZoneCipher) > 0 {
		zone, err := s.deps.Phones.Decrypt(prof.TimeZoneCipher, pii.ProfileContext("time_zone", prof.UserID))
		if err != nil {
			return fmt.Errorf("notify: open the time zone of user %s: %w", prof.UserID, err)
		}
		if loc, err := time.LoadLocation(string(zone)); err == nil && len(zone) > 0 {
			p.zone = loc
		}
	}
	return nil
}

// clientZone is the time zone the client's profile names (nil: none, or
// no keyring to open it: the studio's).
func (s *Service) clientZone(ctx context.Context, tx persistence.Tx, userID string) (*time.Location, error) {
	if s.deps.Phones == nil || userID == "" {
		return nil, nil
	}
	prof, err := tx.ProfileGet(ctx, userID)
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !prof.AnonymisedAt.IsZero()) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p prepared
	err = s.locale(&p, prof)
	return p.zone, err
}
