package notify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Dead letters (docs/notifications.md, Retries and dead letters): a
// notification whose transient failures outlasted its attempts is parked,
// with the message that caused it, in a dead-letter queue (JetStream:
// cluster/notifyjs) that an admin lists grouped by error, retries or
// discards, every action audited.

// DeadError is what Handle returns when a notification is dead: its last
// attempt failed for now, or a redelivered cause found it dead already
// (so a parking that failed is tried again). The caller parks the message
// it handled and acknowledges it.
type DeadError struct {
	Notification persistence.Notification
	// Class is the failure's stable name (ErrorClass).
	Class string
}

func (e *DeadError) Error() string {
	return fmt.Sprintf("notify: %s dead after %d attempts (%s): %s", e.Notification.ID, e.Notification.Attempts, e.Class, e.Notification.LastError)
}

// Error classes: the grouping key of dead letters, stable across
// occurrences (the error's text carries numbers, ids and times).
const (
	ClassBreakerOpen         = "breaker_open"
	ClassTimeout             = "timeout"
	ClassProviderUnavailable = "provider_unavailable"
	ClassError               = "error"
)

// ErrorClass names err's kind of failure: the breaker refused the call,
// the call timed out, the provider said it is unavailable (5xx, 429,
// network), anything else.
func ErrorClass(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, resilient.ErrOpen):
		return ClassBreakerOpen
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, sender.ErrUnavailable):
		return ClassProviderUnavailable
	}
	return textClass(err.Error())
}

// textClass is ErrorClass from a stored error's text, for a notification
// found dead on redelivery: the sentinels' texts are part of every
// wrapped message.
func textClass(msg string) string {
	switch {
	case strings.Contains(msg, resilient.ErrOpen.Error()):
		return ClassBreakerOpen
	case strings.Contains(msg, context.DeadlineExceeded.Error()):
		return ClassTimeout
	case strings.Contains(msg, sender.ErrUnavailable.Error()):
		return ClassProviderUnavailable
	}
	return ClassError
}

// DeadLetter is one parked message as the queue lists it.
type DeadLetter struct {
	// ID is the queue's id of the letter (the stream sequence).
	ID             string
	NotificationID string
	Kind           string
	Channel        string
	ErrorClass     string
	// Error is the last error, the recipient masked.
	Error    string
	Attempts int
	// Retries is how many times an admin retried it before.
	Retries  int
	QueuedAt time.Time
	DeadAt   time.Time
}

// DeadLetterQueue keeps the parked messages (cluster/notifyjs).
type DeadLetterQueue interface {
	// List returns up to limit letters, oldest first, and whether more
	// are parked.
	List(ctx context.Context, limit int) ([]DeadLetter, bool, error)
	// Get returns one letter; persistence.ErrNotFound when absent.
	Get(ctx context.Context, id string) (DeadLetter, error)
	// Requeue hands the letter's message to the consumer again (once per
	// retry, however often it is called) and removes the letter;
	// persistence.ErrNotFound when absent.
	Requeue(ctx context.Context, id string) error
	// Remove drops the letter; persistence.ErrNotFound when absent.
	Remove(ctx context.Context, id string) error
}

// Limits of the dead-letter admin.
const (
	// MaxDeadLettersScanned is how many letters a listing or a group
	// action reads; a larger queue is reported truncated and a group
	// action is repeated for the rest.
	MaxDeadLettersScanned = 10000
	// DefaultDeadLettersShown and MaxDeadLettersShown: letters shown per
	// group.
	DefaultDeadLettersShown = 20
	MaxDeadLettersShown     = 200
	// MaxDeadLettersPerAction bounds what one retry or discard of a class
	// does, so the request ends well within its deadline; the answer says
	// when letters remain.
	MaxDeadLettersPerAction = 500
)

// DeadLetterGroup is the letters of one error class.
type DeadLetterGroup struct {
	ErrorClass string
	Count      int
	// FirstSeen and LastSeen: the oldest and newest letter's death.
	FirstSeen, LastSeen time.Time
	// Example is the newest letter's error.
	Example string
	// Letters are the oldest of the group, up to the limit asked for.
	Letters []DeadLetter
}

// DeadLetterSummary is the queue grouped by error class, the largest
// group first.
type DeadLetterSummary struct {
	Total     int
	Truncated bool
	Groups    []DeadLetterGroup
}

// DeadLetters is the admin's use case over the queue.
type DeadLetters struct {
	store persistence.Store
	queue DeadLetterQueue
	now   func() time.Time
}

// NewDeadLetters is the dead-letter admin over store and queue (now: nil
// is time.Now).
func NewDeadLetters(store persistence.Store, queue DeadLetterQueue, now func() time.Time) *DeadLetters {
	if now == nil {
		now = time.Now
	}
	return &DeadLetters{store: store, queue: queue, now: now}
}

func requireDeadLetterAdmin(by service.Caller) error {
	if by.Role != auth.RoleAdmin {
		return fault.Forbidden("dead letters are managed by admins")
	}
	return nil
}

