package shop

import (
	"context"
	"errors"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Orders are created by checkout (the cart actors); here they are read,
// moved along the state machine and returned.

// OrderQuery selects a page of orders.
type OrderQuery struct {
	Page
	ClientID string // "": every client's (staff only)
	Status   string // "": any; else an order status
}

// MyOrders lists the caller's own orders.
func (s *Service) MyOrders(ctx context.Context, by service.Caller, q OrderQuery) (List[persistence.Order], error) {
	if err := allow(by, personRoles); err != nil {
		return List[persistence.Order]{}, err
	}
	q.ClientID = by.Subject
	return s.orders(ctx, q)
}

// Orders lists every client's orders, or one client's; staff only.
func (s *Service) Orders(ctx context.Context, by service.Caller, q OrderQuery) (List[persistence.Order], error) {
	if err := allow(by, staffRoles); err != nil {
		return List[persistence.Order]{}, err
	}
	if q.ClientID != "" {
		if err := clientID("client_id", q.ClientID); err != nil {
			return List[persistence.Order]{}, err
		}
	}
	return s.orders(ctx, q)
}

func (s *Service) orders(ctx context.Context, q OrderQuery) (List[persistence.Order], error) {
	limit, err := q.check()
	if err != nil {
		return List[persistence.Order]{}, err
	}
	var status []persistence.OrderStatus
	if q.Status != "" {
		st := persistence.OrderStatus(q.Status)
		if !st.Valid() {
			return List[persistence.Order]{}, fault.Invalid("", fault.FieldError{Field: "status", Message: "must be an order status"})
		}
		status = []persistence.OrderStatus{st}
	}
	return readPage(ctx, s, limit, func(tx persistence.Tx, limit int) ([]persistence.Order, error) {
		return tx.OrderList(ctx, persistence.OrderListParams{ClientID: q.ClientID, Status: status, BeforeID: q.Before, Limit: limit})
	}, func(o persistence.Order) string { return o.ID })
}

// OrderDetail is an order with its returns.
type OrderDetail struct {
	Order   persistence.Order
	Returns []persistence.Return
}

// MyOrder returns one of the caller's orders; another client's does not
// exist for them.
func (s *Service) MyOrder(ctx context.Context, by service.Caller, id string) (OrderDetail, error) {
	if err := allow(by, personRoles); err != nil {
		return OrderDetail{}, err
	}
	return s.order(ctx, id, by.Subject)
}

// Order returns any order; staff only.
func (s *Service) Order(ctx context.Context, by service.Caller, id string) (OrderDetail, error) {
	if err := allow(by, staffRoles); err != nil {
		return OrderDetail{}, err
	}
	return s.order(ctx, id, "")
}

// order reads an order with its returns; owner, when set, hides other
// clients' orders as absent.
func (s *Service) order(ctx context.Context, id, owner string) (d OrderDetail, err error) {
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if d.Order, err = tx.OrderGet(ctx, id); err != nil {
			return err
		}
		if owner != "" && d.Order.ClientID != owner {
			return persistence.ErrNotFound
		}
		d.Returns, err = tx.ReturnList(ctx, persistence.ReturnListParams{OrderID: d.Order.ID, Limit: persistence.MaxOrderListLimit})
		return err
	})
	if err != nil {
		return OrderDetail{}, fault.IfNotFound(err, "order")
	}
	return d, nil
}

// TransitionInput asks to move an order along: paid (the front desk took
// the payment), fulfilled (handed over or shipped) or cancelled.
type TransitionInput struct {
	OrderID string                  `json:"-"`
	To      persistence.OrderStatus `json:"-"`
	Reason  string                  `json:"reason"`
}

// Transition moves an order in tx; staff only. A cancelled order gives its
// units and spent credit back (see order.Transition): pass the result's
// RestockedVariants to Restock after commit.
func (s *Service) Transition(ctx context.Context, tx persistence.Tx, by service.Caller, in TransitionInput) (order.Result, error) {
	if err := allow(by, staffRoles); err != nil {
		return order.Result{}, err
	}
	var f check.Fields
	reason := f.Text("reason", in.Reason, 0, 500)
	switch in.To {
	case persistence.OrderPaid, persistence.OrderFulfilled, persistence.OrderCancelled:
	default: // expiry is the sweep's, returns go through ProcessReturn
		f.Add("to", "must be paid, fulfilled or cancelled")
	}
	if err := f.Err(); err != nil {
		return order.Result{}, err
	}
	res, err := order.Transition(ctx, tx, order.Change{OrderID: in.OrderID, To: in.To,
		Actor: actor(by), Reason: reason, At: s.now().UTC()})
	if err != nil {
		return order.Result{}, OrderFault(err)
	}
	return res, nil
}

// ---- Returns -------------------------------------------------------------------

// ReturnInput asks to send back units of an order.
type ReturnInput struct {
	OrderID string       `json:"-"`
	Reason  string       `json:"reason"`
	Lines   []ReturnLine `json:"lines"`
}

