package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// Shop orders, returns and client credit. Orders are created by checkout
// (the cart routes); here clients read theirs, see their credit and ask
// for returns, and the front desk marks orders paid, fulfils, cancels and
// processes returns. The rules live in actors/order; every mutation runs
// in the idempotency wrapper's transaction with its audit entry.

// registerShopOrders adds the order, return and credit routes.
func (s *server) registerShopOrders(app *fiber.App) {
	anyone := RequireRole(personRoles...)
	staff := RequireRole(staffRoles...)
	admin := RequireRole(auth.RoleAdmin)
	mutate := func(h func(c *fiber.Ctx, tx persistence.Tx) ([]string, error)) fiber.Handler {
		return s.restockAfter(s.mutate(func(c *fiber.Ctx, tx persistence.Tx) error {
			variants, err := h(c, tx)
			c.Locals(restockedKey{}, variants) // replayed answers restock nothing
			return err
		}))
	}

	app.Get("/v1/me/orders", anyone, s.myOrders)
	app.Get("/v1/me/orders/:id", anyone, s.myOrder)
	app.Post("/v1/me/orders/:id/returns", anyone, mutate(s.requestReturn))
	app.Get("/v1/me/credit", anyone, s.myCredit)
	app.Get("/v1/me/credit/ledger", anyone, s.myCreditLedger)

	app.Get("/v1/shop/orders", staff, s.listOrders)
	app.Get("/v1/shop/orders/:id", staff, s.staffOrder)
	app.Post("/v1/shop/orders/:id/pay", staff, mutate(s.orderTransition(persistence.OrderPaid)))
	app.Post("/v1/shop/orders/:id/fulfil", staff, mutate(s.orderTransition(persistence.OrderFulfilled)))
	app.Post("/v1/shop/orders/:id/cancel", staff, mutate(s.orderTransition(persistence.OrderCancelled)))
	app.Get("/v1/shop/returns", staff, s.listReturns)
	app.Post("/v1/shop/returns/:id/process", staff, mutate(s.processReturn))
	app.Get("/v1/shop/clients/:id/credit", staff, s.clientCredit)
	app.Post("/v1/admin/shop/credit-grants", admin, s.mutate(s.grantCredit))
	app.Get("/v1/admin/shop/vip-clients/:id", admin, s.getVIP)
	app.Put("/v1/admin/shop/vip-clients/:id", admin, s.mutate(s.setVIP(true)))
	app.Delete("/v1/admin/shop/vip-clients/:id", admin, s.mutate(s.setVIP(false)))
}

type restockedKey struct{}

// restockAfter tells the inventory actors, once h's transaction has
// committed, which variants got units back, so they reload their stock.
func (s *server) restockAfter(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := h(c)
		if variants, _ := c.Locals(restockedKey{}).([]string); err == nil && len(variants) > 0 && s.deps.OnRestock != nil {
			s.deps.OnRestock(variants)
		}
		return err
	}
}

// orderError maps the order package's refusals.
func orderError(err error) error {
	var te *order.TransitionError
	var inv order.InvalidAddress
	switch {
	case errors.As(err, &te):
		return fault.New(fault.CodeOrderTransition, te.Error())
	case errors.Is(err, persistence.ErrStatusMismatch):
		return fault.New(fault.CodeOrderTransition, "the order or return changed meanwhile; reload it")
	case errors.Is(err, order.ErrNotReturnable):
		return fault.New(fault.CodeNotReturnable, "")
	case errors.Is(err, persistence.ErrReturnExceedsOrder):
		return fault.New(fault.CodeReturnExceedsOrder, "")
	case errors.Is(err, persistence.ErrInsufficientCredit):
		return fault.New(fault.CodeInsufficientCredit, "")
	case errors.As(err, &inv):
		fields := make([]fault.FieldError, len(inv))
		for i, f := range inv {
			fields[i] = fault.FieldError{Field: "shipping_address." + f.Field, Message: f.Message}
		}
		return fault.Invalid("", fields...)
	}
	return notFound(err, "order")
}

func (s *server) actor(c *fiber.Ctx) order.Actor {
	p, _ := Principal(c)
	return order.Actor{ID: p.Subject, Role: string(p.Role), RequestID: RequestID(c)}
}

// ---- Views -----------------------------------------------------------------

