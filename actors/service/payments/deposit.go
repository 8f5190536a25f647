package payments

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Deposits (docs/payments.md, "Deposits"). A hold that needs a deposit is
// paid through an intent of kind deposit that expires with the hold. An
// appointment is written by one actor only, the staff member's, so an
// approval cannot confirm it inside the apply's transaction. It goes in
// two durable steps instead:
//
//  1. the apply (webhook or reconciliation) makes the intent approved and
//     posts the money to deposits_held, in one transaction;
//  2. the follow-up asks the staff member's actor to confirm (one
//     decision, written with its transition and event); confirmed, the
//     money moves to deposits (attached); refused (the hold lapsed or was
//     cancelled, and the slot may be someone else's), the payment is
//     voided at Wompi or, where Wompi cannot void it, refunded as client
//     credit, with a notice.
//
// The follow-up runs after every apply of a deposit and again in every
// reconciliation pass, so a crash between the steps delays it and loses
// nothing. It is idempotent: an approval already attached or refunded is
// left alone, and the actor answers a second confirm with the booking it
// made. A declined, failed or expired payment frees the slot at once (the
// hold is cancelled), unless another payment of the appointment is live.
// An attached deposit whose booking is then cancelled or marked no-show
// is refunded or kept as a fee (deposit_ended.go).

// Appointments is what deposits need of the booking use cases;
// *booking.Service is one.
type Appointments interface {
	// ConfirmPaid confirms ap for payment intentID: a *booking.Refused
	// when the calendar refuses, booking.ErrUndecided when it decided
	// nothing.
	ConfirmPaid(ctx context.Context, ap persistence.Appointment, intentID string) (persistence.Appointment, error)
	// ReleaseUnpaid cancels ap if it is still a hold.
	ReleaseUnpaid(ctx context.Context, ap persistence.Appointment, reason string) error
}

// EnableDeposits takes deposits online: apps confirms and releases their
// appointments. Call it before the service is used.
func (s *Service) EnableDeposits(apps Appointments) {
	s.deposits = apps
	s.Register(persistence.PaymentDeposit, DepositSettler{})
}

// DepositSettler holds an approved deposit in deposits_held, inside the
// apply's transaction, for the follow-up to attach or refund: what it
// pays is decided by the staff member's actor afterwards.
type DepositSettler struct{}

// Account is persistence.AccountDepositsHeld.
func (DepositSettler) Account() string { return persistence.AccountDepositsHeld }

// Settle accepts the approval when the appointment exists (to be
// confirmed or refunded by the follow-up); a payment for an appointment
// that does not exist goes to suspense for a human.
func (DepositSettler) Settle(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, _ order.Actor) (bool, string, error) {
	ap, err := tx.AppointmentGet(ctx, in.SubjectID)
	if errors.Is(err, persistence.ErrNotFound) {
		return false, "the appointment does not exist", nil
	}
	if err != nil {
		return false, "", err
	}
	if ap.ClientID != in.ClientID {
		return false, "the appointment is another client's", nil
	}
	return true, "", nil
}

