package payments

import (
	"context"
	"errors"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/providers/wompi"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// ProviderWompi names Wompi in the event log.
const ProviderWompi = "wompi"

// ErrForged is the 401 of an event that does not verify. Nothing of it is
// stored or applied.
var ErrForged = fault.Unauthenticated("the event's checksum, header or timestamp is not valid")

// Event handles one event posted by Wompi (POST /v1/webhooks/wompi) and
// returns what it did. The house rule for outside input:
//
//  1. verify the checksum in constant time, the timestamp window and the
//     size (wompi.VerifyEvent); a forged, stale or malformed event is
//     ErrForged (401) and nothing is stored;
//  2. store the raw body (sealed) keyed by the event's checksum, before
//     anything is applied; an event already applied is a replay: answered
//     200, applied nothing;
//  3. confirm the transaction's reference and currency (not signed) with
//     Wompi unless the transaction is already attached to its intent;
//  4. apply it through Apply, which marks the event applied in the same
//     transaction as the effect.
//
// Any authentic event gets a nil error (200), also an unknown reference
// (an orphan exception) or one Wompi could not confirm right now (left for
// reconciliation). Only a failing store is an error: the event stays
// stored unapplied, Wompi redelivers it and reconciliation retries it.
func (s *Service) Event(ctx context.Context, body []byte, checksum, requestID string) (Outcome, error) {
	if !s.Enabled() {
		return "", errDisabled
	}
	out, err := s.event(ctx, body, checksum, requestID)
	s.d.Metrics.webhook(out)
	return out, err
}

func (s *Service) event(ctx context.Context, body []byte, checksum, requestID string) (Outcome, error) {
	now := s.now()
	ev, err := s.d.Wompi.VerifyEvent(body, checksum, now)
	unsupported := errors.Is(err, wompi.ErrUnsupportedEvent)
	if err != nil && !unsupported {
		return OutcomeForged, ErrForged
	}
	rec := persistence.PaymentEvent{Key: ev.Key(), Provider: ProviderWompi, ReceivedAt: now}
	if rec.Body, err = s.seal(body, rec.Key); err != nil {
		return "", err
	}
	if unsupported {
		rec.AppliedAt, rec.Outcome = now, string(OutcomeUnsupported)
	} else {
		t := ev.Transaction
		rec.TransactionID, rec.Status, rec.AmountMinor, rec.Reference = t.ID, string(t.Status), t.AmountInCents, t.Reference
	}
	var stored persistence.PaymentEvent
	var created bool
	if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		stored, created, err = tx.PaymentEventRecord(ctx, rec)
		return err
	}); err != nil {
		return OutcomeFailed, err
	}
	switch {
	case unsupported:
		return OutcomeUnsupported, nil
	case !created && !stored.AppliedAt.IsZero():
		return OutcomeReplay, nil
	}
	return s.applyEvent(ctx, *ev.Transaction, rec.Key, requestID)
}

// applyEvent confirms an event's transaction when needed and applies it.
func (s *Service) applyEvent(ctx context.Context, t wompi.Transaction, key, requestID string) (Outcome, error) {
	attached := false
	if err := s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
		in, err := tx.PaymentIntentGet(ctx, t.Reference)
		attached = err == nil && in.TransactionID == t.ID
		if errors.Is(err, persistence.ErrNotFound) {
			err = nil
		}
		return err
	}); err != nil {
		return OutcomeFailed, err
	}
	if !attached {
		got, err := s.d.Wompi.GetTransaction(ctx, t.ID)
		switch {
		case errors.Is(err, wompi.ErrNotFound):
			// Authentic, yet Wompi does not know the transaction: nothing
			// is applied on values it cannot confirm.
			return OutcomeOrphan, s.d.Store.InTx(ctx, func(tx persistence.Tx) error {
				if err := s.except(ctx, tx, persistence.PaymentException{Class: persistence.ExceptionOrphan,
					Dedupe: "orphan/wompi/" + t.ID, Reference: t.Reference, TransactionID: t.ID, AmountMinor: t.AmountInCents,
					Detail: string(t.Status) + " event for a transaction Wompi does not know"}, s.now()); err != nil {
					return err
				}
				_, err := tx.PaymentEventMarkApplied(ctx, key, string(OutcomeOrphan), s.now())
				return err
			})
		case err != nil:
			s.d.Log.Warn("payment event left for reconciliation: Wompi did not confirm its transaction",
				"transaction", t.ID, "err", err)
			return OutcomeDeferred, nil
		default:
			if got.ID != t.ID {
				return OutcomeDeferred, nil
			}
			t = got
		}
	}
	out, err := s.Apply(ctx, Observation{Tx: t, Source: SourceWebhook, EventKey: key, RequestID: requestID})
	if err != nil {
		return OutcomeFailed, err
	}
	return out, nil
}

// seal encrypts a raw body for storage when a sealer is configured.
func (s *Service) seal(body []byte, key string) ([]byte, error) {
	if s.d.Sealer == nil {
		return append([]byte(nil), body...), nil
	}
	return s.d.Sealer.Encrypt(body, []byte("payment_event/"+key))
}

// auditEntry writes an audit entry by a system actor.
func auditEntry(ctx context.Context, tx persistence.Tx, by order.Actor, action, subject string, at time.Time, detail any) error {
	c := service.Caller{RequestID: by.RequestID}
	c.Subject, c.Role = by.ID, auth.Role(by.Role)
	return service.Audit(ctx, tx, at, c, action, subject, "", detail)
}
