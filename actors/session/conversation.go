package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// The phone's WhatsApp conversation (docs/bot.md): the bot's memory lives
// in the phone's session actor, the single writer of everything about one
// phone, so a phone's turns are decided one at a time wherever the
// messages arrive, and a restart or a partition hand-off continues the
// conversation from the store. The memory is the bot's (opaque here); the
// actor stores it sealed with the phone number beside it (a person's
// reply needs the number), in bot_conversations.

// ErrNoBot: the node runs no bot.
var ErrNoBot = errors.New("session: no bot on this node")

// Inbound is one message of the phone, as the bot needs it.
type Inbound struct {
	ID            string // the provider's message id
	Time          time.Time
	Text, Payload string
}

// Converse hands an inbound message of Phone (E.164) to the bot with the
// phone's conversation.
type Converse struct {
	Phone string
	Msg   Inbound
}

// ConverseReply answers Converse: Err nil means answered and stored.
type ConverseReply struct{ Err error }

// Staff actions on a conversation.
const (
	StaffTake    = "take"    // a person takes the conversation over
	StaffReply   = "reply"   // a person writes to the client
	StaffRelease = "release" // the conversation goes back to the bot
	StaffExpire  = "expire"  // the person's time ran out: back to the bot
)

// StaffAct is a person's action on the phone's conversation (by key: the
// number is in the stored conversation).
type StaffAct struct {
	Action, StaffID, Text string
}

// StaffActReply answers StaffAct with the conversation after it.
type StaffActReply struct {
	Conversation ConversationView
	Err          error
}

// ConversationView is what the bot reports of a memory, for the columns
// staff lists read.
type ConversationView struct {
	ClientID, Owner, StaffID string
	WaitingSince, Updated    time.Time
}

// Bot answers with a conversation's memory (nil: none yet) and returns
// the memory to keep: the WhatsApp bot's use case (bot.Session).
type Bot interface {
	Turn(ctx context.Context, phone string, in Inbound, memory []byte) ([]byte, ConversationView, error)
	Staff(ctx context.Context, phone string, act StaffAct, memory []byte) ([]byte, ConversationView, error)
}

// sealedConversation is what the memory column holds, sealed.
type sealedConversation struct {
	Phone  string          `json:"phone"`
	Memory json.RawMessage `json:"memory,omitempty"`
}

const conversationScope = "bot_conversation"

// OpenConversation opens a stored conversation's memory: the phone number
// and the bot's memory (staff lists read them without the actor).
func OpenConversation(s keyed.Sealer, c persistence.Conversation) (phone string, memory []byte, err error) {
	if len(c.Memory) == 0 {
		return "", nil, nil
	}
	body, err := keyed.Open(s, conversationScope, c.PhoneKey, c.Memory)
	if err != nil {
		return "", nil, err
	}
	var sc sealedConversation
	if err := json.Unmarshal(body, &sc); err != nil {
		return "", nil, fmt.Errorf("session: stored conversation unreadable: %w", err)
	}
	return sc.Phone, sc.Memory, nil
}

// conversation is the activation's copy of the stored conversation.
type conversation struct {
	loaded bool
	row    persistence.Conversation
	phone  string
	memory []byte
}

func (a *sessionActor) loadConversation(ctx context.Context) error {
	if a.conv.loaded {
		return nil
	}
	var row persistence.Conversation
	err := a.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		row, err = tx.ConversationGet(ctx, a.key)
		return err
	})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		a.conv = conversation{loaded: true, row: persistence.Conversation{PhoneKey: a.key}}
		return nil
	case err != nil:
		return err
	}
	phone, mem, err := OpenConversation(a.deps.Sealer, row)
	if err != nil {
		return err
	}
	a.conv = conversation{loaded: true, row: row, phone: phone, memory: mem}
	return nil
}

// storeConversation writes the next memory; only once it is durable does
// the activation adopt it. A conflict (another activation wrote, or the
// client was anonymised) drops the copy: the next message reloads.
func (a *sessionActor) storeConversation(ctx context.Context, phone string, mem []byte, v ConversationView) error {
	body, err := json.Marshal(sealedConversation{Phone: phone, Memory: mem})
	if err != nil {
		return err
	}
	if body, err = keyed.Seal(a.deps.Sealer, conversationScope, a.key, body); err != nil {
		return err
	}
	row := a.conv.row
	row.ClientID, row.Memory, row.Owner, row.StaffID = v.ClientID, body, v.Owner, v.StaffID
	row.WaitingSince, row.UpdatedAt = v.WaitingSince, a.deps.Now()
	if row.Owner != persistence.ConversationHuman {
		row.Owner, row.WaitingSince, row.StaffID = persistence.ConversationBot, time.Time{}, ""
	} else if row.WaitingSince.IsZero() {
		row.WaitingSince = row.UpdatedAt
	}
	// saved, not row: a transaction the store retries (a serialization
	// failure at COMMIT) must write from the same version again.
	var saved persistence.Conversation
	err = a.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		saved, err = tx.ConversationPut(ctx, row)
		return err
	})
	if err != nil {
		a.conv = conversation{}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	a.conv = conversation{loaded: true, row: saved, phone: phone, memory: mem}
	if !a.active {
		a.active = true
		a.deps.Metrics.conversations.Inc()
	}
	return nil
}

func (a *sessionActor) converse(m *Converse) *ConverseReply {
	if a.deps.Bot == nil {
		return &ConverseReply{Err: ErrNoBot}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.TurnTimeout)
	defer cancel()
	if err := a.loadConversation(ctx); err != nil {
		return &ConverseReply{Err: fmt.Errorf("%w: conversation: %w", ErrUnavailable, err)}
	}
	mem, view, err := a.deps.Bot.Turn(ctx, m.Phone, m.Msg, a.conv.memory)
	if err != nil {
		return &ConverseReply{Err: err}
	}
	return &ConverseReply{Err: a.storeConversation(ctx, m.Phone, mem, view)}
}

func (a *sessionActor) staff(m *StaffAct) *StaffActReply {
	if a.deps.Bot == nil {
		return &StaffActReply{Err: ErrNoBot}
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.TurnTimeout)
	defer cancel()
	if err := a.loadConversation(ctx); err != nil {
		return &StaffActReply{Err: fmt.Errorf("%w: conversation: %w", ErrUnavailable, err)}
	}
	if a.conv.row.Version == 0 {
		return &StaffActReply{Err: fmt.Errorf("session: %w: no conversation", persistence.ErrNotFound)}
	}
	mem, view, err := a.deps.Bot.Staff(ctx, a.conv.phone, *m, a.conv.memory)
	if err != nil {
		return &StaffActReply{Err: err}
	}
	if err := a.storeConversation(ctx, a.conv.phone, mem, view); err != nil {
		return &StaffActReply{Err: err}
	}
	view.Owner, view.WaitingSince, view.StaffID = a.conv.row.Owner, a.conv.row.WaitingSince, a.conv.row.StaffID
	view.Updated = a.conv.row.UpdatedAt
	return &StaffActReply{Conversation: view}
}