// ReturnLine is how many units of one order line go back.
type ReturnLine struct {
	OrderLineID string `json:"order_line_id"`
	Qty         int    `json:"qty"`
}

// RequestReturn records a return in tx: a client for their own order, the
// desk for any client's.
func (s *Service) RequestReturn(ctx context.Context, tx persistence.Tx, by service.Caller, in ReturnInput) (persistence.Return, error) {
	if err := allow(by, personRoles); err != nil {
		return persistence.Return{}, err
	}
	var f check.Fields
	reason := f.Text("reason", in.Reason, 3, 500)
	if len(in.Lines) == 0 || len(in.Lines) > 100 {
		f.Add("lines", "must list 1 to 100 order lines")
	}
	lines := make([]persistence.ReturnLine, 0, len(in.Lines))
	seen := map[string]bool{}
	for _, l := range in.Lines {
		if l.OrderLineID == "" || seen[l.OrderLineID] || l.Qty < 1 || l.Qty > 10000 {
			f.Add("lines", "each line names a different order line and a quantity from 1")
			break
		}
		seen[l.OrderLineID] = true
		lines = append(lines, persistence.ReturnLine{OrderLineID: l.OrderLineID, Qty: l.Qty})
	}
	if err := f.Err(); err != nil {
		return persistence.Return{}, err
	}
	owner := by.Subject
	if isStaff(by) {
		owner = "" // the desk may record a return for any client
	}
	r, err := order.RequestReturn(ctx, tx, order.ReturnRequest{ID: ulid.Make().String(), OrderID: in.OrderID,
		ClientID: owner, Lines: lines, Reason: reason, Actor: actor(by), At: s.now().UTC()})
	if err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return persistence.Return{}, fault.NotFound("order or order line not found")
		}
		return persistence.Return{}, OrderFault(err)
	}
	return r, nil
}

// ReturnQuery selects a page of returns.
type ReturnQuery struct {
	Page
	Status persistence.ReturnStatus // "": any
}

// Returns lists returns, newest first; staff only.
func (s *Service) Returns(ctx context.Context, by service.Caller, q ReturnQuery) (List[persistence.Return], error) {
	if err := allow(by, staffRoles); err != nil {
		return List[persistence.Return]{}, err
	}
	limit, err := q.check()
	if err != nil {
		return List[persistence.Return]{}, err
	}
	switch q.Status {
	case "", persistence.ReturnRequested, persistence.ReturnCompleted, persistence.ReturnRejected:
	default:
		return List[persistence.Return]{}, fault.Invalid("", fault.FieldError{Field: "status", Message: "must be requested, completed or rejected"})
	}
	return readPage(ctx, s, limit, func(tx persistence.Tx, limit int) ([]persistence.Return, error) {
		return tx.ReturnList(ctx, persistence.ReturnListParams{Status: q.Status, BeforeID: q.Before, Limit: limit})
	}, func(r persistence.Return) string { return r.ID })
}

// ProcessInput is the desk's verdict on a requested return.
type ProcessInput struct {
	ReturnID       string   `json:"-"`
	Accept         bool     `json:"accept"`
	DamagedLineIDs []string `json:"damaged_line_ids"`
	Reason         string   `json:"reason"`
}

// ProcessReturn completes or rejects a return in tx; staff only.
// Completing it refunds to the client's credit and restocks the undamaged
// units: pass the result's RestockedVariants to Restock after commit.
func (s *Service) ProcessReturn(ctx context.Context, tx persistence.Tx, by service.Caller, in ProcessInput) (order.ReturnResult, error) {
	if err := allow(by, staffRoles); err != nil {
		return order.ReturnResult{}, err
	}
	var f check.Fields
	reason := f.Text("reason", in.Reason, 0, 500)
	if len(in.DamagedLineIDs) > 100 || (!in.Accept && len(in.DamagedLineIDs) > 0) {
		f.Add("damaged_line_ids", "at most 100 lines, and only when accepting")
	}
	if err := f.Err(); err != nil {
		return order.ReturnResult{}, err
	}
	damaged := map[string]bool{}
	for _, id := range in.DamagedLineIDs {
		damaged[id] = true
	}
	res, err := order.ProcessReturn(ctx, tx, order.ReturnDecision{ReturnID: in.ReturnID, Accept: in.Accept,
		Damaged: damaged, Actor: actor(by), Reason: reason, At: s.now().UTC()})
	switch {
	case errors.Is(err, persistence.ErrInvalid):
		return order.ReturnResult{}, fault.Invalid("", fault.FieldError{Field: "damaged_line_ids", Message: "must name lines of this return"})
	case errors.Is(err, persistence.ErrNotFound):
		return order.ReturnResult{}, fault.NotFound("return not found")
	case err != nil:
		return order.ReturnResult{}, OrderFault(err)
	}
	return res, nil
}
