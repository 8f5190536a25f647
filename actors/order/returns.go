package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// DefaultCreditValidity is how long credit refunded for a return, or
// granted without an expiry, stays spendable.
const DefaultCreditValidity = 365 * 24 * time.Hour

// ReturnRequest asks to send back units of an order.
type ReturnRequest struct {
	ID       string // the new return's ULID
	OrderID  string
	ClientID string // when set, the order must be this client's (else ErrNotFound)
	Lines    []persistence.ReturnLine
	Reason   string
	Actor    Actor
	At       time.Time
}

// RequestReturn records a return of a paid, fulfilled or partially
// returned order. The units are held against the order lines at once, so
// they cannot be asked back twice while staff decide.
//
// Errors: ErrNotFound, ErrNotReturnable, persistence.ErrReturnExceedsOrder,
// persistence.ErrInvalid.
func RequestReturn(ctx context.Context, tx persistence.Tx, req ReturnRequest) (persistence.Return, error) {
	o, err := tx.OrderGet(ctx, req.OrderID)
	if err == nil && req.ClientID != "" && o.ClientID != req.ClientID {
		err = fmt.Errorf("order %s: %w", req.OrderID, persistence.ErrNotFound) // another client's order does not exist for you
	}
	if err != nil {
		return persistence.Return{}, err
	}
	if !Returnable(o.Status) {
		return persistence.Return{}, fmt.Errorf("order %s is %s: %w", o.ID, o.Status, ErrNotReturnable)
	}
	r := persistence.Return{ID: req.ID, OrderID: o.ID, ClientID: o.ClientID, Status: persistence.ReturnRequested,
		Reason: req.Reason, Lines: req.Lines, RequestedBy: req.Actor.ID, CreatedAt: req.At}
	if err := tx.ReturnCreate(ctx, r); err != nil {
		return persistence.Return{}, err
	}
	units := 0
	for _, l := range req.Lines {
		units += l.Qty
	}
	if err := audit(ctx, tx, req.Actor, "order.return_requested", "order/"+o.ID, o.ClientID, req.Reason, req.At,
		map[string]any{"return_id": r.ID, "lines": len(req.Lines), "units": units}); err != nil {
		return persistence.Return{}, err
	}
	return tx.ReturnGet(ctx, r.ID)
}

// ReturnDecision is staff's verdict on a requested return.
type ReturnDecision struct {
	ReturnID string
	Accept   bool
	// Damaged names the order lines whose units came back damaged: they
	// are refunded but not restocked.
	Damaged        map[string]bool
	CreditValidity time.Duration // 0: DefaultCreditValidity
	Actor          Actor
	Reason         string
	At             time.Time
}

// ReturnResult is what processing a return did.
type ReturnResult struct {
	Return            persistence.Return
	Order             persistence.Order
	Grant             *persistence.CreditGrant // the refund; nil when rejected or worth 0
	RestockedVariants []string
}

