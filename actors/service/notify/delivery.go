package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/providers/inbound"
	"github.com/spa-engine/spa/persistence"
)

// Delivery statuses and fallback (docs/notifications.md, Delivery
// statuses). A message a provider accepted is recorded with the
// provider's id (sender.Tracker); the statuses the provider posts later
// (the messaging webhooks, actors/service/inbox) are applied to it here.
// A message that fails, or of which no status arrives within its kind's
// window, falls back to the kind's next channel: a durable check,
// scheduled before the message is sent, hands its cause (the event or
// the fired reminder) back to the service, which finds the channel failed
// and goes on to the next one.

// Cause is the message a notification was made from, as the consumer
// received it: its subject and bytes. A delivery check carries it, so
// falling back is handling the same event again.
type Cause struct {
	Subject string
	Data    []byte
}

type causeKey struct{}

// WithCause is ctx carrying the cause of what the service handles in it;
// without one no delivery check is scheduled (no fallback on a missing
// status).
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, causeKey{}, c)
}

func causeOf(ctx context.Context) (Cause, bool) {
	c, ok := ctx.Value(causeKey{}).(Cause)
	return c, ok && c.Subject != ""
}

// DeliveryChecks keeps one durable check per notification (cluster/notifyjs:
// JetStream message schedules). When a check fires its cause reaches the
// consumer, which asks CheckDelivery whether to fall back.
//
// Why a JetStream schedule and not a timer in the consumer: a timer dies
// with its node, and the message whose status never came would stay on a
// channel that did not carry it; the schedule is in the replicated
// stream, fires on whichever node runs the consumer, and is replaced (the
// subject rolls up) when a retry sends the message again. It is the
// mechanism the reminders already use, so it adds no new moving part.
type DeliveryChecks interface {
	// Schedule replaces the check of notification id with one that fires
	// at at and hands cause back.
	Schedule(ctx context.Context, id string, cause Cause, at time.Time) error
	// Fire makes the check of id fire now (a "failed" status: fall back
	// at once); nothing when none is waiting.
	Fire(ctx context.Context, id string) error
}

// DefaultStatusWindow is how long a message waits for a delivery status
// before the next channel is tried.
const DefaultStatusWindow = 15 * time.Minute

// statusWindows are shorter windows of kinds that lose their point when
// late: the waitlist offer's and the deposit's holds lapse, the 2-hour
// reminder is near the start. A configured window shorter than these
// wins.
var statusWindows = map[Kind]time.Duration{
	KindWaitlistOffer:   5 * time.Minute,
	KindAppointmentHeld: 5 * time.Minute,
	KindReminder2h:      10 * time.Minute,
}

// StatusWindow is how long a message of kind k waits for a delivery
// status before it falls back.
func (s *Service) StatusWindow(k Kind) time.Duration {
	w := s.cfg.StatusWindow
	if d, ok := statusWindows[k]; ok && d < w {
		return d
	}
	return w
}

// statusRank orders a notification's statuses by how far the message got
// as its provider tells it: failed is above sent (a late "sent" never
// undoes it) and below delivered (a message the provider says arrived,
// arrived). Applying a status keeps the higher rank, so statuses applied
// twice or in any order end the same; 0 takes no status (queued, dead:
// not in the provider's hands).
func statusRank(st persistence.NotificationStatus) int {
	switch st {
	case persistence.NotificationSent:
		return 1
	case persistence.NotificationFailed:
		return 2
	case persistence.NotificationDelivered:
		return 3
	case persistence.NotificationRead:
		return 4
	}
	return 0
}

// delivered: the provider said the message arrived ("read" without
// "delivered" counts as delivered).
func delivered(st persistence.NotificationStatus) bool { return statusRank(st) >= 3 }

// providerStatus maps a provider's status onto a notification status.
func providerStatus(s string) (persistence.NotificationStatus, bool) {
	switch s {
	case "sent":
		return persistence.NotificationSent, true
	case "delivered":
		return persistence.NotificationDelivered, true
	case "read":
		return persistence.NotificationRead, true
	case "failed", "undelivered":
		return persistence.NotificationFailed, true
	}
	return "", false
}

// applyStatus is n after its provider reported st, and whether that
// changed it.
func applyStatus(n persistence.Notification, st inbound.Status, now time.Time) (persistence.Notification, bool) {
	to, ok := providerStatus(st.Status)
	if !ok || statusRank(n.Status) == 0 || statusRank(to) <= statusRank(n.Status) {
		return n, false
	}
	n.Status, n.UpdatedAt = to, now
	if to == persistence.NotificationFailed {
		n.LastError = st.Provider + " reported the message failed"
		if st.ErrorCode != "" {
			n.LastError += " (code " + st.ErrorCode + ")"
		}
	}
	return n, true
}

// EarlyStatusTTL is how long a status that names no notification yet is
// kept for its send's row: far longer than the one store write it waits
// for, short enough that the statuses of messages that are not
// notifications do not pile up.
const EarlyStatusTTL = time.Hour

// applyEarly applies to n, just recorded as sent with its provider id,
// the statuses that arrived before the id was recorded (in tx, which
// deletes them).
func applyEarly(ctx context.Context, tx persistence.Tx, n persistence.Notification, now time.Time) (persistence.Notification, error) {
	early, err := tx.EarlyStatusTake(ctx, n.ProviderMessageID)
	if err != nil {
		return n, err
	}
	for _, e := range early {
		n, _ = applyStatus(n, inbound.Status{Provider: e.Provider, MessageID: e.ProviderMessageID, Status: e.Status,
			ErrorCode: e.ErrorCode}, now)
	}
	return n, nil
}

