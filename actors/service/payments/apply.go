package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Outcome is what applying one observation did (also the webhook's
// metric label and the stored event's outcome).
type Outcome string

// Outcomes of Apply.
const (
	OutcomeApplied           Outcome = "applied"            // the intent moved forward, with its effects
	OutcomeAlreadyApplied    Outcome = "already_applied"    // the intent already has this status
	OutcomeStale             Outcome = "stale"              // older than what we know (a late PENDING)
	OutcomeOrphan            Outcome = "orphan"             // no intent has this reference
	OutcomeAmountMismatch    Outcome = "amount_mismatch"    // amount or currency is not the intent's
	OutcomeStatusMismatch    Outcome = "status_mismatch"    // contradicts a final status (DECLINED after APPROVED)
	OutcomeDuplicateApproval Outcome = "duplicate_approval" // a second transaction approved for one reference
)

// Webhook-only outcomes.
const (
	OutcomeReplay      Outcome = "replay"      // this event was applied before
	OutcomeUnsupported Outcome = "unsupported" // authentic, of a type we do not act on
	OutcomeDeferred    Outcome = "deferred"    // stored; the transaction could not be confirmed with Wompi yet
	OutcomeForged      Outcome = "forged"      // refused: bad checksum, header, timestamp or shape
	OutcomeFailed      Outcome = "failed"      // stored; applying failed (store error): left for redelivery
)

// Source says who observed a transaction.
type Source string

// Sources.
const (
	SourceWebhook   Source = "webhook"
	SourceReconcile Source = "reconciliation"
	// SourceRefund: our own void of a deposit whose appointment could not
	// be confirmed, read back from Wompi's answer.
	SourceRefund Source = "refund"
)

// Observation is a transaction as seen by the webhook or reconciliation.
// Its reference and currency must come from a source we trust for them:
// Wompi's API, or an event whose transaction is already attached to the
// intent (events sign only id, status and amount).
type Observation struct {
	Tx        wompi.Transaction
	Source    Source
	EventKey  string // the stored event to mark applied, in the same transaction ("" for none)
	RequestID string
	// Note says why we caused the change ourselves (a deposit's automatic
	// refund); it goes into the notice the change opens.
	Note string
}

// system is the audit actor of applied payments.
func system(requestID string) order.Actor {
	return order.Actor{ID: order.SystemActor, Role: order.SystemActor, RequestID: requestID}
}

// statusOf maps Wompi's status to the intent's; ok is false for one we do
// not know.
func statusOf(s wompi.Status) (persistence.IntentStatus, bool) {
	switch s {
	case wompi.StatusPending:
		return persistence.IntentPending, true
	case wompi.StatusApproved:
		return persistence.IntentApproved, true
	case wompi.StatusDeclined:
		return persistence.IntentDeclined, true
	case wompi.StatusError:
		return persistence.IntentError, true
	case wompi.StatusVoided:
		return persistence.IntentVoided, true
	}
	return "", false
}

// Apply applies one observation in its own transaction (with the event's
// applied mark when it carries one). It is the only way an intent's status
// changes from the provider's side, so the webhook, its redeliveries and
// reconciliation can all apply the same transaction any number of times,
// in any order: each change happens once.
//
// A deposit's effect on its appointment is decided by the staff member's
// actor, outside this transaction: once the apply committed, Apply asks
// it (followDeposit), and reconciliation asks again until it is done.
func (s *Service) Apply(ctx context.Context, obs Observation) (Outcome, error) {
	out, in, err := s.applyOnly(ctx, obs)
	if err != nil {
		return "", err
	}
	if in.Kind == persistence.PaymentDeposit {
		if ferr := s.followDeposit(ctx, in.ID); ferr != nil {
			// The apply stands; reconciliation follows the deposit up.
			s.d.Log.Warn("deposit follow-up left for reconciliation", "intent", in.ID, "err", ferr)
		}
	}
	return out, nil
}

// applyOnly is Apply without the deposit's follow-up; in is the intent
// the observation names (zero for an orphan).
func (s *Service) applyOnly(ctx context.Context, obs Observation) (out Outcome, in persistence.PaymentIntent, err error) {
	err = s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		in = persistence.PaymentIntent{}
		out, err = s.apply(ctx, tx, obs)
		if err != nil {
			return err
		}
		if obs.EventKey != "" {
			if _, err = tx.PaymentEventMarkApplied(ctx, obs.EventKey, string(out), s.now()); err != nil {
				return err
			}
		}
		if out != OutcomeOrphan {
			in, err = tx.PaymentIntentGet(ctx, obs.Tx.Reference)
		}
		return err
	})
	if err != nil {
		return "", persistence.PaymentIntent{}, err
	}
	return out, in, nil
}