// ProcessReturn completes or rejects a requested return. Completing it
// restocks the undamaged units, refunds the units' price and tax to the
// client's credit (see RefundMinor) and moves the order to returned, when
// every unit sold has now come back, or partially_returned. Rejecting it
// frees the units for another request.
//
// Errors: ErrNotFound, persistence.ErrStatusMismatch (already processed),
// *TransitionError when the order's status no longer accepts returns.
func ProcessReturn(ctx context.Context, tx persistence.Tx, d ReturnDecision) (ReturnResult, error) {
	r, err := tx.ReturnGet(ctx, d.ReturnID)
	if err != nil {
		return ReturnResult{}, err
	}
	if r.Status != persistence.ReturnRequested {
		return ReturnResult{}, persistence.ReturnNotRequested(r.ID)
	}
	o, err := tx.OrderGet(ctx, r.OrderID)
	if err != nil {
		return ReturnResult{}, err
	}
	for id := range d.Damaged {
		if !hasLine(r.Lines, id) {
			return ReturnResult{}, fmt.Errorf("%w: line %s is not in return %s", persistence.ErrInvalid, id, r.ID)
		}
	}
	if !d.Accept {
		res, err := tx.ReturnResolve(ctx, persistence.Return{ID: r.ID, Status: persistence.ReturnRejected,
			ProcessedBy: d.Actor.ID, UpdatedAt: d.At})
		if err != nil {
			return ReturnResult{}, err
		}
		if err := audit(ctx, tx, d.Actor, "order.return_rejected", "order/"+o.ID, o.ClientID, d.Reason, d.At,
			map[string]any{"return_id": r.ID}); err != nil {
			return ReturnResult{}, err
		}
		if err := emit(ctx, tx, d.Actor, o.ID, d.At, &messages.ReturnProcessed{ReturnId: r.ID, OrderId: o.ID,
			ClientId: o.ClientID, Status: string(persistence.ReturnRejected)}); err != nil {
			return ReturnResult{}, err
		}
		return ReturnResult{Return: res, Order: o}, nil
	}
	if !Returnable(o.Status) {
		return ReturnResult{}, &TransitionError{OrderID: o.ID, From: o.Status, To: persistence.OrderPartiallyReturned}
	}
	done, err := completedUnits(ctx, tx, o.ID)
	if err != nil {
		return ReturnResult{}, err
	}
	refund, err := RefundMinor(o, done, r.Lines)
	if err != nil {
		return ReturnResult{}, fmt.Errorf("%w: refund of return %s: %w", persistence.ErrInvalid, r.ID, err)
	}
	lines := make([]persistence.ReturnLine, len(r.Lines))
	for i, l := range r.Lines {
		lines[i] = persistence.ReturnLine{OrderLineID: l.OrderLineID, Qty: l.Qty, Damaged: d.Damaged[l.OrderLineID]}
	}
	resolved, err := tx.ReturnResolve(ctx, persistence.Return{ID: r.ID, Status: persistence.ReturnCompleted,
		RefundMinor: refund, ProcessedBy: d.Actor.ID, UpdatedAt: d.At, Lines: lines})
	if err != nil {
		return ReturnResult{}, err
	}
	out := ReturnResult{Return: resolved}

	var back []restockLine
	for _, l := range resolved.Lines {
		done[l.OrderLineID] += l.Qty
		if !l.Damaged {
			back = append(back, restockLine{variantID: lineByID(o, l.OrderLineID).VariantID, qty: l.Qty})
		}
	}
	if out.RestockedVariants, err = restock(ctx, tx, back, d.Actor, "return "+r.ID, o.ID, d.At); err != nil {
		return ReturnResult{}, err
	}
	if refund > 0 {
		validity := d.CreditValidity
		if validity <= 0 {
			validity = DefaultCreditValidity
		}
		g := persistence.CreditGrant{ID: ulid.Make().String(), ClientID: o.ClientID, AmountMinor: refund,
			Reason: "return " + r.ID, ReturnID: r.ID, GrantedBy: d.Actor.ID, CreatedAt: d.At, ExpiresAt: d.At.Add(validity)}
		if err := tx.CreditGrant(ctx, g); err != nil {
			return ReturnResult{}, err
		}
		g.RemainingMinor = g.AmountMinor
		out.Grant = &g
	}
	to := persistence.OrderReturned
	for _, l := range o.Lines {
		if done[l.ID] < l.Qty {
			to = persistence.OrderPartiallyReturned
		}
	}
	tr, err := transition(ctx, tx, o, Change{OrderID: o.ID, To: to, Actor: d.Actor, Reason: "return " + r.ID, At: d.At})
	if err != nil {
		return ReturnResult{}, err
	}
	out.Order = tr.Order
	if err := audit(ctx, tx, d.Actor, "order.return_completed", "order/"+o.ID, o.ClientID, d.Reason, d.At,
		map[string]any{"return_id": r.ID, "refund_minor": refund, "restocked_variants": len(out.RestockedVariants)}); err != nil {
		return ReturnResult{}, err
	}
	if err := emit(ctx, tx, d.Actor, o.ID, d.At, &messages.ReturnProcessed{ReturnId: r.ID, OrderId: o.ID,
		ClientId: o.ClientID, Status: string(persistence.ReturnCompleted), RefundMinor: refund}); err != nil {
		return ReturnResult{}, err
	}
	return out, nil
}