// Summary groups the parked letters by error class, each group with
// count, first and last seen and its oldest perGroup letters.
func (d *DeadLetters) Summary(ctx context.Context, by service.Caller, perGroup int) (DeadLetterSummary, error) {
	if err := requireDeadLetterAdmin(by); err != nil {
		return DeadLetterSummary{}, err
	}
	letters, more, err := d.queue.List(ctx, MaxDeadLettersScanned)
	if err != nil {
		return DeadLetterSummary{}, err
	}
	byClass := map[string]*DeadLetterGroup{}
	var groups []*DeadLetterGroup
	for _, l := range letters {
		g := byClass[l.ErrorClass]
		if g == nil {
			g = &DeadLetterGroup{ErrorClass: l.ErrorClass, FirstSeen: l.DeadAt}
			byClass[l.ErrorClass] = g
			groups = append(groups, g)
		}
		g.Count++
		if l.DeadAt.Before(g.FirstSeen) {
			g.FirstSeen = l.DeadAt
		}
		if !l.DeadAt.Before(g.LastSeen) {
			g.LastSeen, g.Example = l.DeadAt, l.Error
		}
		if len(g.Letters) < perGroup {
			g.Letters = append(g.Letters, l)
		}
	}
	slices.SortStableFunc(groups, func(a, b *DeadLetterGroup) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.ErrorClass, b.ErrorClass))
	})
	out := DeadLetterSummary{Total: len(letters), Truncated: more, Groups: make([]DeadLetterGroup, len(groups))}
	for i, g := range groups {
		out.Groups[i] = *g
	}
	return out, nil
}

// DeadLetterSelector names the letters an action applies to: one letter
// by id, or every letter of an error class.
type DeadLetterSelector struct {
	ID         string
	ErrorClass string
}

// ActionResult is what a retry or discard did: letters acted on, and
// whether letters of the class may remain (past the per-action cap or
// the scan): repeat the action.
type ActionResult struct {
	Done      int
	Remaining bool
}

func (d *DeadLetters) selected(ctx context.Context, sel DeadLetterSelector) ([]DeadLetter, bool, error) {
	switch {
	case (sel.ID == "") == (sel.ErrorClass == ""):
		return nil, false, fault.Invalid("name one letter or one error class",
			fault.FieldError{Field: "id", Message: "give either id or error_class"})
	case sel.ID != "":
		l, err := d.queue.Get(ctx, sel.ID)
		if err != nil {
			return nil, false, fault.IfNotFound(err, "dead letter "+sel.ID)
		}
		return []DeadLetter{l}, false, nil
	}
	letters, more, err := d.queue.List(ctx, MaxDeadLettersScanned)
	if err != nil {
		return nil, false, err
	}
	letters = slices.DeleteFunc(letters, func(l DeadLetter) bool { return l.ErrorClass != sel.ErrorClass })
	if len(letters) == 0 && !more {
		return nil, false, fault.NotFound("no dead letters of class " + sel.ErrorClass)
	}
	if len(letters) > MaxDeadLettersPerAction {
		letters, more = letters[:MaxDeadLettersPerAction], true
	}
	return letters, more, nil
}

// Retry hands the selected letters to the consumer again. Each letter's
// notification, if dead, is queued again with a fresh round of attempts
// (a notification sent meanwhile stays sent: its stable id keeps the
// retry from sending it twice); the retry is audited
// (notification_dead_letter.retry), then the message requeued under an id
// of its own per retry, and the letter removed.
func (d *DeadLetters) Retry(ctx context.Context, by service.Caller, sel DeadLetterSelector) (ActionResult, error) {
	if err := requireDeadLetterAdmin(by); err != nil {
		return ActionResult{}, err
	}
	letters, more, err := d.selected(ctx, sel)
	if err != nil {
		return ActionResult{}, err
	}
	var res ActionResult
	for _, l := range letters {
		err := d.store.InTx(ctx, func(tx persistence.Tx) error {
			now := d.now().UTC()
			n, err := tx.NotificationGet(ctx, l.NotificationID)
			switch {
			case errors.Is(err, persistence.ErrNotFound):
			case err != nil:
				return err
			case n.Status == persistence.NotificationDead:
				n.Status, n.Attempts, n.UpdatedAt = persistence.NotificationQueued, 0, now
				if err := tx.NotificationUpdate(ctx, n); err != nil {
					return err
				}
			}
			return service.Audit(ctx, tx, now, by, "notification_dead_letter.retry", "notification/"+l.NotificationID, "",
				letterDetail(l))
		})
		if err != nil {
			return res, err
		}
		if err := d.queue.Requeue(ctx, l.ID); err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return res, err
		}
		res.Done++
	}
	res.Remaining = more
	return res, nil
}

// Discard drops the selected letters for good: confirm must be set. Each
// is audited (notification_dead_letter.discard) before it is removed; its
// notification stays dead.
func (d *DeadLetters) Discard(ctx context.Context, by service.Caller, sel DeadLetterSelector, confirm bool) (ActionResult, error) {
	if err := requireDeadLetterAdmin(by); err != nil {
		return ActionResult{}, err
	}
	if !confirm {
		return ActionResult{}, fault.Invalid("discarding is for good: confirm it",
			fault.FieldError{Field: "confirm", Message: "must be true"})
	}
	letters, more, err := d.selected(ctx, sel)
	if err != nil {
		return ActionResult{}, err
	}
	var res ActionResult
	for _, l := range letters {
		if err := d.store.InTx(ctx, func(tx persistence.Tx) error {
			return service.Audit(ctx, tx, d.now().UTC(), by, "notification_dead_letter.discard", "notification/"+l.NotificationID, "",
				letterDetail(l))
		}); err != nil {
			return res, err
		}
		if err := d.queue.Remove(ctx, l.ID); err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return res, err
		}
		res.Done++
	}
	res.Remaining = more
	return res, nil
}

func letterDetail(l DeadLetter) map[string]any {
	return map[string]any{"letter": l.ID, "kind": l.Kind, "channel": l.Channel, "error_class": l.ErrorClass,
		"attempts": l.Attempts, "retries": l.Retries}
}
