package notify

import (
	"context"
	"fmt"
	"strings"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// The shop's kinds: an order paid, handed over or shipped, cancelled, and
// a return the desk decided. They are in the payments category (the
// client's purchases and money).
const (
	KindOrderPaid       Kind = "order_paid"
	KindOrderFulfilled  Kind = "order_fulfilled"
	KindOrderCancelled  Kind = "order_cancelled"
	KindReturnProcessed Kind = "return_processed"
)

// The shop kinds' variables.
var (
	// varOrder is the order's short reference, as the client's receipt
	// and the desk show it (the last 8 characters of its id).
	varOrder = Var{"Order", TypeText, "#7K3QX2M9"}
	// varFulfilment is "pickup" or "shipping".
	varFulfilment = Var{"Fulfilment", TypeText, "pickup"}
	// varOutcome is "completed" (refunded to the client's credit) or
	// "rejected".
	varOutcome = Var{"Outcome", TypeText, "completed"}
)

// orderRef is the short reference of an order id.
func orderRef(id string) string {
	if len(id) > 8 {
		id = id[len(id)-8:]
	}
	return "#" + strings.ToUpper(id)
}

// orderIntent is the message an order's change asks for, if any: paid,
// fulfilled and cancelled speak; an expiry (the checkout said until when
// it would wait) and the returned statuses (the return's own message
// tells) are silent. An order paid online is silent too: the payment's
// receipt (payment_approved, written in the same transaction as the
// order's move) already told the client, so only an order the desk marked
// paid gets order_paid.
func (s *Service) orderIntent(ctx context.Context, ev *messages.OrderChanged) (intent, bool, error) {
	in := intent{userID: ev.ClientId, order: ev.OrderId, fulfilment: ev.Fulfilment, amountMinor: ev.TotalMinor, currency: "COP"}
	switch persistence.OrderStatus(ev.ToStatus) {
	case persistence.OrderPaid:
		in.kind = KindOrderPaid
		paidOnline := false
		err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
			paidOnline = false
			intents, err := tx.PaymentIntentsOf(ctx, persistence.PaymentOrder, ev.OrderId)
			for _, p := range intents {
				paidOnline = paidOnline || p.Status == persistence.IntentApproved
			}
			return err
		})
		if err != nil || paidOnline {
			return in, false, err
		}
	case persistence.OrderFulfilled:
		in.kind = KindOrderFulfilled
	case persistence.OrderCancelled:
		in.kind = KindOrderCancelled
	default:
		return in, false, nil
	}
	in.cause = fmt.Sprintf("order:%s:%s:v%d", ev.OrderId, ev.ToStatus, ev.Version)
	return in, ev.ClientId != "" && ev.OrderId != "", nil
}

// returnIntent is the desk's decision on a return: one message per
// return (a return is decided once).
func returnIntent(ev *messages.ReturnProcessed) (intent, bool) {
	in := intent{kind: KindReturnProcessed, userID: ev.ClientId, order: ev.OrderId, outcome: ev.Status,
		amountMinor: ev.RefundMinor, currency: "COP", cause: fmt.Sprintf("return:%s:%s", ev.ReturnId, ev.Status)}
	return in, ev.ClientId != "" && ev.ReturnId != "" && ev.OrderId != ""
}

// orderVars are a shop kind's variables in lang; ok false for another kind.
func orderVars(in intent, lang string) (Vars, bool) {
	switch in.kind {
	case KindOrderPaid, KindOrderFulfilled, KindOrderCancelled:
		return Vars{"Order": orderRef(in.order), "Amount": formatMoney(in.amountMinor, in.currency, lang),
			"Fulfilment": in.fulfilment}, true
	case KindReturnProcessed:
		return Vars{"Order": orderRef(in.order), "Amount": formatMoney(in.amountMinor, in.currency, lang),
			"Outcome": in.outcome}, true
	}
	return nil, false
}
