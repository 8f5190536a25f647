package payments

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/persistence"
)

// ReconcileResult counts what one pass did.
type ReconcileResult struct {
	Checked  int // intents read back from Wompi
	Applied  int // observations that moved an intent
	Expired  int // pending intents expired (their thing lapsed, no payment under way)
	Events   int // stored events applied late
	Failures int // intents or events left for the next pass (Wompi or the store failed)
}

// reconcilePage bounds one listing of intents or events.
const reconcilePage = 200

// Reconcile is one reconciliation pass. It is durable because its state is
// the store's: every pending intent, and every intent changed within
// RecentWindow, is read back from Wompi by reference and each transaction
// found goes through Apply (the webhook's own path), so whatever the
// webhook missed is applied once and whatever it applied is not applied
// again; stored events never applied (the store failed, Wompi did not
// answer) are retried; pending intents whose thing lapsed past the grace
// are expired, or flagged stale_pending while Wompi still says PENDING.
// Running it on several nodes at once is safe (Apply is idempotent and
// version-checked); cmd/spa runs it on one.
func (s *Service) Reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	if !s.Enabled() {
		return res, nil
	}
	now := s.now()
	if err := s.retryEvents(ctx, &res); err != nil {
		return res, err
	}
	after := ""
	for {
		var page []persistence.PaymentIntent
		if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
			page, err = tx.PaymentIntentList(ctx, persistence.IntentListParams{
				Statuses: []persistence.IntentStatus{persistence.IntentPending}, UpdatedSince: now.Add(-s.d.RecentWindow),
				AfterID: after, Limit: reconcilePage})
			return err
		}); err != nil {
			return res, err
		}
		for _, in := range page {
			if err := s.reconcileIntent(ctx, in, &res); err != nil {
				if errors.Is(err, wompi.ErrUnavailable) {
					res.Failures++
					s.refreshMetrics(ctx)
					return res, fmt.Errorf("payments: reconcile: %w", err) // the breaker is open or Wompi is down: next pass
				}
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				res.Failures++
				s.d.Log.Warn("payment reconciliation of one intent failed", "intent", in.ID, "err", err)
			}
		}
		// A deposit's appointment follows its intent (deposit.go): asked
		// again here, so a follow-up a crash or an outage cut is done.
		s.followDeposits(ctx, page, &res)
		if len(page) < reconcilePage {
			break
		}
		after = page[len(page)-1].ID
	}
	if err := s.settleEndedDeposits(ctx, now, &res); err != nil {
		return res, err
	}
	s.d.Metrics.reconcile(res)
	s.refreshMetrics(ctx)
	return res, nil
}

// settleEndedDeposits follows up the deposits of appointments cancelled or
// marked no-show within RecentWindow that are neither refunded nor kept:
// the AppointmentChanged follow-up does it when the change happens, and
// this catches what it gave up on (an outage longer than its redeliveries)
// or never saw, however long ago the deposit was paid. A follow-up that
// fails counts in res.Failures.
func (s *Service) settleEndedDeposits(ctx context.Context, now time.Time, res *ReconcileResult) error {
	if s.deposits == nil {
		return nil
	}
	after := ""
	for {
		var page []persistence.PaymentIntent
		if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
			page, err = tx.PaymentDepositsToSettle(ctx, now.Add(-s.d.RecentWindow), after, reconcilePage)
			return err
		}); err != nil {
			return err
		}
		s.followDeposits(ctx, page, res)
		if len(page) < reconcilePage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

func (s *Service) reconcileIntent(ctx context.Context, in persistence.PaymentIntent, res *ReconcileResult) error {
	txs, err := s.d.Wompi.FindTransactionsByReference(ctx, in.ID)
	if err != nil {
		return err
	}
	res.Checked++
	pendingAtWompi := false
	for _, t := range txs {
		out, err := s.Apply(ctx, Observation{Tx: t, Source: SourceReconcile})
		if err != nil {
			return err
		}
		if out == OutcomeApplied {
			res.Applied++
		}
		pendingAtWompi = pendingAtWompi || t.Status == wompi.StatusPending
	}
	now := s.now()
	return s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		cur, err := tx.PaymentIntentGet(ctx, in.ID)
		if err != nil {
			return err
		}
		switch {
		case len(txs) == 0 && cur.Status.Rank() >= persistence.IntentApproved.Rank():
			return s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionOrphan,
				Dedupe: "orphan/ours/" + cur.ID, IntentID: cur.ID, Reference: cur.ID, TransactionID: cur.TransactionID,
				AmountMinor: cur.AmountMinor, Detail: "intent " + string(cur.Status) + " here but Wompi lists no transaction of its reference"}, now)
		case cur.Status != persistence.IntentPending || !now.After(cur.ExpiresAt.Add(s.d.ExpiryGrace)):
			return nil
		case pendingAtWompi:
			return s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionStalePending,
				Dedupe: "stale_pending/" + cur.ID, IntentID: cur.ID, Reference: cur.ID, TransactionID: cur.TransactionID,
				AmountMinor: cur.AmountMinor, Detail: "Wompi still says PENDING after what the intent pays lapsed"}, now)
		}
		from := cur.Status
		cur, err = tx.PaymentIntentUpdate(ctx, persistence.IntentChange{ID: cur.ID, FromVersion: cur.Version,
			Status: persistence.IntentExpired, At: now})
		if err != nil {
			return err
		}
		res.Expired++
		return s.record(ctx, tx, from, cur, false, "", string(SourceReconcile))
	})
}

// retryEvents applies stored events that were never applied and are
// older than a minute (younger ones may still be in their webhook call).
func (s *Service) retryEvents(ctx context.Context, res *ReconcileResult) error {
	var events []persistence.PaymentEvent
	if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		events, err = tx.PaymentEventListUnapplied(ctx, ProviderWompi, s.now().Add(-retryAfter), reconcilePage)
		return err
	}); err != nil {
		return err
	}
	for _, e := range events {
		t := wompi.Transaction{ID: e.TransactionID, Status: wompi.Status(e.Status), AmountInCents: e.AmountMinor,
			Reference: e.Reference}
		out, err := s.applyEvent(ctx, t, e.Key, "")
		switch {
		case err != nil:
			res.Failures++
			s.d.Log.Warn("stored payment event still not applied", "transaction", e.TransactionID, "err", err)
		case out == OutcomeDeferred:
			res.Failures++
		default:
			res.Events++
		}
	}
	return nil
}

// retryAfter is how old an unapplied event must be before reconciliation
// applies it.
const retryAfter = time.Minute
