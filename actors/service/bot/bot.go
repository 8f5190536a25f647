// Package bot is the WhatsApp bot's use case: one inbound message of a
// phone, with that phone's conversation memory, becomes replies and, when
// the client taps a button, bookings (docs/bot.md). The model proposes and
// the code decides: whatever Gemini asks for goes through an allow-list of
// tools whose arguments are checked against their JSON Schema, identity
// comes only from the sender's number, and every change is two-phase — a
// proposal holds the slot for real and sends "Confirmar"/"Cambiar"
// buttons; only the tap confirms, with the hold as the idempotency key.
//
// It books through the booking service exactly as the API does, so the
// same rules (caps, cut-offs, deposits) apply. Without a Gemini key, or
// while its breaker is open, a deterministic es-CO/en dialogue handles the
// booking path; what it cannot handle goes to a person.
//
// The package holds no state: the memory lives in the phone's session
// actor (actors/session), which calls Handle one message at a time
// (through Session, its session.Bot).
package bot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/gemini"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/persistence"
)

// Sender sends the bot's messages: *whatsapp.Client.
type Sender interface {
	SendText(ctx context.Context, to, body string) (string, error)
	SendButtons(ctx context.Context, to, body string, buttons []whatsapp.Button) (string, error)
}

// Model is the language model: *gemini.Client. State is its breaker's.
type Model interface {
	Generate(ctx context.Context, req *gemini.Request) (*gemini.Response, error)
	State() string
}

// Clients finds (or creates) the client a phone number belongs to, by its
// blind index: identity.Service.ClientByPhone.
type Clients interface {
	ClientByPhone(ctx context.Context, e164 string) (string, error)
}

// Deps is what the bot works with.
type Deps struct {
	// Booking, Catalogue, Store, Clients and Sender are required.
	Booking   *booking.Service
	Catalogue booking.Catalogue
	Store     persistence.Store
	Clients   Clients
	Sender    Sender
	// Model, when set, answers free text; nil runs the deterministic
	// dialogue only.
	Model Model
	// Products lists the shop's active products for product_lookup; nil:
	// the tool answers that there is no shop.
	Products func(ctx context.Context) ([]ProductInfo, error)
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time
	// Canary is a secret marker in the system prompt; a reply containing
	// it leaked the prompt. Empty: a random one.
	Canary string
	// AllowedLinks are the hosts a reply may link to (none by default).
	AllowedLinks []string
	// Strikes counts a number's abuse (a message screened out as an
	// injection); past its limit the number is blocked. nil: not counted.
	Strikes Strikes
	// Budget bounds what the model costs; nil: unbounded (tests).
	Budget Budget
	// StaffTemplate sends a person's reply as the approved template
	// (staff_reply in SPA_WHATSAPP_TEMPLATES, the text its one parameter)
	// when the client's 24-hour window has closed; nil: such a reply is
	// refused (ErrWindowClosed).
	StaffTemplate func(ctx context.Context, to, text string) error
}

// Budget bounds what the model costs (unbounded consumption): a daily
// token cap per phone and a daily spend cap over all phones (cmd/spa:
// quota windows, which survive restarts). A turn over a cap is answered
// by the deterministic dialogue, without the model.
type Budget interface {
	// Allow says which cap stops phone's turn from calling the model:
	// "" when none does.
	Allow(ctx context.Context, phone string) (cap string, err error)
	// Spend records one model call's usage against phone and the studio.
	Spend(ctx context.Context, phone string, u gemini.UsageMetadata) error
}

// Strikes records a strike against a phone (cmd/spa: a decaying quota
// window, then the blocklist).
type Strikes interface {
	Strike(ctx context.Context, phone string) error
}

// ProductInfo is what product_lookup tells the model of a product.
type ProductInfo struct {
	Name       string `json:"name"`
	PriceMinor int64  `json:"price_minor"`
	Available  bool   `json:"available"`
}

// Service runs conversations. Safe for concurrent use (each phone's turns
// are serialised by its session actor).
type Service struct {
	d Deps
}

