package payments

import (
	"context"
	"errors"
	"time"

	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Deposits of appointments that ended without the service
// (docs/payments.md, "Cancellation and no-show"). An attached deposit
// (in deposits) belongs to its booking; when the booking is cancelled
// within the service's cancellation policy it is refunded (voided at
// Wompi, else client credit), and when it is cancelled outside the policy
// or the client does not come, the studio keeps it as a fee
// (deposits → deposit_fees). The decision is made from the store, never
// from the event: the cancelling transition's time and actor as the staff
// member's actor wrote them, the appointment's start and the service's
// cut-off. Like the rest of the follow-up it is idempotent: the refund is
// a version-checked change of the intent, the fee a movement whose key is
// unique per intent, and a deposit refunded or kept is not settled again.

// FollowAppointment settles the deposits of an appointment that was
// cancelled or marked no-show: it is the payments side of the
// AppointmentChanged follow-up (cmd/spa), so an error (the store failed)
// asks for the event again, and a second delivery changes nothing. Wompi
// being unavailable is not an error here: reconciliation catches up that,
// and whatever else the events missed (PaymentDepositsToSettle). Other
// changes are ignored.
func (s *Service) FollowAppointment(ctx context.Context, ev *messages.AppointmentChanged) error {
	if !s.Enabled() || s.deposits == nil || ev.GetAppointmentId() == "" {
		return nil
	}
	switch persistence.AppointmentStatus(ev.GetToStatus()) {
	case persistence.StatusCancelled, persistence.StatusNoShow:
	default:
		return nil
	}
	var intents []persistence.PaymentIntent
	if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		intents, err = tx.PaymentIntentsOf(ctx, persistence.PaymentDeposit, ev.GetAppointmentId())
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, in := range intents {
		if in.Status != persistence.IntentApproved {
			continue
		}
		err := s.followDeposit(ctx, in.ID)
		if errors.Is(err, wompi.ErrUnavailable) {
			// The consumer takes one event at a time: waiting out Wompi
			// here would hold back every other appointment's follow-up
			// (rooms, waitlist). Reconciliation refunds it once Wompi
			// answers (PaymentDepositsToSettle).
			s.d.Log.Warn("deposit refund left for reconciliation: Wompi unavailable", "intent", in.ID, "err", err)
			continue
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ended reports whether ap is over without being a live booking.
func ended(ap persistence.Appointment) bool {
	switch ap.Status {
	case persistence.StatusCancelled, persistence.StatusNoShow, persistence.StatusCompleted:
		return true
	}
	return false
}

// wasConfirmed reports whether the appointment was ever a booking.
func wasConfirmed(transitions []persistence.Transition) bool {
	for _, tr := range transitions {
		if tr.To == persistence.StatusConfirmed {
			return true
		}
	}
	return false
}

// settleEnded refunds or keeps the attached deposit in of ap when ap was
// cancelled or marked no-show; a live or completed booking keeps its
// deposit attached.
func (s *Service) settleEnded(ctx context.Context, in persistence.PaymentIntent, ap persistence.Appointment, transitions []persistence.Transition) error {
	switch ap.Status {
	case persistence.StatusNoShow:
		return s.keepFee(ctx, in, "the client did not come")
	case persistence.StatusCancelled:
	default:
		return nil
	}
	var cancel persistence.Transition
	for _, tr := range transitions {
		if tr.To == persistence.StatusCancelled {
			cancel = tr
		}
	}
	if cancel.At.IsZero() {
		return errors.New("payments: cancelled appointment " + ap.ID + " has no cancelling transition")
	}
	var cutoff time.Duration
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		sv, err := tx.ServiceGet(ctx, ap.ServiceID)
		cutoff = sv.CancelCutoff
		return err
	})
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return err
	}
	refund, why := withinPolicy(ap, cancel, cutoff)
	if !refund {
		return s.keepFee(ctx, in, why)
	}
	return s.refund(ctx, in, persistence.AccountDeposits, why)
}

// withinPolicy decides whether the cancellation cancel of ap refunds its
// deposit, and says why. Anyone but the client cancelling (staff, or the
// system on the studio's behalf) is the studio's decision: refunded. The
// client's own cancellation is refunded when it was made at or before
// start − cutoff (the actor refuses a client's later one unless the
// client's account also has a staff role and overrode it). A service
// without a cut-off refunds every cancellation. A service deleted since
// counts as having none.
func withinPolicy(ap persistence.Appointment, cancel persistence.Transition, cutoff time.Duration) (bool, string) {
	switch {
	case cancel.ActorID != ap.ClientID:
		return true, "the appointment was cancelled by the studio"
	case cutoff <= 0 || !cancel.At.After(ap.Start.Add(-cutoff)):
		return true, "the appointment was cancelled by the client within the cancellation policy"
	}
	return false, "the appointment was cancelled by the client inside the cancellation cut-off"
}

// keepFee keeps an attached deposit as the studio's revenue
// (deposits → deposit_fees), once: the movement's key is unique per
// intent, and a deposit no longer in deposits (refunded) is left alone.
// The intent stays approved: the money was taken and stays taken.
func (s *Service) keepFee(ctx context.Context, in persistence.PaymentIntent, why string) error {
	now := s.now()
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		cur, at, err := approvedDepositAt(ctx, tx, in.ID)
		if err != nil || at != persistence.AccountDeposits {
			return err
		}
		if err := s.post(ctx, tx, cur, "fee/"+cur.ID, "deposit kept: "+why,
			persistence.AccountDeposits, persistence.AccountDepositFees, now); err != nil {
			return err
		}
		return auditEntry(ctx, tx, system(""), "payment.deposit_kept", "payment/"+cur.ID, now,
			map[string]any{"subject": string(cur.Kind) + "/" + cur.SubjectID, "amount_minor": cur.AmountMinor, "reason": why})
	})
	if errors.Is(err, persistence.ErrConflict) {
		return nil // kept by a concurrent follow-up
	}
	return err
}