// transition is one status applied: what happens once it is committed.
type transition struct {
	n    persistence.Notification
	from persistence.NotificationStatus
}

// ApplyStatuses applies statuses in tx: each to the notification its
// provider id names (ids of other messages, such as sign-in codes, are
// ignored). after counts and logs what changed and falls back from the
// messages that failed; call it once tx has committed. The inbox calls it
// in the transaction that marks the webhook's body applied.
func (s *Service) ApplyStatuses(ctx context.Context, tx persistence.Tx, statuses []inbound.Status) (after func(context.Context), err error) {
	var changed []transition
	now := s.deps.Now()
	for _, st := range statuses {
		n, err := tx.NotificationByProviderMessage(ctx, st.MessageID)
		if errors.Is(err, persistence.ErrNotFound) {
			// Perhaps its send's row is not written yet: kept until it is
			// (send applies it), dropped after EarlyStatusTTL if never.
			if _, ok := providerStatus(st.Status); ok && st.MessageID != "" {
				err = tx.EarlyStatusPut(ctx, persistence.EarlyStatus{ProviderMessageID: st.MessageID, Provider: st.Provider,
					Status: st.Status, ErrorCode: st.ErrorCode, ReceivedAt: now}, now.Add(-EarlyStatusTTL))
			}
			if err != nil && !errors.Is(err, persistence.ErrNotFound) {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		next, ok := applyStatus(n, st, now)
		if !ok {
			continue
		}
		if err := tx.NotificationUpdate(ctx, next); err != nil {
			return nil, err
		}
		changed = append(changed, transition{n: next, from: n.Status})
	}
	return func(ctx context.Context) {
		for _, c := range changed {
			s.afterStatus(ctx, c)
		}
	}, nil
}

// ReceiveStatuses is inbound.StatusReceiver: ApplyStatuses in a
// transaction of its own.
func (s *Service) ReceiveStatuses(ctx context.Context, statuses []inbound.Status) error {
	var after func(context.Context)
	if err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		after, err = s.ApplyStatuses(ctx, tx, statuses)
		return err
	}); err != nil {
		return err
	}
	after(ctx)
	return nil
}

var _ inbound.StatusReceiver = (*Service)(nil)

func (s *Service) afterStatus(ctx context.Context, c transition) {
	n := c.n
	log := s.deps.Log.With("id", n.ID, "kind", n.Kind, "channel", n.Channel, "from", string(c.from), "to", string(n.Status))
	if delivered(n.Status) && !delivered(c.from) {
		s.deps.Metrics.delivered(n)
	}
	if n.Status != persistence.NotificationFailed {
		log.Debug("delivery status applied")
		return
	}
	s.deps.Metrics.failed(n, FailedStatus)
	log.Warn("the provider reports the message failed; falling back", "error", n.LastError)
	if s.deps.Checks == nil {
		return
	}
	// The check was scheduled when the message was sent; firing it now
	// falls back at once. Should this fail, it still fires at the end of
	// the window and finds the message failed.
	if err := s.deps.Checks.Fire(ctx, n.ID); err != nil {
		log.Warn("delivery check not fired; the fallback waits for the end of the window", "err", err)
	}
}

// scheduleCheck makes sure n falls back if no status says it arrived
// within its kind's window. It is called before n is handed to the
// provider: a check that cannot be kept sends nothing (the event is
// retried), and a check that fires for a message not sent yet finds it
// queued and does nothing.
func (s *Service) scheduleCheck(ctx context.Context, n persistence.Notification) error {
	cause, ok := causeOf(ctx)
	if s.deps.Checks == nil || !ok {
		return nil
	}
	// Set from now, it fires a little before the window counted from the
	// send ends; CheckDelivery then waits out the rest.
	at := s.deps.Now().Add(s.StatusWindow(Kind(n.Kind)))
	return s.deps.Checks.Schedule(ctx, n.ID, cause, at)
}

// CheckDelivery is a fired delivery check of notification id: fallBack
// reports whether its cause should be handled again to go on to the next
// channel (it failed, or no status came within the window and it is
// marked failed now). A check that fired early (a retry sent the message
// later than the check was set for) is a *RetryError until the window
// ends.
func (s *Service) CheckDelivery(ctx context.Context, id string) (fallBack bool, err error) {
	var n persistence.Notification
	var window time.Duration
	var expired bool
	err = s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		expired = false
		n, err = tx.NotificationGet(ctx, id)
		if err != nil {
			return err
		}
		window = s.StatusWindow(Kind(n.Kind))
		now := s.deps.Now()
		if n.Status != persistence.NotificationSent {
			return nil
		}
		if due := n.SentAt.Add(window); now.Before(due) {
			return &RetryError{After: due.Sub(now), Err: errors.New("the delivery window is still open")}
		}
		n.Status, n.UpdatedAt, expired = persistence.NotificationFailed, now, true
		n.LastError = fmt.Sprintf("no delivery status within %s", window)
		return tx.NotificationUpdate(ctx, n)
	})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	if expired {
		s.deps.Metrics.failed(n, FailedNoStatus)
		s.deps.Log.Warn("no delivery status within the window; falling back", "id", n.ID, "kind", n.Kind,
			"channel", n.Channel, "window", window.String())
	}
	// failed: by a status, the window, or refused when sent (the next
	// channel was tried then; handling again finds it done). Delivered
	// or read: done. Queued: its event is still being retried and sets
	// the check again. Dead: a dead letter.
	return n.Status == persistence.NotificationFailed, nil
}