// New checks deps.
func New(d Deps) (*Service, error) {
	if d.Booking == nil || d.Catalogue == nil || d.Store == nil || d.Clients == nil || d.Sender == nil {
		return nil, errors.New("bot: Booking, Catalogue, Store, Clients and Sender are required")
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Canary == "" {
		b := make([]byte, 9)
		_, _ = rand.Read(b)
		d.Canary = "CANARY-" + hex.EncodeToString(b)
	}
	return &Service{d: d}, nil
}

// Inbound is one message of the phone whose memory Handle is given.
type Inbound struct {
	// ID is the provider's message id; Phone the sender (E.164).
	ID, Phone string
	Time      time.Time
	// Text is what the client wrote or the tapped button's title;
	// Payload the button id ("" for text).
	Text, Payload string
}

// turn is one message being handled.
type turn struct {
	s     *Service
	in    Inbound
	mem   *Memory
	by    service.Caller
	loc   *time.Location
	now   time.Time
	lang  string
	vault Vault
}

// Handle answers one message and returns the memory to keep. An error
// means the turn should be retried (the calendar or the sender could not
// be reached); what the client was already sent is in the memory only if
// no error is returned, so a retry may repeat a message but never lose one.
func (s *Service) Handle(ctx context.Context, in Inbound, mem Memory) (Memory, error) {
	now := s.d.Now()
	mem = mem.Fresh(now)
	if mem.seen(in.ID) {
		return mem, nil
	}
	client, err := s.d.Clients.ClientByPhone(ctx, in.Phone)
	if code, final := faultOf(err); final && code != fault.CodeUnavailable && code != fault.CodeInternal {
		// A blocked number (or one that is not a number): no answer, and
		// nothing to try again. The message is handled.
		s.d.Metrics.blocked("blocked_phone")
		s.d.Log.Info("bot: message from a refused number dropped", "code", code)
		return mem, nil
	}
	if err != nil {
		return mem, fmt.Errorf("bot: client of the phone: %w", err)
	}
	mem.ClientID = client
	t := &turn{s: s, in: in, mem: &mem, now: now, vault: Vault{},
		by: service.Caller{Claims: auth.Claims{Subject: client, Role: auth.RoleClient}, RequestID: "wa-" + in.ID}}
	if t.loc, err = s.zone(ctx); err != nil {
		return mem, err
	}
	t.lang = mem.Lang
	norm := Normalize(in.Text)
	if l := language(norm); t.lang == "" || len(strings.Fields(norm)) >= 3 {
		t.lang = l
	}
	mem.Lang = t.lang
	if len(mem.Turns) == 0 && mem.Summary == "" {
		s.d.Metrics.start()
	}
	mem.add("user", in.Text, now)
	s.d.Metrics.message()

	switch {
	case in.Payload != "":
		err = t.button(ctx, in.Payload)
	case mem.owner() == OwnerHuman:
		// A person owns the conversation: the bot only keeps the
		// transcript for them.
		return mem, nil
	default:
		if v := Screen(in.Text); v.Blocked {
			s.d.Metrics.blocked("injection")
			s.d.Log.Info("bot: message screened out", "reasons", v.Reasons, "score", v.Score)
			if s.d.Strikes != nil {
				if err := s.d.Strikes.Strike(ctx, in.Phone); err != nil {
					s.d.Log.Warn("bot: strike not recorded", "err", err)
				}
			}
			err = t.reply(ctx, say(t.lang, "refuse"))
			break
		}
		err = t.free(ctx, norm)
	}
	if err != nil {
		return Memory{}, err
	}
	return mem, nil
}

// free answers free text: with the model when it is there and healthy,
// otherwise (or when its answer is unusable) with the deterministic
// dialogue.
func (t *turn) free(ctx context.Context, norm string) error {
	m := t.s.d.Model
	if m != nil && m.State() != "open" && t.withinBudget(ctx) {
		done, err := t.withModel(ctx)
		if err == nil && done {
			return nil
		}
		if err != nil {
			t.s.d.Log.Warn("bot: model turn failed; deterministic dialogue answers", "class", gemini.Class(err))
		}
	}
	return t.deterministic(ctx, norm)
}

// withinBudget says whether the turn may call the model. A budget that
// cannot be read keeps the model out (the deterministic dialogue still
// answers): the caps bound cost, so they fail closed.
func (t *turn) withinBudget(ctx context.Context) bool {
	b := t.s.d.Budget
	if b == nil {
		return true
	}
	limit, err := b.Allow(ctx, t.in.Phone)
	switch {
	case err != nil:
		t.s.d.Log.Warn("bot: model budget unknown; deterministic dialogue answers", "err", err)
		return false
	case limit != "":
		t.s.d.Metrics.overBudget(limit)
		return false
	}
	return true
}

// spent records a model call's usage; a record that fails is logged (the
// call was made: the caps may count a little less than was spent).
func (t *turn) spent(ctx context.Context, u gemini.UsageMetadata) {
	if b := t.s.d.Budget; b != nil {
		if err := b.Spend(ctx, t.in.Phone, u); err != nil {
			t.s.d.Log.Warn("bot: model usage not recorded", "err", err)
		}
	}
}

// zone is the studio's time zone, in which clients say "mañana a las 3".
func (s *Service) zone(ctx context.Context) (*time.Location, error) {
	var tz string
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		st, err := tx.StudioGet(ctx, "default")
		tz = st.TimeZone
		return err
	})
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return nil, err
	}
	if tz == "" {
		tz = "America/Bogota"
	}
	return time.LoadLocation(tz)
}