// PayDeposit returns the checkout of the deposit still due on a held
// appointment: the live intent when there is one (created false), else a
// new one for the amount due (booking.DepositDue: the deposit less what a
// package session, vouchers or an earlier approved payment pay). The
// intent expires with the hold, and the link is signed with that expiry,
// so no payment can start after the slot is released; the hold is not
// extended while a payment is pending (ARCHITECTURE-BRIEF: holds expire by
// themselves). The hold's client pays; staff may create the link for any
// hold. It runs in tx and calls nothing remote.
func (s *Service) PayDeposit(ctx context.Context, tx persistence.Tx, by service.Caller, appointmentID string) (co Checkout, created bool, err error) {
	if err := allow(by, personRoles...); err != nil {
		return co, false, err
	}
	if !s.Enabled() || s.deposits == nil {
		return co, false, errDisabled
	}
	now := s.now()
	if appointmentID == "" || len(appointmentID) > 64 {
		return co, false, fault.NotFound("appointment not found")
	}
	ap, err := tx.AppointmentGet(ctx, appointmentID)
	if err != nil {
		return co, false, fault.IfNotFound(err, "appointment")
	}
	if ap.ClientID != by.Subject && !slices.Contains(staffRoles, by.Role) {
		return co, false, fault.NotFound("appointment not found")
	}
	switch {
	case ap.Status == persistence.StatusHeld && !ap.Live(now):
		return co, false, fault.New(fault.CodeHoldExpired, "")
	case ap.Status != persistence.StatusHeld:
		return co, false, fault.New(fault.CodeInvalidTransition, "the appointment is "+string(ap.Status)+" and takes no deposit")
	case !now.Add(MinPayWindow).Before(ap.HoldExpiresAt):
		return co, false, fault.New(fault.CodeHoldExpired, "the hold expires too soon to be paid online")
	}
	intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentDeposit, ap.ID)
	if err != nil {
		return co, false, err
	}
	for _, in := range intents {
		switch in.Status {
		case persistence.IntentPending:
			co.Intent = in
		case persistence.IntentApproved:
			return co, false, fault.Conflict("a deposit payment of this appointment was already approved")
		}
	}
	if co.Intent.ID == "" {
		due, err := booking.DepositDue(ctx, tx, ap)
		if err != nil {
			return co, false, err
		}
		if due <= 0 {
			return co, false, fault.Conflict("no deposit is due: confirm the appointment")
		}
		if co.Intent, err = s.createIntent(ctx, tx, by, persistence.PaymentIntent{Kind: persistence.PaymentDeposit, SubjectID: ap.ID,
			ClientID: ap.ClientID, AmountMinor: due, CreatedAt: now, ExpiresAt: ap.HoldExpiresAt}, "appointment"); err != nil {
			return co, false, err
		}
		created = true
	}
	co.URL, err = s.checkoutURL(co.Intent)
	return co, created, err
}

// StaleFollowUpAfter is how long after its approval a deposit whose
// follow-up keeps failing is put before a human (stale_follow_up), well
// before reconciliation stops retrying it (RecentWindow).
const StaleFollowUpAfter = time.Hour

// staleFollowUp opens the stale_follow_up exception of an approved deposit
// whose follow-up failed again StaleFollowUpAfter after its approval. The
// exception is opened once (its dedupe key); a failure to open it only
// logs (the next pass tries again).
func (s *Service) staleFollowUp(ctx context.Context, in persistence.PaymentIntent) {
	now := s.now()
	if in.Status != persistence.IntentApproved || now.Sub(in.UpdatedAt) < StaleFollowUpAfter {
		return
	}
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		return s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionStaleFollowUp,
			Dedupe: "stale_follow_up/" + in.ID, IntentID: in.ID, Reference: in.ID, TransactionID: in.TransactionID,
			AmountMinor: in.AmountMinor, Detail: "deposit approved at " + in.UpdatedAt.UTC().Format(time.RFC3339) +
				" is neither attached to appointment " + in.SubjectID + " nor refunded: its follow-up keeps failing"}, now)
	})
	if err != nil {
		s.d.Log.Warn("stale deposit follow-up not flagged", "intent", in.ID, "err", err)
	}
}

// lockFollow takes the follow-up lock of intent id.
func (s *Service) lockFollow(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.follow[h.Sum32()%uint32(len(s.follow))]
	m.Lock()
	return m.Unlock
}