type orderLineJSON struct {
	ID             string `json:"id"`
	VariantID      string `json:"variant_id"`
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Qty            int    `json:"qty"`
	UnitPriceMinor int64  `json:"unit_price_minor"`
	TaxRateBps     int    `json:"tax_rate_bps"`
	ReturnedQty    int    `json:"returned_qty"`
}

type shippingJSON struct {
	Recipient        string `json:"recipient"`
	Phone            string `json:"phone"`
	Line1            string `json:"line1"`
	Line2            string `json:"line2,omitempty"`
	DepartmentCode   string `json:"department_code"`
	MunicipalityCode string `json:"municipality_code"`
	PostalCode       string `json:"postal_code,omitempty"`
	Notes            string `json:"notes,omitempty"`
}

type orderJSON struct {
	ID                 string          `json:"id"`
	ClientID           string          `json:"client_id"`
	CartID             string          `json:"cart_id,omitempty"`
	Status             string          `json:"status"`
	Lines              []orderLineJSON `json:"lines"`
	SubtotalMinor      int64           `json:"subtotal_minor"`
	TaxMinor           int64           `json:"tax_minor"`
	CreditAppliedMinor int64           `json:"credit_applied_minor"`
	TotalMinor         int64           `json:"total_minor"`
	Currency           string          `json:"currency"`
	Fulfilment         string          `json:"fulfilment"`
	Shipping           *shippingJSON   `json:"shipping_address,omitempty"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
	ExpiresAt          *time.Time      `json:"expires_at,omitempty"`
	Version            int64           `json:"version"`
	Returns            []returnJSON    `json:"returns,omitempty"`
}

func orderView(o persistence.Order) orderJSON {
	v := orderJSON{ID: o.ID, ClientID: o.ClientID, CartID: o.CartID, Status: string(o.Status),
		Lines: make([]orderLineJSON, len(o.Lines)), SubtotalMinor: o.SubtotalMinor, TaxMinor: o.TaxMinor,
		CreditAppliedMinor: o.CreditAppliedMinor, TotalMinor: o.TotalMinor, Currency: "COP",
		Fulfilment: string(o.Fulfilment), CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(), Version: o.Version}
	for i, l := range o.Lines {
		v.Lines[i] = orderLineJSON{ID: l.ID, VariantID: l.VariantID, SKU: l.SKU, Name: l.Name, Qty: l.Qty,
			UnitPriceMinor: l.UnitPriceMinor, TaxRateBps: l.TaxRateBps, ReturnedQty: l.ReturnedQty}
	}
	if o.Fulfilment == persistence.FulfilmentShipping {
		a := o.Shipping
		v.Shipping = &shippingJSON{Recipient: a.Recipient, Phone: a.Phone, Line1: a.Line1, Line2: a.Line2,
			DepartmentCode: a.DepartmentCode, MunicipalityCode: a.MunicipalityCode, PostalCode: a.PostalCode, Notes: a.Notes}
	}
	v.ExpiresAt = utcOrNil(o.ExpiresAt)
	return v
}

type returnLineJSON struct {
	OrderLineID string `json:"order_line_id"`
	Qty         int    `json:"qty"`
	Damaged     bool   `json:"damaged"`
}

type returnJSON struct {
	ID          string           `json:"id"`
	OrderID     string           `json:"order_id"`
	ClientID    string           `json:"client_id"`
	Status      string           `json:"status"`
	Reason      string           `json:"reason"`
	Lines       []returnLineJSON `json:"lines"`
	RefundMinor int64            `json:"refund_minor"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

func returnView(r persistence.Return) returnJSON {
	v := returnJSON{ID: r.ID, OrderID: r.OrderID, ClientID: r.ClientID, Status: string(r.Status), Reason: r.Reason,
		Lines: make([]returnLineJSON, len(r.Lines)), RefundMinor: r.RefundMinor, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	for i, l := range r.Lines {
		v.Lines[i] = returnLineJSON{OrderLineID: l.OrderLineID, Qty: l.Qty, Damaged: l.Damaged}
	}
	return v
}

type orderPage struct {
	Orders []orderJSON `json:"orders"`
	Next   *string     `json:"next"`
}

// Page sizes of the order, return and ledger lists.
const (
	defaultShopLimit = 50
	maxShopLimit     = 200
)

// pageParams reads limit and before (a ULID cursor).
func pageParams(c *fiber.Ctx) (limit int, before string, err error) {
	limit = defaultShopLimit
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxShopLimit {
			return 0, "", fault.Invalid("", fault.FieldError{Field: "limit", Message: "must be an integer from 1 to 200"})
		}
		limit = n
	}
	var f fieldErrors
	before = beforeCursor(c, &f)
	if err := f.err(); err != nil {
		return 0, "", err
	}
	return limit, before, nil
}

func statusFilter(c *fiber.Ctx) ([]persistence.OrderStatus, error) {
	v := c.Query("status")
	if v == "" {
		return nil, nil
	}
	s := persistence.OrderStatus(v)
	if !s.Valid() {
		return nil, fault.Invalid("", fault.FieldError{Field: "status", Message: "must be an order status"})
	}
	return []persistence.OrderStatus{s}, nil
}

func (s *server) listOrdersOf(c *fiber.Ctx, clientID string) error {
	limit, before, err := pageParams(c)
	if err != nil {
		return err
	}
	status, err := statusFilter(c)
	if err != nil {
		return err
	}
	rows, cur, err := readPage(s, c, limit, func(ctx context.Context, tx persistence.Tx, limit int) ([]persistence.Order, error) {
		return tx.OrderList(ctx, persistence.OrderListParams{ClientID: clientID, Status: status, BeforeID: before, Limit: limit})
	}, func(o persistence.Order) string { return o.ID })
	if err != nil {
		return err
	}
	page := orderPage{Orders: make([]orderJSON, len(rows)), Next: cur}
	for i, o := range rows {
		page.Orders[i] = orderView(o)
	}
	return c.JSON(page)
}

func (s *server) myOrders(c *fiber.Ctx) error {
	p, _ := Principal(c)
	return s.listOrdersOf(c, p.Subject)
}

func (s *server) listOrders(c *fiber.Ctx) error {
	client := c.Query("client_id")
	if client != "" && !clientRE.MatchString(client) {
		return fault.Invalid("", fault.FieldError{Field: "client_id", Message: "must be a client id"})
	}
	return s.listOrdersOf(c, client)
}

// getOrder returns the order with its returns; ownerOnly hides other
// clients' orders as absent.
func (s *server) getOrder(c *fiber.Ctx, ownerOnly bool) error {
	p, _ := Principal(c)
	var o persistence.Order
	var rs []persistence.Return
	err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		if o, err = tx.OrderGet(ctx, c.Params("id")); err != nil {
			return err
		}
		if ownerOnly && o.ClientID != p.Subject {
			return persistence.ErrNotFound
		}
		rs, err = tx.ReturnList(ctx, persistence.ReturnListParams{OrderID: o.ID, Limit: persistence.MaxOrderListLimit})
		return err
	})
	if err != nil {
		return notFound(err, "order")
	}
	v := orderView(o)
	for _, r := range rs {
		v.Returns = append(v.Returns, returnView(r))
	}
	return c.JSON(v)
}