// RefundMinor is the credit due for the return lines of o, given the units
// of each line already refunded by completed returns. Each line's tax is
// the difference of the line's rounded tax on the units returned so far
// and after this return, so the refunds of a line returned in several
// parts add up to exactly what the line charged.
func RefundMinor(o persistence.Order, refunded map[string]int, lines []persistence.ReturnLine) (int64, error) {
	var total money.Sum
	for _, rl := range lines {
		l := lineByID(o, rl.OrderLineID)
		before := int64(refunded[l.ID])
		after := before + int64(rl.Qty)
		taxAfter, errAfter := money.Tax(after, l.UnitPriceMinor, l.TaxRateBps)
		taxBefore, errBefore := money.Tax(before, l.UnitPriceMinor, l.TaxRateBps)
		total.AddResult(money.Times(int64(rl.Qty), l.UnitPriceMinor))
		total.AddResult(taxAfter-taxBefore, errors.Join(errAfter, errBefore))
	}
	return total.Total()
}

// completedUnits sums, per order line, the units of the order's completed
// returns.
func completedUnits(ctx context.Context, tx persistence.Tx, orderID string) (map[string]int, error) {
	done := map[string]int{}
	before := ""
	for {
		page, err := tx.ReturnList(ctx, persistence.ReturnListParams{OrderID: orderID,
			Status: persistence.ReturnCompleted, BeforeID: before, Limit: persistence.MaxOrderListLimit})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			for _, l := range r.Lines {
				done[l.OrderLineID] += l.Qty
			}
		}
		if len(page) < persistence.MaxOrderListLimit {
			return done, nil
		}
		before = page[len(page)-1].ID
	}
}

func hasLine(lines []persistence.ReturnLine, id string) bool {
	for _, l := range lines {
		if l.OrderLineID == id {
			return true
		}
	}
	return false
}

func lineByID(o persistence.Order, id string) persistence.OrderLine {
	for _, l := range o.Lines {
		if l.ID == id {
			return l
		}
	}
	return persistence.OrderLine{}
}

// GrantRequest is a manual credit grant by staff.
type GrantRequest struct {
	ID          string
	ClientID    string
	AmountMinor int64
	ExpiresAt   time.Time // zero: At + DefaultCreditValidity
	Actor       Actor
	Reason      string
	At          time.Time
}

// GrantCredit adds credit to a client's balance and audits it.
func GrantCredit(ctx context.Context, tx persistence.Tx, req GrantRequest) (persistence.CreditGrant, error) {
	if req.ExpiresAt.IsZero() {
		req.ExpiresAt = req.At.Add(DefaultCreditValidity)
	}
	g := persistence.CreditGrant{ID: req.ID, ClientID: req.ClientID, AmountMinor: req.AmountMinor, Reason: req.Reason,
		GrantedBy: req.Actor.ID, CreatedAt: req.At, ExpiresAt: req.ExpiresAt}
	if err := tx.CreditGrant(ctx, g); err != nil {
		return persistence.CreditGrant{}, err
	}
	if err := audit(ctx, tx, req.Actor, "credit.grant", "client/"+req.ClientID, req.ClientID, req.Reason, req.At,
		map[string]any{"grant_id": g.ID, "amount_minor": g.AmountMinor}); err != nil {
		return persistence.CreditGrant{}, err
	}
	g.CreatedAt, g.ExpiresAt = persistence.CanonicalTime(g.CreatedAt), persistence.CanonicalTime(g.ExpiresAt)
	g.RemainingMinor = g.AmountMinor
	return g, nil
}

// errIsMismatch reports a lost race on a status.
func errIsMismatch(err error) bool { return errors.Is(err, persistence.ErrStatusMismatch) }
