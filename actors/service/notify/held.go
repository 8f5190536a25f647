package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spa-engine/spa/actors/waitlist"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// KindAppointmentHeld tells a client that a slot is held for them until
// its deposit is paid: until when, and how much. Only holds that wait for
// a deposit speak. A hold without one is confirmed by the client in the
// same breath in the app or the bot (a message per hold would be noise),
// and a waitlist offer's hold has its own message (waitlist_offer).
const KindAppointmentHeld Kind = "appointment_held"

// varDeposit is the deposit the hold waits for.
var varDeposit = Var{"Deposit", TypeMoney, "$40.000 COP"}

// heldIntent is the message a new hold asks for, if any. The appointment
// is read again: a hold already confirmed, cancelled or lapsed by the
// time its event is handled says nothing, and the expiry and the deposit
// are the stored ones. There is no payment link to put in the message:
// a deposit's checkout exists only once the client asks to pay
// (POST /v1/appointments/{id}/payments), so the text sends them to the app.
func (s *Service) heldIntent(ctx context.Context, ev *messages.AppointmentChanged) (intent, bool, error) {
	if ev.FromStatus != "" || ev.ToStatus != string(persistence.StatusHeld) || ev.ClientId == "" ||
		strings.HasPrefix(ev.AppointmentId, waitlist.OfferID("")) {
		return intent{}, false, nil
	}
	// Most holds ask for no deposit, and the event says so: reading the
	// appointment for each of them was a transaction per hold (a fifth of
	// the server's CPU under spread). Events from before the field still
	// read it.
	if ev.DepositMinor != nil && ev.GetDepositMinor() <= 0 {
		return intent{}, false, nil
	}
	var ap persistence.Appointment
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		ap, err = tx.AppointmentGet(ctx, ev.AppointmentId)
		return err
	})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return intent{}, false, nil
	case err != nil:
		return intent{}, false, err
	}
	if ap.Status != persistence.StatusHeld || ap.DepositMinor <= 0 || !ap.HoldExpiresAt.After(s.deps.Now()) {
		return intent{}, false, nil
	}
	return intent{kind: KindAppointmentHeld, userID: ap.ClientID, staffID: ap.StaffID, serviceID: ap.ServiceID,
		start: ap.Start, expires: ap.HoldExpiresAt, amountMinor: ap.DepositMinor, currency: persistence.CurrencyCOP,
		cause: fmt.Sprintf("appointment:%s:held:v%d", ap.ID, ev.Version)}, true, nil
}