func (s *server) myOrder(c *fiber.Ctx) error    { return s.getOrder(c, true) }
func (s *server) staffOrder(c *fiber.Ctx) error { return s.getOrder(c, false) }

// ---- Transitions -----------------------------------------------------------

type orderReasonInput struct {
	Reason string `json:"reason"`
}

// optionalReason decodes {"reason": ...} when a body is sent.
func optionalReason(c *fiber.Ctx) (string, error) {
	if len(c.Body()) == 0 {
		return "", nil
	}
	var in orderReasonInput
	if err := decodeJSON(c, &in); err != nil {
		return "", err
	}
	var f fieldErrors
	r := f.text("reason", in.Reason, 0, 500)
	return r, f.err()
}

// orderTransition marks an order paid (the front desk took the payment),
// fulfilled (handed over or shipped) or cancelled.
func (s *server) orderTransition(to persistence.OrderStatus) func(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
	return func(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
		reason, err := optionalReason(c)
		if err != nil {
			return nil, err
		}
		res, err := order.Transition(c.UserContext(), tx, order.Change{OrderID: c.Params("id"), To: to,
			Actor: s.actor(c), Reason: reason, At: s.deps.Now().UTC()})
		if err != nil {
			return nil, orderError(err)
		}
		return res.RestockedVariants, c.JSON(orderView(res.Order))
	}
}

// ---- Returns ---------------------------------------------------------------

type returnInput struct {
	Reason string `json:"reason"`
	Lines  []struct {
		OrderLineID string `json:"order_line_id"`
		Qty         int    `json:"qty"`
	} `json:"lines"`
}

