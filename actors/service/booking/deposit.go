package booking

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// Deposits paid online (docs/payments.md, "Deposits"). The payments
// service settles an approved deposit through ConfirmPaid and releases a
// hold whose payment failed through ReleaseUnpaid; both ask the staff
// member's actor, the only writer of the calendar, so the confirmation is
// one decision with its transition and event, like the desk's.

// PaymentsActor is the actor id of the transitions online payments make.
const PaymentsActor = "payments"

// depositAsked is sv as client books it: a service that asks its deposit
// only of clients with at least DepositNoShows no-shows in the last
// NoShowLookback asks none of a client with fewer. The hold carries the
// service so decided (the actor computes the hold's DepositMinor from
// it), and everything after the hold reads only DepositMinor.
func (s *Service) depositAsked(ctx context.Context, sv persistence.Service, client string) (persistence.Service, error) {
	if sv.DepositNoShows <= 0 || sv.DepositPolicy == persistence.DepositNone {
		return sv, nil
	}
	var n int
	if err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		n, err = tx.AppointmentNoShows(ctx, client, s.now().Add(-persistence.NoShowLookback))
		return err
	}); err != nil {
		return sv, err
	}
	if n < sv.DepositNoShows {
		sv.DepositPolicy, sv.DepositValue = persistence.DepositNone, 0
	}
	return sv, nil
}

// DepositDue is what is still to pay of ap's deposit before the client may
// confirm it: the deposit less what already pays it. A package session in
// force pays the whole service; voucher debits in force, client credit
// spent on it (PayDepositWithCredit) and approved online deposit payments
// count to the cent. Never below zero. Read in
// tx, so a caller deciding on it sees one state.
func DepositDue(ctx context.Context, tx persistence.Tx, ap persistence.Appointment) (int64, error) {
	if ap.DepositMinor <= 0 {
		return 0, nil
	}
	c, err := tx.AppointmentCredits(ctx, ap.ID)
	if err != nil {
		return 0, err
	}
	if c.PackageSession {
		return 0, nil
	}
	var paid money.Sum
	for _, d := range c.VoucherDebits {
		paid.Add(d.AmountMinor)
	}
	credit, err := tx.CreditUsed(ctx, persistence.AppointmentCreditRef(ap.ID))
	if err != nil {
		return 0, err
	}
	paid.Add(credit)
	intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentDeposit, ap.ID)
	if err != nil {
		return 0, err
	}
	for _, in := range intents {
		if in.Status == persistence.IntentApproved {
			paid.Add(in.AmountMinor)
		}
	}
	total, err := paid.Total()
	if err != nil {
		return 0, fmt.Errorf("booking: deposit of %s: %w", ap.ID, err)
	}
	if total >= ap.DepositMinor {
		return 0, nil
	}
	return ap.DepositMinor - total, nil
}

// ErrUndecided: the calendar could not be asked, or decided nothing (a
// failed or fenced write); asking again is safe.
var ErrUndecided = errors.New("booking: the calendar decided nothing; retry")

// ConfirmPaid confirms ap because its deposit was paid online (payment
// intentID), as PaymentsActor. Confirming an appointment already
// confirmed answers it unchanged, so a redelivered approval confirms
// once. A calendar's refusal (the hold lapsed or was cancelled) is a
// *Refused wrapping the schedule's error; ErrUndecided when nothing was
// decided.
func (s *Service) ConfirmPaid(ctx context.Context, ap persistence.Appointment, intentID string) (persistence.Appointment, error) {
	rep, err := s.calendars.Confirm(ctx, ap.StaffID, &schedule.Confirm{AppointmentID: ap.ID, ActorID: PaymentsActor,
		Reason: "deposit paid online (payment " + intentID + ")"})
	if err := undecided(rep, err); err != nil {
		return ap, err
	}
	if rep.Err != nil {
		return rep.Appointment, &Refused{Err: rep.Err}
	}
	if ap.ResourceID != "" {
		s.trackResource(ctx, rep.Appointment)
	}
	// A booking, no longer a hold: its place under the client's hold cap
	// is free (the lease under the address it came from lapses with the
	// hold's TTL: the payment does not know that address).
	s.releaseHoldCaps(service.Caller{}, rep.Appointment)
	return rep.Appointment, nil
}

// onlyHolds is the cut-off ReleaseUnpaid sends: larger than any lead
// time, so the calendar refuses (ErrCutoff) to cancel an appointment that
// is confirmed by then (at the desk, or by an approval that won the race)
// and cancels only a hold, which no cut-off protects. The condition
// travels in the existing Cancel message, so it holds on a remote
// calendar too.
const onlyHolds = 100 * 365 * 24 * time.Hour

