package gateway

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/persistence"
)

// Shop orders, returns and client credit. Orders are created by checkout
// (the cart routes); here clients read theirs, see their credit and ask
// for returns, and the front desk marks orders paid, fulfils, cancels and
// processes returns. The rules are the shop service's
// (actors/service/shop, over actors/order); every mutation runs in the
// idempotency wrapper's transaction with its audit entry.

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
		if variants, _ := c.Locals(restockedKey{}).([]string); err == nil {
			s.shop.Restock(variants)
		}
		return err
	}
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

// pageQuery reads limit and before (a cursor) for the shop service, which
// checks them.
func pageQuery(c *fiber.Ctx) shop.Page {
	p := shop.Page{Before: c.Query("before")}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			n = -1 // refused like any size out of range
		}
		p.Limit = n
	}
	return p
}

func orderList(c *fiber.Ctx, l shop.List[persistence.Order], err error) error {
	if err != nil {
		return err
	}
	return c.JSON(orderPage{Orders: views(l.Items, orderView), Next: l.Next})
}

func (s *server) myOrders(c *fiber.Ctx) error {
	l, err := s.shop.MyOrders(c.UserContext(), s.caller(c), shop.OrderQuery{Page: pageQuery(c), Status: c.Query("status")})
	return orderList(c, l, err)
}

func (s *server) listOrders(c *fiber.Ctx) error {
	l, err := s.shop.Orders(c.UserContext(), s.caller(c),
		shop.OrderQuery{Page: pageQuery(c), ClientID: c.Query("client_id"), Status: c.Query("status")})
	return orderList(c, l, err)
}

func orderDetail(c *fiber.Ctx, d shop.OrderDetail, err error) error {
	if err != nil {
		return err
	}
	v := orderView(d.Order)
	for _, r := range d.Returns {
		v.Returns = append(v.Returns, returnView(r))
	}
	return c.JSON(v)
}

func (s *server) myOrder(c *fiber.Ctx) error {
	d, err := s.shop.MyOrder(c.UserContext(), s.caller(c), c.Params("id"))
	return orderDetail(c, d, err)
}

func (s *server) staffOrder(c *fiber.Ctx) error {
	d, err := s.shop.Order(c.UserContext(), s.caller(c), c.Params("id"))
	return orderDetail(c, d, err)
}

// ---- Transitions -----------------------------------------------------------

// orderTransition marks an order paid (the front desk took the payment),
// fulfilled (handed over or shipped) or cancelled. The body, {"reason"},
// is optional.
func (s *server) orderTransition(to persistence.OrderStatus) func(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
	return func(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
		in := shop.TransitionInput{OrderID: c.Params("id"), To: to}
		if len(c.Body()) > 0 {
			if err := decodeJSON(c, &in); err != nil {
				return nil, err
			}
		}
		res, err := s.shop.Transition(c.UserContext(), tx, s.caller(c), in)
		if err != nil {
			return nil, err
		}
		return res.RestockedVariants, c.JSON(orderView(res.Order))
	}
}

// ---- Returns ---------------------------------------------------------------

func (s *server) requestReturn(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
	in := shop.ReturnInput{OrderID: c.Params("id")}
	if err := decodeJSON(c, &in); err != nil {
		return nil, err
	}
	r, err := s.shop.RequestReturn(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return nil, err
	}
	return nil, c.Status(fiber.StatusCreated).JSON(returnView(r))
}

type returnPage struct {
	Returns []returnJSON `json:"returns"`
	Next    *string      `json:"next"`
}

func (s *server) listReturns(c *fiber.Ctx) error {
	l, err := s.shop.Returns(c.UserContext(), s.caller(c),
		shop.ReturnQuery{Page: pageQuery(c), Status: persistence.ReturnStatus(c.Query("status"))})
	if err != nil {
		return err
	}
	return c.JSON(returnPage{Returns: views(l.Items, returnView), Next: l.Next})
}

type processJSON struct {
	Return returnJSON   `json:"return"`
	Order  orderJSON    `json:"order"`
	Credit *creditGrant `json:"credit_grant,omitempty"`
}

func (s *server) processReturn(c *fiber.Ctx, tx persistence.Tx) ([]string, error) {
	in := shop.ProcessInput{ReturnID: c.Params("id")}
	if err := decodeJSON(c, &in); err != nil {
		return nil, err
	}
	res, err := s.shop.ProcessReturn(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return nil, err
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
	cr, err := s.shop.Credit(c.UserContext(), s.caller(c), clientID)
	if err != nil {
		return err
	}
	return c.JSON(creditJSON{ClientID: cr.ClientID, BalanceMinor: cr.BalanceMinor, Currency: "COP", Grants: views(cr.Grants, grantView)})
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
	l, err := s.shop.CreditLedger(c.UserContext(), s.caller(c), pageQuery(c))
	if err != nil {
		return err
	}
	return c.JSON(ledgerPage{Next: l.Next, Entries: views(l.Items, func(e persistence.CreditEntry) ledgerEntryJSON {
		return ledgerEntryJSON{ID: e.ID, Kind: string(e.Kind), AmountMinor: e.AmountMinor, GrantID: e.GrantID,
			OrderID: e.OrderID, At: e.At.UTC()}
	})})
}

func (s *server) grantCredit(c *fiber.Ctx, tx persistence.Tx) error {
	var in shop.GrantInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	g, err := s.shop.GrantCredit(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(grantView(g))
}
