// Package order is the shop's order lifecycle above the store: the state
// machine (which transitions are allowed, and what each one does to stock
// and credit), returns with their refunds to client credit, manual credit
// grants, the expiry of unpaid orders and the validation of shipping
// addresses.
//
// Unlike stock, an order is not contended: only its client, the front desk
// and the expiry sweep touch it, so it needs no actor. Every function here
// runs inside the caller's transaction (persistence.Tx), and the store's
// conditional status update (OrderTransition) makes the race between, say,
// the desk marking an order paid and the sweep expiring it come out as one
// winner and one ErrStatusMismatch. Each transition writes its audit entry
// and its OrderChanged event (the outbox) in the same transaction.
//
// Checkout (the cart package) creates orders with persistence.OrderCreate
// and spends credit with CreditSpend in its own transaction; it should
// validate the fulfilment with CheckFulfilment first.
package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Actor is who makes a change, for the audit log.
type Actor struct {
	ID        string // the principal's subject, or SystemActor
	Role      string
	RequestID string
}

// SystemActor is the actor ID of changes made by background work.
const SystemActor = "system"

// System is the actor of the expiry sweep.
var System = Actor{ID: SystemActor, Role: SystemActor}

// ErrTransitionRefused: the order's current status does not allow the
// requested one. Errors wrapping it are *TransitionError.
var ErrTransitionRefused = errors.New("order: transition not allowed")

// ErrNotReturnable: the order is not in a status that accepts returns
// (it was never paid, or was cancelled or expired).
var ErrNotReturnable = errors.New("order: order cannot be returned in its status")

// TransitionError names the refused transition.
type TransitionError struct {
	OrderID  string
	From, To persistence.OrderStatus
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("order %s is %s and cannot become %s", e.OrderID, e.From, e.To)
}

// Unwrap lets errors.Is find ErrTransitionRefused.
func (e *TransitionError) Unwrap() error { return ErrTransitionRefused }

// transitions is the state machine: from each status, the statuses it may
// move to. Cancelled, expired and returned are final.
var transitions = map[persistence.OrderStatus][]persistence.OrderStatus{
	persistence.OrderPendingPayment: {persistence.OrderPaid, persistence.OrderCancelled, persistence.OrderExpired},
	persistence.OrderPaid: {persistence.OrderFulfilled, persistence.OrderCancelled,
		persistence.OrderPartiallyReturned, persistence.OrderReturned},
	persistence.OrderFulfilled:         {persistence.OrderPartiallyReturned, persistence.OrderReturned},
	persistence.OrderPartiallyReturned: {persistence.OrderPartiallyReturned, persistence.OrderReturned},
}

// Allowed reports whether an order may move from one status to another.
func Allowed(from, to persistence.OrderStatus) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Returnable reports whether an order in status s accepts a return.
func Returnable(s persistence.OrderStatus) bool {
	return Allowed(s, persistence.OrderPartiallyReturned)
}

// Result is what a change did besides its status: the variants that got
// stock back (whose inventory actors should reload after commit, since
// their memory now under-counts on hand) and the credit moved.
type Result struct {
	Order             persistence.Order
	RestockedVariants []string
	CreditReturned    int64 // credit spent on the order and given back (cancel, expiry)
}

// Change asks for a status transition.
type Change struct {
	OrderID string
	To      persistence.OrderStatus
	Actor   Actor
	Reason  string
	At      time.Time
}

// Transition moves an order to ch.To if the state machine allows it from
// its current status, and applies the transition's effects in tx: a
// cancelled or expired order gives its unreturned units back to stock (as
// return movements: checkout turned its reservations into sales) and its
// spent credit back to the client. Returned and partially returned are
// reached through ProcessReturn, not here.
//
// Errors: ErrNotFound, *TransitionError (ErrTransitionRefused),
// persistence.ErrStatusMismatch when the order changed meanwhile.
func Transition(ctx context.Context, tx persistence.Tx, ch Change) (Result, error) {
	o, err := tx.OrderGet(ctx, ch.OrderID)
	if err != nil {
		return Result{}, err
	}
	if ch.To == persistence.OrderReturned || ch.To == persistence.OrderPartiallyReturned {
		return Result{}, &TransitionError{OrderID: o.ID, From: o.Status, To: ch.To}
	}
	return transition(ctx, tx, o, ch)
}