// reply sends text (with the client's own data restored) and remembers it.
func (t *turn) reply(ctx context.Context, text string) error {
	text = Restore(text, t.vault)
	if _, err := t.s.d.Sender.SendText(ctx, t.in.Phone, text); err != nil {
		return fmt.Errorf("bot: send: %w", err)
	}
	t.mem.add("bot", text, t.s.d.Now())
	return nil
}

// buttons sends text with reply buttons and remembers it.
func (t *turn) buttons(ctx context.Context, text string, bs []whatsapp.Button) error {
	text = Restore(text, t.vault)
	if _, err := t.s.d.Sender.SendButtons(ctx, t.in.Phone, text, bs); err != nil {
		return fmt.Errorf("bot: send: %w", err)
	}
	t.mem.add("bot", text, t.s.d.Now())
	return nil
}

// handoff gives the conversation to a person.
func (t *turn) handoff(ctx context.Context, key string) error {
	if t.mem.owner() != OwnerHuman {
		t.mem.Owner, t.mem.OwnerSince, t.mem.Waiting, t.mem.StaffID = OwnerHuman, t.now, t.now, ""
		t.s.d.Metrics.handoff()
	}
	return t.reply(ctx, say(t.lang, key))
}

// services are the active services, by name.
func (t *turn) services(ctx context.Context) ([]persistence.Service, error) {
	all, _, err := t.s.d.Catalogue.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	var out []persistence.Service
	for _, sv := range all {
		if sv.Active {
			out = append(out, sv)
		}
	}
	slices.SortFunc(out, func(a, b persistence.Service) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (t *turn) serviceList(list []persistence.Service) string {
	var b strings.Builder
	for _, sv := range list {
		fmt.Fprintf(&b, "• %s (%d min, %s)\n", sv.Name, int(sv.Duration.Minutes()), money(sv.PriceMinor))
	}
	return strings.TrimRight(b.String(), "\n")
}

// money is COP minor units as "$80.000".
func money(minor int64) string {
	s := fmt.Sprint(minor / 100)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, '.')
		}
		out = append(out, s[i])
	}
	return "$" + string(out)
}

func (t *turn) when(at time.Time) string { return notify.FormatWhen(at, t.loc, t.lang) }

// holdID is the appointment id of the hold a message proposes: derived
// from the message id, so the message handled again after a crash finds
// the hold it made instead of making a second one.
func holdID(msgID string) string {
	sum := sha256.Sum256([]byte("bot-hold\x00" + msgID))
	return "apt_" + base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16])
}

// confirmKey is the idempotency key of a button tap on proposal id: a
// tap delivered twice replays the first answer.
func confirmKey(clientID, action, id string) *keyed.Key {
	fp := sha256.Sum256([]byte("bot\x00" + action + "\x00" + id))
	return &keyed.Key{Scope: "sub:" + clientID, Name: "bot-" + action + ":" + id, Hash: fp[:]}
}

// staffName is a staff member's name for the client.
func (t *turn) staffName(ctx context.Context, id string) string {
	_, staff, err := t.s.d.Catalogue.Snapshot(ctx)
	if err == nil {
		for _, m := range staff {
			if m.ID == id {
				return m.Name
			}
		}
	}
	return say(t.lang, "with_anyone")
}