// followDeposit brings a deposit intent's appointment in line with it:
// approved → confirmed and attached, or refunded; attached to an
// appointment that was then cancelled or marked no-show → refunded or
// kept as a fee (settleEnded); declined, error or expired → the hold
// released. Safe to call any number of times.
func (s *Service) followDeposit(ctx context.Context, id string) error {
	if s.deposits == nil {
		return nil
	}
	defer s.lockFollow(id)()
	var in persistence.PaymentIntent
	var ap persistence.Appointment
	var entries []persistence.LedgerEntry
	var others []persistence.PaymentIntent
	var transitions []persistence.Transition
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if in, err = tx.PaymentIntentGet(ctx, id); err != nil {
			return err
		}
		if in.Kind != persistence.PaymentDeposit {
			return nil
		}
		if ap, err = tx.AppointmentGet(ctx, in.SubjectID); err != nil {
			return err
		}
		if entries, err = tx.PaymentLedgerEntries(ctx, in.ID); err != nil {
			return err
		}
		if transitions, err = tx.TransitionList(ctx, ap.ID); err != nil {
			return err
		}
		others, err = tx.PaymentIntentsOf(ctx, persistence.PaymentDeposit, ap.ID)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) {
		return nil // no appointment: the approval went to suspense, for a human
	}
	if err != nil || in.Kind != persistence.PaymentDeposit {
		return err
	}
	switch in.Status {
	case persistence.IntentApproved:
		switch depositAt(entries, in) {
		case persistence.AccountDepositsHeld:
			if ended(ap) && wasConfirmed(transitions) {
				// Confirmed (at the desk, or by this payment before a crash
				// cut the follow-up) and ended since: the deposit was the
				// booking's, so it is attached and then settled like any.
				if err := s.attach(ctx, in); err != nil {
					return err
				}
				break
			}
			_, err := s.deposits.ConfirmPaid(ctx, ap, in.ID)
			var refused *booking.Refused
			switch {
			case err == nil:
				return s.attach(ctx, in)
			case errors.As(err, &refused):
				return s.refund(ctx, in, persistence.AccountDepositsHeld,
					"the appointment could not be confirmed ("+refused.Err.Error()+"); its hold had lapsed or was cancelled")
			}
			return err
		case persistence.AccountDeposits:
		default:
			return nil // refunded or kept already, or in suspense
		}
		return s.settleEnded(ctx, in, ap, transitions)
	case persistence.IntentDeclined, persistence.IntentError, persistence.IntentExpired:
		if ap.Status != persistence.StatusHeld {
			return nil
		}
		for _, o := range others {
			if o.ID != in.ID && (o.Status == persistence.IntentPending || o.Status == persistence.IntentApproved) {
				return nil // another payment of the hold is under way or paid
			}
		}
		reason := "deposit declined"
		switch in.Status {
		case persistence.IntentError:
			reason = "deposit payment failed"
		case persistence.IntentExpired:
			reason = "deposit payment expired"
		}
		return s.deposits.ReleaseUnpaid(ctx, ap, reason)
	}
	return nil
}

// approvedDepositAt reads intent id in tx and, while it is approved, the
// account its money sits in ("" otherwise): what a refund or a fee checks
// before it moves the money, so a second one moves nothing.
func approvedDepositAt(ctx context.Context, tx persistence.Tx, id string) (persistence.PaymentIntent, string, error) {
	cur, err := tx.PaymentIntentGet(ctx, id)
	if err != nil || cur.Status != persistence.IntentApproved {
		return cur, "", err
	}
	entries, err := tx.PaymentLedgerEntries(ctx, cur.ID)
	if err != nil {
		return cur, "", err
	}
	return cur, depositAt(entries, cur), nil
}

// depositAt is the account an approved intent's money sits in, read from
// its own movements in write order: the account credited by the last of
// approval, attachment, void, credit refund or fee. deposits_held until
// attached, deposits once attached; wompi once voided, client_credit once
// refunded as credit, deposit_fees once kept, suspense when it settled
// nothing. "" when nothing was posted.
func depositAt(entries []persistence.LedgerEntry, in persistence.PaymentIntent) string {
	at := ""
	for _, e := range entries {
		switch e.Key {
		case "approved/" + in.TransactionID, "attached/" + in.ID, "voided/" + in.TransactionID, "refunded/" + in.ID, "fee/" + in.ID:
			if e.AmountMinor < 0 {
				at = e.Account
			}
		}
	}
	return at
}

