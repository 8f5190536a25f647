package notify

import (
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Kind is what a notification tells the client.
type Kind string

// The kinds of this slice (docs/notifications.md).
const (
	KindAppointmentConfirmed   Kind = "appointment_confirmed"
	KindAppointmentCancelled   Kind = "appointment_cancelled"
	KindAppointmentRescheduled Kind = "appointment_rescheduled"
	KindWaitlistOffer          Kind = "waitlist_offer"
	// KindAppointmentFollowUp thanks the client after a completed visit
	// and invites them to book again: marketing (quiet hours hold it,
	// the client may turn it off).
	KindAppointmentFollowUp Kind = "appointment_follow_up"
)

// Kinds are every kind, for the admin filter.
func Kinds() []Kind {
	return []Kind{KindAppointmentConfirmed, KindAppointmentCancelled, KindAppointmentRescheduled, KindWaitlistOffer,
		KindReminder24h, KindReminder2h, KindPaymentApproved, KindPaymentDeclined, KindPaymentRefunded,
		KindOrderPaid, KindOrderFulfilled, KindOrderCancelled, KindReturnProcessed, KindAppointmentFollowUp, KindAppointmentHeld}
}

// categories: what each kind is about, for the client's preferences and
// quiet hours (only marketing waits for them).
var categories = map[Kind]persistence.NotificationCategory{
	KindAppointmentConfirmed:   persistence.CategoryBooking,
	KindAppointmentCancelled:   persistence.CategoryBooking,
	KindAppointmentRescheduled: persistence.CategoryBooking,
	KindWaitlistOffer:          persistence.CategoryBooking,
	KindReminder24h:            persistence.CategoryBooking,
	KindReminder2h:             persistence.CategoryBooking,
	KindPaymentApproved:        persistence.CategoryPayments,
	KindPaymentDeclined:        persistence.CategoryPayments,
	KindPaymentRefunded:        persistence.CategoryPayments,
	KindOrderPaid:              persistence.CategoryPayments,
	KindOrderFulfilled:         persistence.CategoryPayments,
	KindOrderCancelled:         persistence.CategoryPayments,
	KindReturnProcessed:        persistence.CategoryPayments,
	KindAppointmentFollowUp:    persistence.CategoryMarketing,
	KindAppointmentHeld:        persistence.CategoryBooking,
}

// DefaultChannels is the channel order of every kind: WhatsApp, which
// Colombian clients read, then SMS when WhatsApp refuses the message (no
// WhatsApp on the number, no WhatsApp provider configured), then email
// when SMS refuses it too and the client's profile has an email. A
// channel the client has no address on is skipped.
var DefaultChannels = []sender.Channel{sender.ChannelWhatsApp, sender.ChannelSMS, sender.ChannelEmail}

// intent is one message an event asks for, before it has a channel.
type intent struct {
	// cause identifies what the message is about, once: the notification
	// id is cause + ":" + channel.
	cause     string
	kind      Kind
	userID    string
	staffID   string
	serviceID string
	start     time.Time
	previous  time.Time // rescheduled: where it was
	expires   time.Time // waitlist offer: when the held slot lapses
	// payments: the amount, its currency and what it paid for
	amountMinor int64
	currency    string
	paid        persistence.PaymentKind
	// the shop: the order, how it reaches the client, a return's outcome
	order      string
	fulfilment string
	outcome    string
}

// appointmentIntent is the message an appointment change asks for, if
// any. Only changes the client cares to hear about speak: a confirmation
// (from a hold or made confirmed), the cancellation and the move of a
// confirmed appointment, and after a completed visit the follow-up
// (marketing). Holds, expiries of holds (the waitlist offer said when it
// would lapse), check-ins and no-shows are silent.
func appointmentIntent(ev *messages.AppointmentChanged) (intent, bool) {
	confirmed := string(persistence.StatusConfirmed)
	in := intent{userID: ev.ClientId, staffID: ev.StaffId, serviceID: ev.ServiceId, start: ev.Start.AsTime()}
	var what string
	switch {
	case ev.ToStatus == confirmed && ev.FromStatus != confirmed:
		in.kind, what = KindAppointmentConfirmed, "confirmed"
	case ev.ToStatus == string(persistence.StatusCancelled) && ev.FromStatus == confirmed:
		in.kind, what = KindAppointmentCancelled, "cancelled"
	case ev.ToStatus == confirmed && ev.FromStatus == confirmed && ev.PreviousStart != nil:
		in.kind, what = KindAppointmentRescheduled, "rescheduled"
		in.previous = ev.PreviousStart.AsTime()
	case ev.ToStatus == string(persistence.StatusCompleted) && ev.FromStatus != ev.ToStatus:
		in.kind, what = KindAppointmentFollowUp, "follow_up"
	default:
		return in, false
	}
	// The version tells one move of an appointment from the next: each
	// reschedule is its own message, a redelivery of one is not.
	in.cause = fmt.Sprintf("appointment:%s:%s:v%d", ev.AppointmentId, what, ev.Version)
	return in, ev.ClientId != "" && ev.AppointmentId != ""
}

// waitlistIntent is the offer of a freed slot to a waiting client: one
// per entry and offered hold.
func waitlistIntent(ev *messages.WaitlistOffered) (intent, bool) {
	in := intent{kind: KindWaitlistOffer, userID: ev.ClientId, staffID: ev.StaffId, serviceID: ev.ServiceId,
		start: ev.Start.AsTime(), expires: ev.HoldExpiresAt.AsTime(),
		cause: fmt.Sprintf("waitlist:%s:offer:%s", ev.EntryId, ev.AppointmentId)}
	return in, ev.ClientId != "" && ev.EntryId != ""
}
