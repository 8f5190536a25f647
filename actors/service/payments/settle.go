package payments

import (
	"context"
	"errors"

	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/persistence"
)

// Settler settles what an approved intent pays, inside the apply's
// transaction: the shop order becomes paid, a deposit is held for its
// appointment (deposit.go), a voucher bought online is issued (voucher.go).
type Settler interface {
	// Settle applies the approval to the intent's subject. settled is
	// false, with why, when the subject can no longer take it (the order
	// expired or was cancelled or paid at the desk meanwhile): the money
	// then goes to suspense with an exception open, never lost and never
	// counted twice. An error aborts the whole apply.
	Settle(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, by order.Actor) (settled bool, why string, err error)
	// Account is the ledger account a settled approval credits.
	Account() string
}

// OrderSettler moves a shop order from pending_payment to paid with the
// order state machine's own transition (the one the front desk's "mark
// paid" makes), audit entry included.
type OrderSettler struct{}

// Account is persistence.AccountOrders.
func (OrderSettler) Account() string { return persistence.AccountOrders }

// Settle marks the order paid, or reports why it cannot be.
func (OrderSettler) Settle(ctx context.Context, tx persistence.Tx, in persistence.PaymentIntent, by order.Actor) (bool, string, error) {
	o, err := tx.OrderGet(ctx, in.SubjectID)
	if errors.Is(err, persistence.ErrNotFound) {
		return false, "the order does not exist", nil
	}
	if err != nil {
		return false, "", err
	}
	if o.TotalMinor != in.AmountMinor {
		return false, "the order's total is not the amount paid", nil
	}
	_, err = order.Transition(ctx, tx, order.Change{OrderID: in.SubjectID, To: persistence.OrderPaid, Actor: by,
		Reason: "paid online (payment " + in.ID + ", Wompi transaction " + in.TransactionID + ")", At: in.UpdatedAt})
	var te *order.TransitionError
	if errors.As(err, &te) {
		return false, "the order is " + string(te.From) + " and cannot become paid", nil
	}
	if err != nil {
		return false, "", err
	}
	return true, "", nil
}