func transition(ctx context.Context, tx persistence.Tx, o persistence.Order, ch Change) (Result, error) {
	if !Allowed(o.Status, ch.To) {
		return Result{}, &TransitionError{OrderID: o.ID, From: o.Status, To: ch.To}
	}
	from := o.Status
	stored, err := tx.OrderTransition(ctx, persistence.OrderTransition{ID: o.ID, From: from, To: ch.To, At: ch.At})
	if err != nil {
		return Result{}, err
	}
	res := Result{Order: stored}
	if ch.To == persistence.OrderCancelled || ch.To == persistence.OrderExpired {
		// Returns still waiting for staff are moot once the order is void:
		// rejecting them gives their units back to the lines, which then
		// restock with the rest.
		rejected, err := rejectPending(ctx, tx, o.ID, ch)
		if err != nil {
			return Result{}, err
		}
		if rejected > 0 {
			if o, err = tx.OrderGet(ctx, o.ID); err != nil {
				return Result{}, err
			}
			res.Order = o
		}
		var back []restockLine
		for _, l := range o.Lines {
			back = append(back, restockLine{variantID: l.VariantID, qty: l.Qty - l.ReturnedQty})
		}
		if res.RestockedVariants, err = restock(ctx, tx, back, ch.Actor, "order "+o.ID+" "+string(ch.To), o.ID, ch.At); err != nil {
			return Result{}, err
		}
		if res.CreditReturned, err = tx.CreditReverse(ctx, o.ID, ch.At); err != nil {
			return Result{}, err
		}
	}
	detail := map[string]any{"from": from, "to": ch.To, "restocked_variants": len(res.RestockedVariants),
		"credit_returned_minor": res.CreditReturned}
	if err := audit(ctx, tx, ch.Actor, "order."+string(ch.To), "order/"+o.ID, o.ClientID, ch.Reason, ch.At, detail); err != nil {
		return Result{}, err
	}
	if err := emit(ctx, tx, ch.Actor, o.ID, ch.At, &messages.OrderChanged{OrderId: o.ID, ClientId: o.ClientID,
		FromStatus: string(from), ToStatus: string(ch.To), TotalMinor: stored.TotalMinor,
		Fulfilment: string(stored.Fulfilment), Version: stored.Version}); err != nil {
		return Result{}, err
	}
	return res, nil
}

// emit appends an order event to the outbox in tx, so it is published
// exactly when the change it tells of commits (the client hears of it
// through the notifications).
func emit(ctx context.Context, tx persistence.Tx, by Actor, orderID string, at time.Time, payload proto.Message) error {
	ev, err := persistence.NewOutboxEvent("order/"+orderID, by.RequestID, by.ID, payload, at)
	if err != nil {
		return err
	}
	return tx.OutboxAppend(ctx, ev)
}

// rejectPending rejects the order's requested returns and returns how
// many there were.
func rejectPending(ctx context.Context, tx persistence.Tx, orderID string, ch Change) (int, error) {
	pending, err := tx.ReturnList(ctx, persistence.ReturnListParams{OrderID: orderID, Status: persistence.ReturnRequested,
		Limit: persistence.MaxOrderListLimit})
	if err != nil {
		return 0, err
	}
	for _, r := range pending {
		if _, err := tx.ReturnResolve(ctx, persistence.Return{ID: r.ID, Status: persistence.ReturnRejected,
			ProcessedBy: ch.Actor.ID, UpdatedAt: ch.At}); err != nil {
			return 0, err
		}
		if err := audit(ctx, tx, ch.Actor, "order.return_rejected", "order/"+orderID, "", "order "+string(ch.To), ch.At,
			map[string]any{"return_id": r.ID}); err != nil {
			return 0, err
		}
	}
	return len(pending), nil
}

type restockLine struct {
	variantID string
	qty       int
}

// restock puts units back on hand with one return movement per line and
// returns the variants touched. The direct write is safe against
// overselling: the inventory actor re-checks stock in SQL when it
// reserves, so a memory that missed these units only under-sells until
// it reloads.
func restock(ctx context.Context, tx persistence.Tx, lines []restockLine, by Actor, reason, reference string, at time.Time) ([]string, error) {
	var variants []string
	for _, l := range lines {
		if l.qty <= 0 {
			continue
		}
		if _, err := tx.StockMove(ctx, persistence.StockMovement{ID: ulid.Make().String(), VariantID: l.variantID,
			Kind: persistence.MoveReturn, Qty: int64(l.qty), ActorID: by.ID, Reason: reason, Reference: reference,
			At: at}); err != nil {
			return nil, fmt.Errorf("order: restock %s: %w", l.variantID, err)
		}
		variants = append(variants, l.variantID)
	}
	return variants, nil
}

// audit appends one entry; detail must hold no PII. reason is free text
// about client (the order's buyer), sealed under the client's key.
func audit(ctx context.Context, tx persistence.Tx, by Actor, action, subject, client, reason string, at time.Time, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	return tx.AuditAppend(ctx, persistence.AuditEntry{ID: ulid.Make().String(), At: at, ActorID: by.ID,
		ActorRole: by.Role, Action: action, Subject: subject, RequestID: by.RequestID, Reason: reason, Detail: b,
		ReasonClient: client})
}