func (s *Service) apply(ctx context.Context, tx persistence.Tx, obs Observation) (Outcome, error) {
	t := obs.Tx
	now := s.now()
	in, err := tx.PaymentIntentGet(ctx, t.Reference)
	if errors.Is(err, persistence.ErrNotFound) {
		return OutcomeOrphan, s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionOrphan,
			Dedupe: "orphan/" + t.Reference + "/" + t.ID, Reference: t.Reference, TransactionID: t.ID, AmountMinor: t.AmountInCents,
			Detail: fmt.Sprintf("%s transaction for a reference we never issued (%s)", t.Status, obs.Source)}, now)
	}
	if err != nil {
		return "", err
	}
	if t.AmountInCents != in.AmountMinor || t.Currency != in.Currency {
		return OutcomeAmountMismatch, s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionAmountMismatch,
			Dedupe: "amount_mismatch/" + t.ID + "/" + string(t.Status), IntentID: in.ID, Reference: in.ID, TransactionID: t.ID,
			AmountMinor: t.AmountInCents, Detail: fmt.Sprintf("%s transaction of %d %s for an intent of %d %s; not applied",
				t.Status, t.AmountInCents, t.Currency, in.AmountMinor, in.Currency)}, now)
	}
	to, ok := statusOf(t.Status)
	if !ok {
		return OutcomeStale, nil
	}

	if in.TransactionID != "" && in.TransactionID != t.ID {
		// Another transaction of the same reference. Only an approval
		// matters: it overrides a failed attempt, and is a second payment
		// when one was already approved.
		if to != persistence.IntentApproved {
			return OutcomeStale, nil
		}
		if in.Status.Rank() >= persistence.IntentApproved.Rank() {
			return OutcomeDuplicateApproval, s.duplicateApproval(ctx, tx, in, t, obs, now)
		}
	} else {
		switch {
		case to == in.Status:
			return OutcomeAlreadyApplied, nil
		case in.Status == persistence.IntentApproved && to.Rank() < in.Status.Rank() && to != persistence.IntentPending:
			// Wompi's final statuses are final: a DECLINED or ERROR after
			// APPROVED for one transaction is for a human, never undone.
			return OutcomeStatusMismatch, s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionStatusMismatch,
				Dedupe: "status_mismatch/" + t.ID + "/" + string(t.Status), IntentID: in.ID, Reference: in.ID, TransactionID: t.ID,
				AmountMinor: t.AmountInCents, Detail: fmt.Sprintf("%s reported (%s) for a transaction applied as %s; kept %s",
					t.Status, obs.Source, in.Status, in.Status)}, now)
		case !persistence.IntentMayBecome(in.Status, to):
			return OutcomeStale, nil
		}
	}

	from := in.Status
	in, err = tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: in.ID, FromVersion: in.Version, Status: to,
		TransactionID: t.ID, At: now})
	if err != nil {
		return "", err
	}
	settled := false
	switch {
	case to == persistence.IntentApproved:
		if settled, err = s.approve(ctx, tx, in, obs, now); err != nil {
			return "", err
		}
	case to == persistence.IntentVoided && from == persistence.IntentApproved:
		if err := s.void(ctx, tx, in, obs, now); err != nil {
			return "", err
		}
	}
	if err := s.record(ctx, tx, from, in, settled, obs.RequestID, string(obs.Source)); err != nil {
		return "", err
	}
	if obs.Source == SourceReconcile && to.Final() {
		// Informational: the change reached us without its event. Opened
		// resolved, so it counts how often events go missing without
		// asking a human for anything.
		if err := s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionMissingWebhook,
			State: persistence.ExceptionResolved, Dedupe: "missing_webhook/" + t.ID + "/" + string(t.Status), IntentID: in.ID,
			Reference: in.ID, TransactionID: t.ID, AmountMinor: t.AmountInCents, ResolvedBy: order.SystemActor,
			Resolution: "applied by reconciliation", Detail: fmt.Sprintf("%s applied by reconciliation; no event had arrived", t.Status)}, now); err != nil {
			return "", err
		}
	}
	return OutcomeApplied, nil
}