// attach moves a confirmed appointment's deposit from deposits_held to
// deposits, once (the movement's key is unique per intent).
func (s *Service) attach(ctx context.Context, in persistence.PaymentIntent) error {
	now := s.now()
	err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		cur, err := tx.PaymentIntentGet(ctx, in.ID)
		if err != nil {
			return err
		}
		if cur.Status != persistence.IntentApproved {
			// Voided at Wompi's dashboard meanwhile: the appointment stays
			// confirmed; the void's exception asks a human.
			return nil
		}
		return s.post(ctx, tx, cur, "attached/"+cur.ID, "deposit attached to appointment "+cur.SubjectID,
			persistence.AccountDepositsHeld, persistence.AccountDeposits, now)
	})
	if errors.Is(err, persistence.ErrConflict) {
		return nil // attached by a concurrent follow-up
	}
	return err
}

// refund gives back an approved deposit whose money sits in from
// (deposits_held: its appointment could not be confirmed; deposits: it
// was cancelled within the cancellation policy): voided at Wompi (card
// payments), the void applied through the same apply as any observation,
// which reverses the money from where it sits; where Wompi cannot void
// it, as client credit. Wompi not answering leaves it for the next
// follow-up.
func (s *Service) refund(ctx context.Context, in persistence.PaymentIntent, from, why string) error {
	t, err := s.d.Wompi.VoidTransaction(ctx, in.TransactionID)
	if errors.Is(err, wompi.ErrNotVoidable) {
		// A concurrent void (or ours, whose apply a store failure undid)
		// may have won: the transaction is then VOIDED.
		got, gerr := s.d.Wompi.GetTransaction(ctx, in.TransactionID)
		if gerr != nil {
			return gerr
		}
		if got.Status != wompi.StatusVoided {
			return s.credit(ctx, in, from, why)
		}
		t, err = got, nil
	}
	if err != nil {
		return err
	}
	_, _, err = s.applyOnly(ctx, Observation{Tx: t, Source: SourceRefund, Note: why})
	return err
}

// credit refunds an approved deposit as client credit, in one
// transaction: the intent refunded (version-checked, so once), the grant
// in the client's credit ledger, the movement from → client_credit, a
// notice, the audit entry and the PaymentChanged event. Nothing happens
// when the money no longer sits in from (refunded or kept meanwhile).
func (s *Service) credit(ctx context.Context, in persistence.PaymentIntent, from, why string) error {
	now := s.now()
	return s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		cur, at, err := approvedDepositAt(ctx, tx, in.ID)
		if err != nil || at != from {
			return err
		}
		was := cur.Status
		if cur, err = tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: cur.ID, FromVersion: cur.Version,
			Status: persistence.IntentRefunded, At: now}); err != nil {
			return err
		}
		if err := tx.CreditGrant(ctx, persistence.CreditGrant{ID: ulid.Make().String(), ClientID: cur.ClientID,
			AmountMinor: cur.AmountMinor, Reason: "deposit refund (payment " + cur.ID + ")", GrantedBy: order.SystemActor,
			ExpiresAt: now.Add(order.DefaultCreditValidity), CreatedAt: now}); err != nil {
			return err
		}
		if err := s.post(ctx, tx, cur, "refunded/"+cur.ID, "deposit refunded as client credit",
			from, persistence.AccountClientCredit, now); err != nil {
			return err
		}
		if err := s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionStatusMismatch,
			State: persistence.ExceptionResolved, Dedupe: "deposit_refund/" + cur.ID, IntentID: cur.ID, Reference: cur.ID,
			TransactionID: cur.TransactionID, AmountMinor: cur.AmountMinor, ResolvedBy: order.SystemActor,
			Resolution: "refunded as client credit", Detail: "deposit refunded as client credit: " + why}, now); err != nil {
			return err
		}
		return s.record(ctx, tx, was, cur, false, "", string(SourceRefund))
	})
}

// followDeposits runs the follow-up of every deposit intent in page (for
// reconciliation), counting failures.
func (s *Service) followDeposits(ctx context.Context, page []persistence.PaymentIntent, res *ReconcileResult) {
	for _, in := range page {
		if in.Kind != persistence.PaymentDeposit {
			continue
		}
		if err := s.followDeposit(ctx, in.ID); err != nil {
			res.Failures++
			s.d.Log.Warn("deposit follow-up failed", "intent", in.ID, "err", err)
			s.staleFollowUp(ctx, in)
		}
	}
}
