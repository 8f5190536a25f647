package persistence

import (
	"context"
	"time"
)

// WhatsApp bot conversations (docs/bot.md): one row per phone, written by
// the phone's session actor with every turn. The memory itself (the
// client's words, the pending proposal) is sealed by the actor and opaque
// to the store; the columns beside it are what staff lists and sweeps
// need, and hold no personal data: the phone's blind index, the client's
// id, who owns the conversation and since when it waits for a person.
// Anonymisation deletes the client's rows (UserAnonymise).

// Conversation owners.
const (
	ConversationBot   = "bot"
	ConversationHuman = "human"
)

// Conversation is one phone's stored conversation.
type Conversation struct {
	PhoneKey string // the phone's blind index, hex (the session actor's key)
	ClientID string // "" until the bot knew the client
	Memory   []byte // sealed by the session actor
	Owner    string // ConversationBot or ConversationHuman
	// WaitingSince is when it asked for a person (zero: not waiting).
	WaitingSince time.Time
	// StaffID is the person who took it over ("" while it waits).
	StaffID   string
	Version   int64 // optimistic concurrency; 0 means not yet stored
	UpdatedAt time.Time
}

// ConversationStore keeps the bot's conversations.
type ConversationStore interface {
	// ConversationGet returns the phone's conversation or ErrNotFound.
	ConversationGet(ctx context.Context, phoneKey string) (Conversation, error)
	// ConversationPut stores c if the stored version equals c.Version (0:
	// must not exist) and returns it with Version incremented; ErrConflict
	// on a mismatch (another activation wrote it, or it was erased).
	ConversationPut(ctx context.Context, c Conversation) (Conversation, error)
	// ConversationListHuman returns the conversations a person owns or is
	// waiting for, oldest wait first (then oldest update), at most limit.
	ConversationListHuman(ctx context.Context, limit int) ([]Conversation, error)
	// ConversationDeleteIdle deletes conversations owned by the bot and
	// not updated since before, at most limit; returns how many.
	ConversationDeleteIdle(ctx context.Context, before time.Time, limit int) (int, error)
}

// NormalizeConversation checks c for ConversationPut.
func NormalizeConversation(c Conversation) (Conversation, error) {
	if err := checkID("phone key", c.PhoneKey); err != nil {
		return c, err
	}
	if c.Owner == "" {
		c.Owner = ConversationBot
	}
	if c.Owner != ConversationBot && c.Owner != ConversationHuman {
		return c, invalidf("conversation %s: owner %q", c.PhoneKey, c.Owner)
	}
	if c.Memory == nil {
		c.Memory = []byte{}
	}
	if c.Version < 0 {
		return c, invalidf("conversation %s: negative version", c.PhoneKey)
	}
	c.UpdatedAt, c.WaitingSince = CanonicalTime(c.UpdatedAt), CanonicalTime(c.WaitingSince)
	return c, nil
}
