package bot

import (
	"time"
	"unicode/utf8"
)

// Owners of a conversation.
const (
	OwnerBot   = "bot"
	OwnerHuman = "human"
)

// Bounds of a conversation's memory: it lives in the phone's session
// actor and is written with every turn, so it stays small.
const (
	MaxTurns       = 12
	MaxTurnRunes   = 600
	MaxSummaryRune = 1200
	// IdleExpiry forgets a conversation nobody wrote in for this long
	// (the customer-service window is 24 hours).
	IdleExpiry = 24 * time.Hour
)

// Memory is one phone's conversation: what the bot remembers between
// messages. It holds personal data (the client's words), so it is stored
// sealed and erased with the client (docs/bot.md).
type Memory struct {
	Turns []Turn `json:"turns,omitempty"`
	// Summary keeps what fell out of Turns, oldest first, bounded.
	Summary string `json:"summary,omitempty"`
	// Pending is the proposal the buttons of the last message confirm.
	Pending *Proposal `json:"pending,omitempty"`
	// Draft is a booking being assembled over several messages (a
	// service without a time yet, or a time without a service).
	Draft *Draft `json:"draft,omitempty"`
	// Owner is OwnerBot or OwnerHuman; OwnerSince when it last changed;
	// Waiting when the conversation asked for a person (zero: not waiting).
	Owner      string    `json:"owner,omitempty"`
	OwnerSince time.Time `json:"owner_since,omitzero"`
	Waiting    time.Time `json:"waiting,omitzero"`
	// StaffID is who took it over.
	StaffID string `json:"staff_id,omitempty"`
	// ClientID is the client the phone belongs to (anonymising the client
	// erases the conversation).
	ClientID string `json:"client_id,omitempty"`
	Lang     string `json:"lang,omitempty"`
	// Seen are the provider message ids handled, newest last (a bounded
	// second guard against redelivery besides the inbox).
	Seen    []string  `json:"seen,omitempty"`
	Updated time.Time `json:"updated,omitzero"`
}

// Turn is one message of the conversation.
type Turn struct {
	Role string    `json:"role"` // "user", "bot", "staff"
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Proposal is a change waiting for the client's button: a held booking, or
// a cancellation or move of an appointment.
type Proposal struct {
	Kind          string    `json:"kind"` // "book", "cancel", "reschedule"
	AppointmentID string    `json:"appointment_id"`
	ServiceID     string    `json:"service_id,omitempty"`
	Start         time.Time `json:"start,omitzero"`
	// NewStart is where a reschedule moves the appointment.
	NewStart time.Time `json:"new_start,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
}

// Draft is a booking being assembled.
type Draft struct {
	ServiceID string    `json:"service_id,omitempty"`
	Day       time.Time `json:"day,omitzero"`
	Clock     int64     `json:"clock_min,omitempty"` // minutes after midnight, -1 unset
	ClockSet  bool      `json:"clock_set,omitempty"`
}

// Fresh returns m, or an empty memory when it expired at now.
func (m Memory) Fresh(now time.Time) Memory {
	if !m.Updated.IsZero() && now.Sub(m.Updated) > IdleExpiry && m.Owner != OwnerHuman {
		return Memory{}
	}
	return m
}

// owner is m's owner, the bot when unset.
func (m *Memory) owner() string {
	if m.Owner == "" {
		return OwnerBot
	}
	return m.Owner
}

// add appends a turn, folding the oldest into the summary past MaxTurns.
func (m *Memory) add(role, text string, at time.Time) {
	m.Turns = append(m.Turns, Turn{Role: role, Text: truncate(text, MaxTurnRunes), At: at})
	for len(m.Turns) > MaxTurns {
		old := m.Turns[0]
		m.Turns = m.Turns[1:]
		m.Summary = truncateLeft(m.Summary+"\n"+old.Role+": "+old.Text, MaxSummaryRune)
	}
	m.Updated = at
}

// seen reports whether id was handled, and remembers it.
func (m *Memory) seen(id string) bool {
	if id == "" {
		return false
	}
	for _, s := range m.Seen {
		if s == id {
			return true
		}
	}
	m.Seen = append(m.Seen, id)
	if len(m.Seen) > 32 {
		m.Seen = m.Seen[len(m.Seen)-32:]
	}
	return false
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func truncateLeft(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[len(r)-n:])
}
