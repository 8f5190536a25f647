package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/providers/whatsapp/cswindow"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
)

// The bot as the phone's session actor calls it (session.Bot): the actor
// keeps the memory, sealed and stored, and hands it in with each message
// or staff action; the bot decodes it, answers and hands back the next.

// Window is WhatsApp's customer-service window: a person may write free
// text this long after the client's last message; later only a template.
// The rule is cswindow's, shared with the notification service.
const Window = cswindow.Length

// Errors of staff actions.
var (
	ErrNotTaken     = fault.New(fault.CodeConflict, "take the conversation over before replying")
	ErrTakenByOther = fault.New(fault.CodeConflict, "another person has taken this conversation over")
	ErrWindowClosed = fault.New(fault.CodeConflict, "the client wrote more than 24 hours ago: WhatsApp allows only a template now, and none is approved for staff replies (staff_reply in SPA_WHATSAPP_TEMPLATES)")
)

// Session adapts the Service to session.Bot.
type Session struct{ S *Service }

var _ session.Bot = Session{}

func decodeMemory(raw []byte) Memory {
	var m Memory
	if len(raw) > 0 && json.Unmarshal(raw, &m) != nil {
		return Memory{} // unreadable: the conversation starts again
	}
	return m
}

// View is what the session actor stores beside the sealed memory.
func View(m Memory) session.ConversationView {
	return session.ConversationView{ClientID: m.ClientID, Owner: m.owner(), StaffID: m.StaffID, WaitingSince: m.Waiting, Updated: m.Updated}
}

// Turn answers one inbound message.
func (s Session) Turn(ctx context.Context, phone string, in session.Inbound, raw []byte) ([]byte, session.ConversationView, error) {
	next, err := s.S.Handle(ctx, Inbound{ID: in.ID, Phone: phone, Time: in.Time, Text: in.Text, Payload: in.Payload}, decodeMemory(raw))
	if err != nil {
		return nil, session.ConversationView{}, err
	}
	b, err := json.Marshal(next)
	return b, View(next), err
}

// Staff applies a person's action.
func (s Session) Staff(ctx context.Context, phone string, act session.StaffAct, raw []byte) ([]byte, session.ConversationView, error) {
	mem := decodeMemory(raw)
	now := s.S.d.Now()
	switch act.Action {
	case session.StaffTake:
		if mem.owner() == OwnerHuman && mem.StaffID != "" && mem.StaffID != act.StaffID {
			return nil, session.ConversationView{}, ErrTakenByOther
		}
		// A client who asked for a person was told one would answer; one
		// whose conversation a person takes over unasked is told now.
		told := mem.owner() == OwnerHuman
		if mem.Waiting.IsZero() {
			mem.Waiting = now
		}
		mem.Owner, mem.OwnerSince, mem.StaffID = OwnerHuman, now, act.StaffID
		mem.Updated = now
		if !told {
			s.notice(ctx, phone, &mem, "handoff_taken", now)
		}
	case session.StaffReply:
		if mem.owner() != OwnerHuman || mem.StaffID == "" {
			return nil, session.ConversationView{}, ErrNotTaken
		}
		if mem.StaffID != act.StaffID {
			return nil, session.ConversationView{}, ErrTakenByOther
		}
		if windowOpen(&mem, now) {
			if _, err := s.S.d.Sender.SendText(ctx, phone, act.Text); err != nil {
				return nil, session.ConversationView{}, fmt.Errorf("bot: send: %w", err)
			}
		} else {
			if s.S.d.StaffTemplate == nil {
				return nil, session.ConversationView{}, ErrWindowClosed
			}
			if err := s.S.d.StaffTemplate(ctx, phone, act.Text); err != nil {
				return nil, session.ConversationView{}, fmt.Errorf("bot: send the template: %w", err)
			}
		}
		mem.add("staff", act.Text, now)
	case session.StaffRelease, session.StaffExpire:
		if mem.owner() != OwnerHuman {
			break
		}
		mem.Owner, mem.OwnerSince, mem.Waiting, mem.StaffID = OwnerBot, now, time.Time{}, ""
		mem.Pending, mem.Draft = nil, nil
		mem.Updated = now
		s.notice(ctx, phone, &mem, "handoff_back", now)
	default:
		return nil, session.ConversationView{}, fault.Invalid("unknown staff action " + act.Action)
	}
	b, err := json.Marshal(mem)
	return b, View(mem), err
}

// windowOpen says whether free text may still reach the client: the one
// call to WhatsApp's 24-hour rule (cswindow, shared with notifications).
func windowOpen(m *Memory, now time.Time) bool { return cswindow.Open(m.lastFromClient(), now) }

// notice tells the client who answers now (a person took over, the bot is
// back), inside the 24-hour window only (outside it only templates go,
// and a notice is not worth one). It is a courtesy: a send that fails is
// logged and the staff action stands.
func (s Session) notice(ctx context.Context, phone string, mem *Memory, key string, now time.Time) {
	if !windowOpen(mem, now) {
		return
	}
	text := say(mem.Lang, key)
	if _, err := s.S.d.Sender.SendText(ctx, phone, text); err != nil {
		s.S.d.Log.Warn("bot: hand-off notice not sent", "notice", key, "err", err)
		return
	}
	mem.add("bot", text, now)
}

// lastFromClient is when the client last wrote (zero: never).
func (m *Memory) lastFromClient() time.Time {
	for i := len(m.Turns) - 1; i >= 0; i-- {
		if m.Turns[i].Role == "user" {
			return m.Turns[i].At
		}
	}
	return time.Time{}
}
