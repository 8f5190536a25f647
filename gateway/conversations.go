package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/bot"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
)

// The WhatsApp bot's hand-off desk (docs/bot.md, Hand-off): staff list
// the conversations waiting for a person, take one over, reply, and hand
// it back. The use case (bot.Desk) sends each action to the phone's
// session actor and audits it; a reply sends a WhatsApp message, so it
// takes an Idempotency-Key at the edge (WrapExternal); taking over and
// handing back are the same state however often they are applied.

var errNoDesk = fault.Unavailable("the WhatsApp bot is off on this node")

func (s *server) registerConversations(app *fiber.App) {
	staff := RequireRole(booking.StaffRoles...)
	app.Get("/v1/staff/conversations", staff, s.listConversations)
	app.Get("/v1/staff/conversations/:id", staff, s.getConversation)
	app.Post("/v1/staff/conversations/:id/take", staff, s.conversationAction(session.StaffTake))
	app.Post("/v1/staff/conversations/:id/reply", staff, s.external(s.conversationAction(session.StaffReply)))
	app.Post("/v1/staff/conversations/:id/release", staff, s.conversationAction(session.StaffRelease))
}

type turnJSON struct {
	Role string    `json:"role"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

type conversationJSON struct {
	ID                string     `json:"id"`
	Phone             string     `json:"phone"`
	ClientID          string     `json:"client_id"`
	Owner             string     `json:"owner"`
	StaffID           string     `json:"staff_id,omitempty"`
	WaitingSince      *time.Time `json:"waiting_since"`
	UpdatedAt         time.Time  `json:"updated_at"`
	LastClientMessage *time.Time `json:"last_client_message"`
	WindowOpen        bool       `json:"window_open"`
	Summary           string     `json:"summary,omitempty"`
	Transcript        []turnJSON `json:"transcript"`
}

func conversationView(c bot.Conversation) conversationJSON {
	out := conversationJSON{ID: c.ID, Phone: c.Phone, ClientID: c.ClientID, Owner: c.Owner, StaffID: c.StaffID,
		UpdatedAt: c.Updated.UTC(), WindowOpen: c.WindowOpen, Summary: c.Summary, Transcript: make([]turnJSON, len(c.Turns))}
	if !c.WaitingSince.IsZero() {
		t := c.WaitingSince.UTC()
		out.WaitingSince = &t
	}
	if !c.LastClientMessage.IsZero() {
		t := c.LastClientMessage.UTC()
		out.LastClientMessage = &t
	}
	for i, t := range c.Turns {
		out.Transcript[i] = turnJSON{Role: t.Role, Text: t.Text, At: t.At.UTC()}
	}
	return out
}

func (s *server) listConversations(c *fiber.Ctx) error {
	if s.deps.Conversations == nil {
		return errNoDesk
	}
	var f fieldErrors
	limit := limitQuery(c, &f, bot.DefaultWaitingShown, bot.MaxWaitingShown)
	if err := f.err(); err != nil {
		return err
	}
	list, err := s.deps.Conversations.Waiting(c.UserContext(), s.caller(c), limit)
	if err != nil {
		return err
	}
	out := make([]conversationJSON, len(list))
	for i, cv := range list {
		out[i] = conversationView(cv)
	}
	return c.JSON(fiber.Map{"conversations": out})
}

func (s *server) getConversation(c *fiber.Ctx) error {
	if s.deps.Conversations == nil {
		return errNoDesk
	}
	cv, err := s.deps.Conversations.Get(c.UserContext(), s.caller(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(conversationView(cv))
}

// conversationAction handles take, reply and release.
func (s *server) conversationAction(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if s.deps.Conversations == nil {
			return errNoDesk
		}
		var in struct {
			Text string `json:"text"`
		}
		if action == session.StaffReply {
			if err := decodeJSON(c, &in); err != nil {
				return err
			}
		}
		cv, err := s.deps.Conversations.Act(c.UserContext(), s.caller(c), c.Params("id"), action, in.Text)
		if err != nil {
			return err
		}
		return c.JSON(conversationView(cv))
	}
}