// propose holds svc at the free start nearest to want and sends the
// Confirmar/Cambiar buttons.
func (t *turn) propose(ctx context.Context, sv persistence.Service, want time.Time, staffID string) error {
	day := time.Date(want.Year(), want.Month(), want.Day(), 0, 0, 0, 0, t.loc)
	from := later(day, t.now)
	_, slots, err := t.s.d.Booking.Availability(ctx, t.by, booking.AvailabilityInput{ServiceID: sv.ID, StaffID: staffID, From: from, To: day.AddDate(0, 0, 7)})
	if err != nil {
		return t.bookingError(ctx, err)
	}
	if len(slots) == 0 {
		t.mem.Draft = &Draft{ServiceID: sv.ID}
		return t.reply(ctx, say(t.lang, "none_free", sv.Name))
	}
	best := slots[0]
	for _, sl := range slots[1:] {
		if absDur(sl.Start.Sub(want)) < absDur(best.Start.Sub(want)) {
			best = sl
		}
	}
	id := holdID(t.in.ID)
	ap, err := t.s.d.Booking.Hold(ctx, t.by, booking.HoldInput{ID: id, ServiceID: sv.ID, StaffID: best.StaffID, Start: best.Start})
	if err != nil {
		return t.bookingError(ctx, err)
	}
	t.mem.Pending = &Proposal{Kind: "book", AppointmentID: ap.ID, ServiceID: sv.ID, Start: ap.Start, Expires: ap.HoldExpiresAt}
	t.mem.Draft = nil
	t.s.d.Metrics.proposal("book")
	name := t.staffName(ctx, ap.StaffID)
	text := say(t.lang, "propose", sv.Name, t.when(ap.Start), name)
	if !ap.Start.Equal(want) {
		text = say(t.lang, "propose_other", t.when(ap.Start), sv.Name, t.when(ap.Start), name)
	}
	return t.buttons(ctx, text, []whatsapp.Button{
		{ID: "confirm:" + ap.ID, Title: say(t.lang, "btn_confirm")},
		{ID: "change:" + ap.ID, Title: say(t.lang, "btn_change")},
	})
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// bookingError turns a refusal into words, and a failure to reach the
// calendar into an error (the turn is retried) — unless it is final, in
// which case a person takes over.
func (t *turn) bookingError(ctx context.Context, err error) error {
	var f *fault.Error
	if !errors.As(err, &f) {
		return err
	}
	switch f.Code {
	case "unavailable", "internal":
		return err
	case "cutoff_passed":
		return t.handoff(ctx, "cutoff")
	case "hold_expired":
		t.mem.Pending = nil
		return t.reply(ctx, say(t.lang, "expired"))
	}
	t.s.d.Log.Info("bot: booking refused; handing off", "code", f.Code)
	return t.handoff(ctx, "handoff")
}

// button handles a tap. Only a tap confirms anything: the id names the
// proposal, and the proposal must be this conversation's pending one.
func (t *turn) button(ctx context.Context, payload string) error {
	action, id, _ := strings.Cut(payload, ":")
	p := t.mem.Pending
	if action == "pickcancel" {
		return t.proposeCancel(ctx, id)
	}
	if p == nil || p.AppointmentID != id {
		// A stale button (an older proposal): say how things stand.
		if t.mem.owner() == OwnerHuman {
			return nil
		}
		return t.reply(ctx, say(t.lang, "expired"))
	}
	a, err := t.s.d.Booking.Load(ctx, t.by, id)
	if err != nil {
		return t.bookingError(ctx, err)
	}
	sv, _ := t.serviceByID(ctx, a.ServiceID)
	switch {
	case action == "confirm" && p.Kind == "book":
		if a.Status == persistence.StatusConfirmed {
			t.mem.Pending = nil
			return t.reply(ctx, say(t.lang, "confirmed", sv.Name, t.when(a.Start)))
		}
		ap, err := t.s.d.Booking.Confirm(ctx, t.by, a, booking.ChangeInput{Key: confirmKey(t.by.Subject, "confirm", id)})
		if err != nil {
			var f *fault.Error
			if errors.As(err, &f) && f.Code == "forbidden" && a.DepositMinor > 0 {
				return t.handoff(ctx, "handoff") // the deposit is paid online, with a person's help for now
			}
			return t.bookingError(ctx, err)
		}
		t.mem.Pending = nil
		t.s.d.Metrics.booked()
		return t.reply(ctx, say(t.lang, "confirmed", sv.Name, t.when(ap.Start)))
	case action == "change" && p.Kind == "book":
		if a.Status == persistence.StatusHeld {
			if _, err := t.s.d.Booking.Cancel(ctx, t.by, a, booking.ChangeInput{Reason: "client asked for another time (WhatsApp)"}); err != nil {
				return t.bookingError(ctx, err)
			}
		}
		t.mem.Pending = nil
		t.mem.Draft = &Draft{ServiceID: p.ServiceID}
		return t.reply(ctx, say(t.lang, "change"))
	case action == "cancel" && p.Kind == "cancel":
		if _, err := t.s.d.Booking.Cancel(ctx, t.by, a, booking.ChangeInput{Reason: "cancelled by the client (WhatsApp)", Key: confirmKey(t.by.Subject, "cancel", id)}); err != nil {
			return t.bookingError(ctx, err)
		}
		t.mem.Pending = nil
		return t.reply(ctx, say(t.lang, "cancelled", sv.Name, t.when(a.Start)))
	case action == "move" && p.Kind == "reschedule":
		ap, err := t.s.d.Booking.Reschedule(ctx, t.by, a, booking.ChangeInput{Start: p.NewStart, Key: confirmKey(t.by.Subject, "move", id+"@"+p.NewStart.UTC().Format(time.RFC3339))})
		if err != nil {
			return t.bookingError(ctx, err)
		}
		t.mem.Pending = nil
		return t.reply(ctx, say(t.lang, "confirmed", sv.Name, t.when(ap.Start)))
	case action == "keep":
		t.mem.Pending = nil
		return t.reply(ctx, say(t.lang, "kept"))
	}
	return t.reply(ctx, say(t.lang, "expired"))
}

func (t *turn) serviceByID(ctx context.Context, id string) (persistence.Service, bool) {
	all, _, err := t.s.d.Catalogue.Snapshot(ctx)
	if err != nil {
		return persistence.Service{Name: id}, false
	}
	sv, ok := all[id]
	if !ok {
		sv.Name = id
	}
	return sv, ok
}

// upcoming are the client's live appointments from now on.
func (t *turn) upcoming(ctx context.Context) ([]persistence.Appointment, error) {
	list, err := t.s.d.Booking.Mine(ctx, t.by, t.now, t.now.AddDate(0, 6, 0))
	if err != nil {
		return nil, err
	}
	var out []persistence.Appointment
	for _, a := range list {
		if a.Status == persistence.StatusConfirmed || (a.Status == persistence.StatusHeld && a.Live(t.now)) {
			out = append(out, a)
		}
	}
	return out, nil
}

// proposeCancel asks to confirm cancelling appointment id.
func (t *turn) proposeCancel(ctx context.Context, id string) error {
	a, err := t.s.d.Booking.Load(ctx, t.by, id)
	if err != nil {
		return t.bookingError(ctx, err)
	}
	sv, _ := t.serviceByID(ctx, a.ServiceID)
	t.mem.Pending = &Proposal{Kind: "cancel", AppointmentID: a.ID, ServiceID: a.ServiceID, Start: a.Start}
	t.s.d.Metrics.proposal("cancel")
	return t.buttons(ctx, say(t.lang, "cancel_propose", sv.Name, t.when(a.Start)), []whatsapp.Button{
		{ID: "cancel:" + a.ID, Title: say(t.lang, "btn_cancel")},
		{ID: "keep:" + a.ID, Title: say(t.lang, "btn_keep")},
	})
}

// proposeMove asks to confirm moving appointment id to start (the slot is
// checked when the tap arrives: the schedule actor decides then).
func (t *turn) proposeMove(ctx context.Context, id string, start time.Time) error {
	a, err := t.s.d.Booking.Load(ctx, t.by, id)
	if err != nil {
		return t.bookingError(ctx, err)
	}
	sv, _ := t.serviceByID(ctx, a.ServiceID)
	t.mem.Pending = &Proposal{Kind: "reschedule", AppointmentID: a.ID, ServiceID: a.ServiceID, Start: a.Start, NewStart: start}
	t.s.d.Metrics.proposal("reschedule")
	return t.buttons(ctx, say(t.lang, "propose", sv.Name, t.when(start), t.staffName(ctx, a.StaffID)), []whatsapp.Button{
		{ID: "move:" + a.ID, Title: say(t.lang, "btn_confirm")},
		{ID: "keep:" + a.ID, Title: say(t.lang, "btn_keep")},
	})
}

// availabilitySlot names the slot type the model's tools sort.
type availabilitySlot = availability.Slot

// faultOf is a fault's code.
func faultOf(err error) (string, bool) {
	var f *fault.Error
	if errors.As(err, &f) {
		return f.Code, true
	}
	return "", false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