func (s *server) requestReturn(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
	var in returnInput
	if err := decodeJSON(c, &in); err != nil {
		return nil, err
	}
	var f fieldErrors
	reason := f.text("reason", in.Reason, 3, 500)
	if len(in.Lines) == 0 || len(in.Lines) > 100 {
		f.add("lines", "must list 1 to 100 order lines")
	}
	lines := make([]persistence.ReturnLine, 0, len(in.Lines))
	seen := map[string]bool{}
	for _, l := range in.Lines {
		if l.OrderLineID == "" || seen[l.OrderLineID] || l.Qty < 1 || l.Qty > 10000 {
			f.add("lines", "each line names a different order line and a quantity from 1")
			break
		}
		seen[l.OrderLineID] = true
		lines = append(lines, persistence.ReturnLine{OrderLineID: l.OrderLineID, Qty: l.Qty})
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	p, _ := Principal(c)
	owner := p.Subject
	if isStaff(c) {
		owner = "" // the desk may record a return for any client
	}
	r, err := order.RequestReturn(c.UserContext(), tx, order.ReturnRequest{ID: ulid.Make().String(), OrderID: c.Params("id"),
		ClientID: owner, Lines: lines, Reason: reason, Actor: s.actor(c), At: s.deps.Now().UTC()})
	if err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, fault.NotFound("order or order line not found")
		}
		return nil, orderError(err)
	}
	return nil, c.Status(fiber.StatusCreated).JSON(returnView(r))
}

type returnPage struct {
	Returns []returnJSON `json:"returns"`
	Next    *string      `json:"next"`
}

func (s *server) listReturns(c *fiber.Ctx) error {
	limit, before, err := pageParams(c)
	if err != nil {
		return err
	}
	status := persistence.ReturnStatus(c.Query("status"))
	switch status {
	case "", persistence.ReturnRequested, persistence.ReturnCompleted, persistence.ReturnRejected:
	default:
		return fault.Invalid("", fault.FieldError{Field: "status", Message: "must be requested, completed or rejected"})
	}
	rows, cur, err := readPage(s, c, limit, func(ctx context.Context, tx persistence.Tx, limit int) ([]persistence.Return, error) {
		return tx.ReturnList(ctx, persistence.ReturnListParams{Status: status, BeforeID: before, Limit: limit})
	}, func(r persistence.Return) string { return r.ID })
	if err != nil {
		return err
	}
	page := returnPage{Returns: make([]returnJSON, len(rows)), Next: cur}
	for i, r := range rows {
		page.Returns[i] = returnView(r)
	}
	return c.JSON(page)
}

type processInput struct {
	Accept         bool     `json:"accept"`
	DamagedLineIDs []string `json:"damaged_line_ids"`
	Reason         string   `json:"reason"`
}

type processJSON struct {
	Return returnJSON   `json:"return"`
	Order  orderJSON    `json:"order"`
	Credit *creditGrant `json:"credit_grant,omitempty"`
}

func (s *server) processReturn(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
	var in processInput
	if err := decodeJSON(c, &in); err != nil {
		return nil, err
	}
	var f fieldErrors
	reason := f.text("reason", in.Reason, 0, 500)
	if len(in.DamagedLineIDs) > 100 || (!in.Accept && len(in.DamagedLineIDs) > 0) {
		f.add("damaged_line_ids", "at most 100 lines, and only when accepting")
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	damaged := map[string]bool{}
	for _, id := range in.DamagedLineIDs {
		damaged[id] = true
	}
	res, err := order.ProcessReturn(c.UserContext(), tx, order.ReturnDecision{ReturnID: c.Params("id"), Accept: in.Accept,
		Damaged: damaged, Actor: s.actor(c), Reason: reason, At: s.deps.Now().UTC()})
	switch {
	case errors.Is(err, persistence.ErrInvalid):
		return nil, fault.Invalid("", fault.FieldError{Field: "damaged_line_ids", Message: "must name lines of this return"})
	case errors.Is(err, persistence.ErrNotFound):
		return nil, fault.NotFound("return not found")
	case err != nil:
		return nil, orderError(err)
	}
	out := processJSON{Return: returnView(res.Return), Order: orderView(res.Order)}
	if res.Grant != nil {
		g := grantView(*res.Grant)
		out.Credit = &g
	}
	return res.RestockedVariants, c.JSON(out)
}

// ---- Credit ----------------------------------------------------------------

type creditGrant struct {
	ID             string    `json:"id"`
	AmountMinor    int64     `json:"amount_minor"`
	RemainingMinor int64     `json:"remaining_minor"`
	Reason         string    `json:"reason"`
	ExpiresAt      time.Time `json:"expires_at"`
	CreatedAt      time.Time `json:"created_at"`
}

func grantView(g persistence.CreditGrant) creditGrant {
	return creditGrant{ID: g.ID, AmountMinor: g.AmountMinor, RemainingMinor: g.RemainingMinor, Reason: g.Reason,
		ExpiresAt: g.ExpiresAt.UTC(), CreatedAt: g.CreatedAt.UTC()}
}

type creditJSON struct {
	ClientID     string        `json:"client_id"`
	BalanceMinor int64         `json:"balance_minor"`
	Currency     string        `json:"currency"`
	Grants       []creditGrant `json:"grants"`
}

func (s *server) creditOf(c *fiber.Ctx, clientID string) error {
	now := s.deps.Now().UTC()
	out := creditJSON{ClientID: clientID, Currency: "COP", Grants: []creditGrant{}}
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		gs, err := tx.CreditGrants(ctx, clientID, now)
		if err != nil {
			return err
		}
		out.BalanceMinor = 0
		for _, g := range gs {
			out.BalanceMinor += g.RemainingMinor
			out.Grants = append(out.Grants, grantView(g))
		}
		return nil
	}); err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) myCredit(c *fiber.Ctx) error {
	p, _ := Principal(c)
	return s.creditOf(c, p.Subject)
}

