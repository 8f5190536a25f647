package bot

import (
	"context"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/persistence"
)

// deterministic is the dialogue without a model: greeting, services,
// "mañana a las 3" → proposal, my appointments, cancel, talk to a person.
// What it does not understand goes to a person, never to an apology loop.
func (t *turn) deterministic(ctx context.Context, norm string) error {
	list, err := t.services(ctx)
	if err != nil {
		return err
	}
	u := Understand(norm, list, t.now.In(t.loc))
	t.s.d.Metrics.intent(string(u.Intent))
	switch u.Intent {
	case IntentHuman:
		return t.handoff(ctx, "handoff")
	case IntentMine:
		return t.mine(ctx)
	case IntentCancel:
		return t.cancel(ctx)
	case IntentBook:
		return t.book(ctx, u, list)
	case IntentServices:
		return t.reply(ctx, say(t.lang, "services", t.serviceList(list)))
	case IntentGreet:
		return t.reply(ctx, say(t.lang, "greet"))
	case IntentThanks:
		return t.reply(ctx, say(t.lang, "thanks"))
	case IntentYes, IntentNo:
		if t.mem.Pending != nil {
			return t.reply(ctx, say(t.lang, "tap_button"))
		}
	}
	if t.mem.Draft != nil {
		return t.book(ctx, u, list)
	}
	return t.handoff(ctx, "handoff")
}

// book merges what the message says with the draft and proposes once it
// knows the service and the time.
func (t *turn) book(ctx context.Context, u Understood, list []persistence.Service) error {
	d := t.mem.Draft
	if d == nil {
		d = &Draft{}
	}
	if u.Service != nil {
		d.ServiceID = u.Service.ID
	}
	if !u.Day.IsZero() {
		d.Day = u.Day
	}
	if u.ClockSet {
		d.Clock, d.ClockSet = int64(u.Clock/time.Minute), true
	}
	t.mem.Draft = d
	var sv *persistence.Service
	for i := range list {
		if list[i].ID == d.ServiceID {
			sv = &list[i]
		}
	}
	if sv == nil {
		return t.reply(ctx, say(t.lang, "which_service", t.serviceList(list)))
	}
	if !d.ClockSet {
		return t.reply(ctx, say(t.lang, "which_time", sv.Name))
	}
	day := d.Day
	if day.IsZero() {
		n := t.now.In(t.loc)
		day = time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, t.loc)
	}
	want := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, t.loc).Add(time.Duration(d.Clock) * time.Minute)
	return t.propose(ctx, *sv, want, "")
}

func (t *turn) mine(ctx context.Context) error {
	list, err := t.upcoming(ctx)
	if err != nil {
		return t.bookingError(ctx, err)
	}
	if len(list) == 0 {
		return t.reply(ctx, say(t.lang, "mine_none"))
	}
	var b strings.Builder
	for _, a := range list {
		sv, _ := t.serviceByID(ctx, a.ServiceID)
		b.WriteString("• " + sv.Name + ": " + t.when(a.Start) + "\n")
	}
	return t.reply(ctx, say(t.lang, "mine", strings.TrimRight(b.String(), "\n")))
}

// cancel proposes cancelling the one upcoming appointment, or asks which
// of up to three.
func (t *turn) cancel(ctx context.Context) error {
	list, err := t.upcoming(ctx)
	if err != nil {
		return t.bookingError(ctx, err)
	}
	switch len(list) {
	case 0:
		return t.reply(ctx, say(t.lang, "cancel_none"))
	case 1:
		return t.proposeCancel(ctx, list[0].ID)
	}
	var bs []whatsapp.Button
	for _, a := range list[:min(len(list), whatsapp.MaxButtons)] {
		title := a.Start.In(t.loc).Format("02/01 15:04")
		bs = append(bs, whatsapp.Button{ID: "pickcancel:" + a.ID, Title: title})
	}
	return t.buttons(ctx, say(t.lang, "cancel_which"), bs)
}