// approve settles the subject and posts the money: to the subject's
// account when settled, else to suspense with an exception open.
func (s *Service) approve(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, obs Observation, now time.Time) (bool, error) {
	settled, why := false, "no settler for payments of kind "+string(in.Kind)
	account := persistence.AccountSuspense
	if st := s.settlers[in.Kind]; st != nil {
		var err error
		if settled, why, err = st.Settle(ctx, tx, in, system(obs.RequestID)); err != nil {
			return false, err
		}
		if settled {
			account = st.Account()
		}
	}
	if err := s.post(ctx, tx, in, "approved/"+in.TransactionID, "payment approved", persistence.AccountWompi, account, now); err != nil {
		return false, err
	}
	if !settled {
		if err := s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionStatusMismatch,
			Dedupe: "unsettled/" + in.ID + "/" + in.TransactionID, IntentID: in.ID, Reference: in.ID, TransactionID: in.TransactionID,
			AmountMinor: in.AmountMinor, Detail: "approved but not settled: " + why + "; the money is in suspense, refund it"}, now); err != nil {
			return false, err
		}
	}
	return settled, nil
}

// duplicateApproval records a second approved transaction of a reference
// whose intent is already approved: the money is real, so it is posted to
// suspense, with an exception for the refund. The exception's dedupe makes
// both happen once.
func (s *Service) duplicateApproval(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, t wompi.Transaction, obs Observation, now time.Time) error {
	_, created, err := tx.PaymentExceptionOpen(ctx, persistence.PaymentException{ID: ulid.Make().String(),
		Class: persistence.ExceptionDuplicateApproval, State: persistence.ExceptionOpen,
		Dedupe: "duplicate_approval/" + t.ID, IntentID: in.ID, Reference: in.ID, TransactionID: t.ID, AmountMinor: t.AmountInCents,
		Detail: fmt.Sprintf("second approved transaction (%s) for an intent already paid by %s; in suspense, refund it",
			obs.Source, in.TransactionID), OpenedAt: now})
	if err != nil || !created {
		return err
	}
	return s.post(ctx, tx, in, "approved/"+t.ID, "second approval, in suspense", persistence.AccountWompi, persistence.AccountSuspense, now)
}

