package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/providers/whatsapp/cswindow"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/persistence"
)

// The human hand-off desk (docs/bot.md, Hand-off): the conversations a
// person owns or that wait for one, oldest wait first with their
// transcript, and what staff do with them — take over, reply, hand back.
// Each action goes to the phone's session actor (the conversation's only
// writer) and is audited. A conversation a person left alone for
// HandoffTimeout goes back to the bot (ExpireIdle).

// HandoffTimeout is how long a conversation may sit with a person (or
// wait for one) without anything happening before the bot takes it back.
const HandoffTimeout = 2 * time.Hour

// MaxStaffReply bounds a person's reply (WhatsApp's text limit).
const MaxStaffReply = 4096

// DeskDeps are what the desk works with.
type DeskDeps struct {
	Store persistence.Store
	// Sessions reach the phones' session actors; Sealer opens the stored
	// conversations for the list.
	Sessions *session.Client
	Sealer   keyed.Sealer
	Now      func() time.Time
}

// Desk is the hand-off use case.
type Desk struct{ d DeskDeps }

// NewDesk returns the desk.
func NewDesk(d DeskDeps) *Desk {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Desk{d: d}
}

// Conversation is one conversation as staff see it.
type Conversation struct {
	// ID names it in the API: the phone's key (its blind index), never
	// the number.
	ID string
	// Phone is the number, masked.
	Phone             string
	ClientID, Owner   string
	StaffID           string
	WaitingSince      time.Time
	Updated           time.Time
	Summary           string
	Turns             []Turn
	WindowOpen        bool // a free-form reply may still be sent
	LastClientMessage time.Time
}

// Limits of the waiting list.
const (
	DefaultWaitingShown = 50
	MaxWaitingShown     = 200
)

func staffOnly(by service.Caller) error {
	if !booking.IsStaff(by) {
		return fault.Forbidden("only staff handle conversations")
	}
	return nil
}

// Waiting lists the conversations a person owns or that wait for one,
// oldest wait first, with their transcripts.
func (d *Desk) Waiting(ctx context.Context, by service.Caller, limit int) ([]Conversation, error) {
	if err := staffOnly(by); err != nil {
		return nil, err
	}
	var rows []persistence.Conversation
	if err := d.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		rows, err = tx.ConversationListHuman(ctx, limit)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Conversation, 0, len(rows))
	for _, r := range rows {
		c, err := d.view(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (d *Desk) view(r persistence.Conversation) (Conversation, error) {
	num, raw, err := session.OpenConversation(d.d.Sealer, r)
	if err != nil {
		return Conversation{}, fmt.Errorf("bot: conversation %s: %w", r.PhoneKey, err)
	}
	m := decodeMemory(raw)
	last := m.lastFromClient()
	return Conversation{ID: r.PhoneKey, Phone: phone.Mask(num), ClientID: r.ClientID, Owner: r.Owner, StaffID: r.StaffID,
		WaitingSince: r.WaitingSince, Updated: r.UpdatedAt, Summary: m.Summary, Turns: m.Turns,
		LastClientMessage: last, WindowOpen: cswindow.Open(last, d.d.Now())}, nil
}

// Get returns one conversation (any owner).
func (d *Desk) Get(ctx context.Context, by service.Caller, id string) (Conversation, error) {
	if err := staffOnly(by); err != nil {
		return Conversation{}, err
	}
	var r persistence.Conversation
	err := d.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		r, err = tx.ConversationGet(ctx, id)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) {
		return Conversation{}, fault.NotFound("no conversation " + id)
	}
	if err != nil {
		return Conversation{}, err
	}
	return d.view(r)
}

// Act applies a staff action (session.StaffTake, StaffReply,
// StaffRelease) and returns the conversation after it. Audited as
// bot_conversation.<action>.
func (d *Desk) Act(ctx context.Context, by service.Caller, id, action, text string) (Conversation, error) {
	if err := staffOnly(by); err != nil {
		return Conversation{}, err
	}
	switch action {
	case session.StaffTake, session.StaffRelease:
		text = ""
	case session.StaffReply:
		text = strings.TrimSpace(text)
		switch {
		case text == "":
			return Conversation{}, fault.Invalid("the reply is empty", fault.FieldError{Field: "text", Message: "required"})
		case utf8.RuneCountInString(text) > MaxStaffReply:
			return Conversation{}, fault.Invalid("the reply is too long",
				fault.FieldError{Field: "text", Message: fmt.Sprintf("at most %d characters", MaxStaffReply)})
		}
	default:
		return Conversation{}, fault.Invalid("unknown action " + action)
	}
	if id == "" || len(id) > 128 {
		return Conversation{}, fault.NotFound("no conversation " + id)
	}
	if err := d.act(ctx, by, id, session.StaffAct{Action: action, StaffID: by.Subject, Text: text}); err != nil {
		return Conversation{}, err
	}
	return d.Get(ctx, by, id)
}

func (d *Desk) act(ctx context.Context, by service.Caller, id string, act session.StaffAct) error {
	r := d.d.Sessions.Staff(ctx, id, &act)
	switch {
	case errors.Is(r.Err, persistence.ErrNotFound):
		return fault.NotFound("no conversation " + id)
	case errors.Is(r.Err, session.ErrNoBot):
		return fault.Unavailable("the WhatsApp bot is off on this node")
	case r.Err != nil:
		return r.Err
	}
	// The reply's text is the client's conversation (sealed there), not
	// the audit log's: the entry says that a reply went, and its length.
	return d.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		return service.Audit(ctx, tx, d.d.Now(), by, "bot_conversation."+act.Action, "conversation/"+id, "",
			map[string]any{"client_id": r.Conversation.ClientID, "owner": r.Conversation.Owner, "chars": utf8.RuneCountInString(act.Text)})
	})
}

// ExpireIdle hands back to the bot every conversation a person owns (or
// that waits for one) untouched for timeout; audited with the system as
// actor. Returns how many.
func (d *Desk) ExpireIdle(ctx context.Context, timeout time.Duration) (int, error) {
	var rows []persistence.Conversation
	if err := d.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		rows, err = tx.ConversationListHuman(ctx, MaxWaitingShown)
		return err
	}); err != nil {
		return 0, err
	}
	n := 0
	system := service.Caller{RequestID: "handoff-timeout"}
	system.Subject, system.Role = "system", "system"
	for _, r := range rows {
		if d.d.Now().Sub(r.UpdatedAt) < timeout {
			continue
		}
		if err := d.act(ctx, system, r.PhoneKey, session.StaffAct{Action: session.StaffExpire}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