func (s *server) clientCredit(c *fiber.Ctx) error {
	id, err := clientParam(c)
	if err != nil {
		return err
	}
	return s.creditOf(c, id)
}

type ledgerEntryJSON struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	AmountMinor int64     `json:"amount_minor"`
	GrantID     string    `json:"grant_id"`
	OrderID     string    `json:"order_id,omitempty"`
	At          time.Time `json:"at"`
}

type ledgerPage struct {
	Entries []ledgerEntryJSON `json:"entries"`
	Next    *string           `json:"next"`
}

func (s *server) myCreditLedger(c *fiber.Ctx) error {
	limit, before, err := pageParams(c)
	if err != nil {
		return err
	}
	p, _ := Principal(c)
	rows, cur, err := readPage(s, c, limit, func(ctx context.Context, tx persistence.Tx, limit int) ([]persistence.CreditEntry, error) {
		return tx.CreditLedger(ctx, persistence.CreditLedgerParams{ClientID: p.Subject, BeforeID: before, Limit: limit})
	}, func(e persistence.CreditEntry) string { return e.ID })
	if err != nil {
		return err
	}
	page := ledgerPage{Entries: make([]ledgerEntryJSON, len(rows)), Next: cur}
	for i, e := range rows {
		page.Entries[i] = ledgerEntryJSON{ID: e.ID, Kind: string(e.Kind), AmountMinor: e.AmountMinor, GrantID: e.GrantID,
			OrderID: e.OrderID, At: e.At.UTC()}
	}
	return c.JSON(page)
}

type grantInput struct {
	ClientID    string    `json:"client_id"`
	AmountMinor int64     `json:"amount_minor"`
	ExpiresAt   time.Time `json:"expires_at"`
	Reason      string    `json:"reason"`
}

// maxCreditGrant bounds one manual grant (COP 100,000,000 in minor units)
// so a typo cannot mint a fortune.
const maxCreditGrant = 10_000_000_000

func (s *server) grantCredit(c *fiber.Ctx, tx persistence.Tx) error {
	var in grantInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	now := s.deps.Now().UTC()
	var f fieldErrors
	if !clientRE.MatchString(in.ClientID) {
		f.add("client_id", "must be a client id")
	}
	if in.AmountMinor < 1 || in.AmountMinor > maxCreditGrant {
		f.add("amount_minor", "must be from 1 to 10000000000 (COP minor units)")
	}
	if !in.ExpiresAt.IsZero() && (!in.ExpiresAt.After(now) || in.ExpiresAt.Sub(now) > 5*365*24*time.Hour) {
		f.add("expires_at", "must be in the future, within five years")
	}
	reason := f.text("reason", in.Reason, 3, 500)
	if err := f.err(); err != nil {
		return err
	}
	g, err := order.GrantCredit(c.UserContext(), tx, order.GrantRequest{ID: ulid.Make().String(), ClientID: in.ClientID,
		AmountMinor: in.AmountMinor, ExpiresAt: in.ExpiresAt.UTC(), Actor: s.actor(c), Reason: reason, At: now})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(grantView(g))
}