// void reverses the approval's movement, from wherever its money sits now
// (the account the approval credited, or where a deposit moved since:
// deposits once attached, deposit_fees once kept). The thing paid is not
// undone (a paid order stays paid): a human decides, through the
// exception.
func (s *Service) void(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, obs Observation, now time.Time) error {
	entries, err := tx.PaymentLedgerEntries(ctx, in.ID)
	if err != nil {
		return err
	}
	account := depositAt(entries, in)
	if account == "" || account == persistence.AccountWompi {
		account = persistence.AccountSuspense
	}
	if err := s.post(ctx, tx, in, "voided/"+in.TransactionID, "payment voided", account, persistence.AccountWompi, now); err != nil {
		return err
	}
	x := persistence.PaymentException{Class: persistence.ExceptionStatusMismatch,
		Dedupe: "voided/" + in.TransactionID, IntentID: in.ID, Reference: in.ID, TransactionID: in.TransactionID,
		AmountMinor: in.AmountMinor, Detail: fmt.Sprintf("approved payment voided (%s); what it paid is unchanged", obs.Source)}
	switch {
	case account == persistence.AccountDepositsHeld:
		// A deposit voided before it was attached to its appointment: the
		// automatic refund of a deposit whose slot was lost (or a void
		// made at Wompi's dashboard before it was attached). Nothing is
		// left to undo, so the notice is opened resolved.
		why := obs.Note
		if why == "" {
			why = "voided at Wompi before it was attached to its appointment"
		}
		x.State, x.ResolvedBy, x.Resolution = persistence.ExceptionResolved, order.SystemActor, "refunded by voiding the card payment"
		x.Detail = "deposit refunded to the card (" + string(obs.Source) + "): " + why
	case account == persistence.AccountDeposits && obs.Source == SourceRefund:
		// Our own refund of a booking cancelled within the cancellation
		// policy: the appointment is already cancelled. A void of an
		// attached deposit made anywhere else stays open for a human.
		x.State, x.ResolvedBy, x.Resolution = persistence.ExceptionResolved, order.SystemActor, "refunded by voiding the card payment"
		x.Detail = "deposit refunded to the card on cancellation: " + obs.Note
	}
	return s.except(ctx, tx, x, now)
}

// post writes one balanced movement: amount debited to debit, credited to
// credit.
func (s *Service) post(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, key, memo, debit, credit string, now time.Time) error {
	return tx.PaymentLedgerPost(ctx, persistence.LedgerMovement{ID: ulid.Make().String(), IntentID: in.ID, Key: key, Memo: memo, At: now,
		Lines: []persistence.LedgerLine{{Account: debit, Debit: true, AmountMinor: in.AmountMinor},
			{Account: credit, AmountMinor: in.AmountMinor}}})
}

// except opens x once (by its Dedupe); x.State defaults to open.
func (s *Service) except(ctx context.Context, tx persistence.Tx, x persistence.PaymentException, now time.Time) error {
	x.ID, x.OpenedAt = ulid.Make().String(), now
	if x.State == "" {
		x.State = persistence.ExceptionOpen
	}
	if x.State != persistence.ExceptionOpen {
		x.ResolvedAt = now
	}
	_, created, err := tx.PaymentExceptionOpen(ctx, x)
	if err == nil && created {
		s.d.Log.Warn("payment exception", "class", x.Class, "intent", x.IntentID, "transaction", x.TransactionID, "state", x.State)
	}
	return err
}

// record writes the intent change's audit entry and PaymentChanged event.
func (s *Service) record(ctx context.Context, tx persistence.Tx, from persistence.IntentStatus, in persistence.PaymentIntent, settled bool, requestID, source string) error {
	by := system(requestID)
	detail := map[string]any{"from": from, "to": in.Status, "transaction_id": in.TransactionID, "amount_minor": in.AmountMinor,
		"subject": string(in.Kind) + "/" + in.SubjectID, "settled": settled, "source": source}
	if err := auditEntry(ctx, tx, by, "payment."+string(in.Status), "payment/"+in.ID, in.UpdatedAt, detail); err != nil {
		return err
	}
	ev, err := persistence.NewOutboxEvent("payment/"+in.ID, requestID, by.ID, &messages.PaymentChanged{
		IntentId: in.ID, Kind: string(in.Kind), SubjectId: in.SubjectID, ClientId: in.ClientID,
		FromStatus: string(from), ToStatus: string(in.Status), AmountMinor: in.AmountMinor, Currency: in.Currency,
		TransactionId: in.TransactionID, Settled: settled, Version: in.Version}, in.UpdatedAt)
	if err != nil {
		return err
	}
	return tx.OutboxAppend(ctx, ev)
}