// ReleaseUnpaid cancels ap while it is still a hold, with reason, as
// PaymentsActor: its deposit payment was declined, failed or expired, so
// the slot is freed at once instead of when the hold lapses (the package
// session and voucher debits it spent are given back in the same write).
// A booking confirmed meanwhile, or a hold already cancelled or lapsed,
// is left alone (nil). ErrUndecided when nothing was decided.
func (s *Service) ReleaseUnpaid(ctx context.Context, ap persistence.Appointment, reason string) error {
	rep, err := s.calendars.Cancel(ctx, ap.StaffID, &schedule.Cancel{AppointmentID: ap.ID, ActorID: PaymentsActor,
		Reason: reason, Cutoff: onlyHolds})
	if err := undecided(rep, err); err != nil {
		return err
	}
	switch {
	case rep.Err == nil:
		if ap.ResourceID != "" {
			s.trackResource(ctx, rep.Appointment)
		}
		return nil
	case errors.Is(rep.Err, schedule.ErrCutoff), errors.Is(rep.Err, schedule.ErrTransition), errors.Is(rep.Err, schedule.ErrNotFound):
		return nil
	}
	return rep.Err
}

// undecided is ErrUndecided (wrapping the cause) when the calendar was not
// reached or decided nothing.
func undecided(rep *schedule.Reply, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUndecided, err)
	case rep == nil:
		return ErrUndecided
	case rep.Err != nil && errors.Is(rep.Err, schedule.ErrRetry):
		return fmt.Errorf("%w: %w", ErrUndecided, rep.Err)
	}
	return nil
}

// CreditPayment is what PayDepositWithCredit did: the credit applied, the
// deposit still due after it and the client's credit left.
type CreditPayment struct {
	AppliedMinor int64
	DueMinor     int64
	BalanceMinor int64
}

// PayDepositWithCredit pays (part of) a held appointment's deposit with
// the client's credit (the shop's credit ledger, e.g. a refund), in tx:
// amount exactly, or, when amount is 0, as much of what is due as the
// credit covers. The spend is given back with the hold's other credits
// (persistence.ReleaseCredits) when the hold lapses or is cancelled within
// policy. Refused while an online deposit payment is under way (its
// amount was fixed when it began), when nothing is due, or for more than
// is due or than the credit holds. The hold's client pays; staff may apply
// a client's credit at the desk.
func (s *Service) PayDepositWithCredit(ctx context.Context, tx persistence.Tx, by service.Caller, a Appointment, amount int64) (CreditPayment, error) {
	var out CreditPayment
	if err := signedIn(by); err != nil {
		return out, err
	}
	if a.ID == "" || a.ClientID != by.Subject && !IsStaff(by) {
		return out, fault.NotFound("appointment not found")
	}
	now := s.now()
	switch {
	case amount < 0 || !money.Valid(amount):
		return out, fault.Invalid("", fault.FieldError{Field: "amount_minor", Message: "must be a positive amount in minor units, or 0 for as much as is due"})
	case a.Status == persistence.StatusHeld && !a.Live(now):
		return out, fault.New(fault.CodeHoldExpired, "")
	case a.Status != persistence.StatusHeld:
		return out, fault.New(fault.CodeInvalidTransition, "the appointment is "+string(a.Status)+" and takes no deposit")
	}
	intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentDeposit, a.ID)
	if err != nil {
		return out, err
	}
	for _, in := range intents {
		if in.Status == persistence.IntentPending {
			return out, fault.Conflict("an online payment of this deposit is under way")
		}
	}
	due, err := DepositDue(ctx, tx, a.Appointment)
	if err != nil {
		return out, err
	}
	balance, err := tx.CreditBalance(ctx, a.ClientID, now)
	if err != nil {
		return out, err
	}
	switch {
	case due <= 0:
		return out, fault.Conflict("no deposit is due: confirm the appointment")
	case amount == 0:
		amount = min(due, balance)
	case amount > due:
		return out, fault.Conflict(fmt.Sprintf("%d is more than the %d due", amount, due))
	}
	if amount == 0 || amount > balance {
		return out, fault.New(fault.CodeInsufficientCredit, "")
	}
	if err := tx.CreditSpend(ctx, a.ClientID, amount, persistence.AppointmentCreditRef(a.ID), now); err != nil {
		if errors.Is(err, persistence.ErrInsufficientCredit) {
			return out, fault.New(fault.CodeInsufficientCredit, "")
		}
		return out, err
	}
	if err := service.Audit(ctx, tx, now, by, "appointment.credit_applied", "appointment/"+a.ID, "",
		map[string]any{"amount_minor": amount}); err != nil {
		return out, err
	}
	return CreditPayment{AppliedMinor: amount, DueMinor: due - amount, BalanceMinor: balance - amount}, nil
}
