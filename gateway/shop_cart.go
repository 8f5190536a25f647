package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/order"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The cart API. A signed-in client has one open cart, found or made by
// POST /v1/carts; an anonymous cart is addressed by an unguessable id and
// opened with the secret token returned once when it is created (header
// X-Cart-Token). Every change goes to the cart's actor, which reserves
// stock with the inventory actors; checkout turns the reservations into an
// order in one transaction. Unknown carts and wrong tokens both answer 404,
// so cart ids cannot be probed.

// CartTokenHeader carries an anonymous cart's secret.
const CartTokenHeader = "X-Cart-Token"

var cartIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func (s *server) registerShopCart(app *fiber.App) {
	app.Post("/v1/carts", s.external(s.createCart))
	app.Get("/v1/carts/:id", s.getCart)
	app.Put("/v1/carts/:id/lines/:variant", s.external(s.setCartLine))
	app.Delete("/v1/carts/:id/lines/:variant", s.external(s.setCartLine))
	app.Post("/v1/carts/:id/merge", RequireRole(personRoles...), s.external(s.mergeCart))
	app.Post("/v1/carts/:id/checkout", RequireRole(personRoles...), s.legal.Require(persistence.LegalSlugTerms, persistence.LegalSlugPrivacy), s.external(s.checkoutCart))
}

type cartLineJSON struct {
	VariantID      string    `json:"variant_id"`
	ProductID      string    `json:"product_id"`
	SKU            string    `json:"sku"`
	Name           string    `json:"name"`
	Qty            int64     `json:"qty"`
	UnitPriceMinor int64     `json:"unit_price_minor"`
	TaxRateBP      int       `json:"tax_rate_bp"`
	ReservedUntil  time.Time `json:"reserved_until"`
}

type cartJSON struct {
	ID            string         `json:"id"`
	Anonymous     bool           `json:"anonymous"`
	State         string         `json:"state"`
	ExpiresAt     time.Time      `json:"expires_at"`
	OrderID       string         `json:"order_id,omitempty"`
	Lines         []cartLineJSON `json:"lines"`
	SubtotalMinor int64          `json:"subtotal_minor"`
	TaxMinor      int64          `json:"tax_minor"`
	TotalMinor    int64          `json:"total_minor"`
	Currency      string         `json:"currency"`
	// Token is the anonymous cart's secret, returned once, at creation.
	Token string `json:"token,omitempty"`
}

func cartView(v *cart.View) cartJSON {
	out := cartJSON{ID: v.Cart.ID, Anonymous: v.Cart.OwnerID == "", State: string(v.Cart.State),
		ExpiresAt: v.Cart.ExpiresAt.UTC(), OrderID: v.Cart.OrderID, Lines: make([]cartLineJSON, len(v.Lines)),
		SubtotalMinor: v.SubtotalMinor, TaxMinor: v.TaxMinor, TotalMinor: v.TotalMinor, Currency: "COP"}
	for i, l := range v.Lines {
		out.Lines[i] = cartLineJSON{VariantID: l.VariantID, ProductID: l.ProductID, SKU: l.SKU, Name: l.Name, Qty: l.Qty,
			UnitPriceMinor: l.UnitPriceMinor, TaxRateBP: l.TaxRateBP, ReservedUntil: l.ExpiresAt.UTC()}
	}
	return out
}

// cartError maps a cart actor's refusal.
func cartError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cart.ErrNotFound):
		return fault.NotFound("cart not found")
	case errors.Is(err, cart.ErrClosed):
		return fault.New(fault.CodeCartClosed, "")
	case errors.Is(err, cart.ErrOutOfStock):
		return fault.New(fault.CodeOutOfStock, "")
	case errors.Is(err, cart.ErrReservationLapsed):
		return fault.New(fault.CodeReservationLapsed, "")
	case errors.Is(err, cart.ErrUnknownVariant):
		return fault.Invalid("", fault.FieldError{Field: "variant", Message: "no such item on sale"})
	case errors.Is(err, cart.ErrEmpty):
		return fault.Conflict("the cart is empty")
	case errors.Is(err, cart.ErrSignInRequired):
		return fault.Unauthenticated("sign in to check out; your cart can be merged into your account")
	case errors.Is(err, cart.ErrExists):
		return fault.Conflict("the cart exists already")
	case errors.Is(err, persistence.ErrInsufficientCredit):
		return fault.New(fault.CodeInsufficientCredit, "")
	case errors.Is(err, cart.ErrInvalid):
		return fault.Invalid("the cart request is not valid")
	case errors.Is(err, cart.ErrRetry):
		return fault.Unavailable("the cart is busy; retry")
	}
	return err
}

// askCart sends m to a cart's actor through carts with send (a
// cart.Client method), mapping the transport failures every caller shares.
func askCart[M, R any](c *fiber.Ctx, carts *cart.Client, send func(*cart.Client, context.Context, string, M) (R, error), cartID string, m M) (R, error) {
	var zero R
	if carts == nil {
		return zero, fault.Unavailable("the shop's carts are not running on this node")
	}
	r, err := send(carts, c.UserContext(), cartID, m)
	if err != nil {
		return zero, fault.Unavailable("the cart did not answer in time; retry")
	}
	return r, nil
}

// askCartView sends m, answered with a cart's view, to the cart's actor
// and turns a refusal in the view into the API's error.
func askCartView[M any](c *fiber.Ctx, carts *cart.Client, send func(*cart.Client, context.Context, string, M) (*cart.View, error), cartID string, m M) (*cart.View, error) {
	v, err := askCart(c, carts, send, cartID, m)
	if err != nil {
		return nil, err
	}
	if err := cartError(v.Err); err != nil {
		return nil, err
	}
	return v, nil
}

// cartAuth is who is asking, and whether they get VIP prices.
func (s *server) cartAuth(c *fiber.Ctx) (cart.Auth, bool) {
	p, ok := Principal(c)
	a := cart.Auth{Token: c.Get(CartTokenHeader)}
	if ok {
		a.Subject = p.Subject
	}
	return a, ok && s.deps.ShopVIP != nil && s.deps.ShopVIP(p)
}

func cartParam(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if !cartIDRE.MatchString(id) {
		return "", fault.NotFound("cart not found")
	}
	return id, nil
}

// randomHex is n random bytes, hex encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// createCart returns the signed-in client's open cart, making one if
// needed, or makes an anonymous cart and returns its token once.
func (s *server) createCart(c *fiber.Ctx) error {
	who, vip := s.cartAuth(c)
	if who.Subject != "" {
		var open persistence.Cart
		err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
			open, err = tx.CartOpenByOwner(ctx, who.Subject)
			return err
		})
		switch {
		case err == nil:
			v, err := askCartView(c, s.deps.Carts, (*cart.Client).Get, open.ID, &cart.Get{Auth: who, VIP: vip})
			if err != nil {
				return err
			}
			// A cart left past its time closes when its actor wakes: make
			// a new one then.
			if v.Cart.State == persistence.CartOpen {
				return c.JSON(cartView(v))
			}
		case !errors.Is(err, persistence.ErrNotFound):
			return err
		}
	}
	id := randomHex(16)
	create := &cart.Create{OwnerID: who.Subject, VIP: vip}
	var token string
	if who.Subject == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		token = base64.RawURLEncoding.EncodeToString(b)
		create.TokenHash = cart.HashToken(token)
	}
	v, err := askCartView(c, s.deps.Carts, (*cart.Client).Create, id, create)
	if err != nil {
		return err
	}
	out := cartView(v)
	out.Token = token
	// The token is shown once: a replay of this request answers without it.
	idempotency.Redact(c, func(body []byte) []byte {
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return body
		}
		delete(m, "token")
		b, _ := json.Marshal(m)
		return b
	})
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) getCart(c *fiber.Ctx) error {
	id, err := cartParam(c)
	if err != nil {
		return err
	}
	who, vip := s.cartAuth(c)
	v, err := askCartView(c, s.deps.Carts, (*cart.Client).Get, id, &cart.Get{Auth: who, VIP: vip})
	if err != nil {
		return err
	}
	return c.JSON(cartView(v))
}

type cartLineInput struct {
	Qty int64 `json:"qty"`
}

// setCartLine sets (PUT) or removes (DELETE) a variant's line.
func (s *server) setCartLine(c *fiber.Ctx) error {
	id, err := cartParam(c)
	if err != nil {
		return err
	}
	variant, err := slugParam(c, "variant")
	if err != nil {
		return err
	}
	var qty int64
	if c.Method() == fiber.MethodPut {
		var in cartLineInput
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		if in.Qty < 1 || in.Qty > cart.MaxLineQty {
			return fault.Invalid("", fault.FieldError{Field: "qty", Message: "must be 1 to 99; DELETE the line to remove it"})
		}
		qty = in.Qty
	}
	who, vip := s.cartAuth(c)
	v, err := askCartView(c, s.deps.Carts, (*cart.Client).SetLine, id, &cart.SetLine{Auth: who, VariantID: variant, Qty: qty, VIP: vip})
	if err != nil {
		return err
	}
	return c.JSON(cartView(v))
}

type mergeInput struct {
	FromCartID string `json:"from_cart_id"`
	FromToken  string `json:"from_token"`
}

// mergeCart moves an anonymous cart's lines into the caller's cart (on
// sign-in): the anonymous cart gives its units back and closes, and the
// client's cart reserves them afresh, adding to its own lines. A line
// whose units went elsewhere meanwhile is left out: the cart returned is
// the truth.
func (s *server) mergeCart(c *fiber.Ctx) error {
	id, err := cartParam(c)
	if err != nil {
		return err
	}
	var in mergeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if !cartIDRE.MatchString(in.FromCartID) || in.FromToken == "" || len(in.FromToken) > 100 {
		return fault.Invalid("", fault.FieldError{Field: "from_cart_id", Message: "an anonymous cart id and its token are required"})
	}
	who, vip := s.cartAuth(c)
	mine, err := askCartView(c, s.deps.Carts, (*cart.Client).Get, id, &cart.Get{Auth: who, VIP: vip})
	if err != nil {
		return err
	}
	if mine.Cart.OwnerID == "" || mine.Cart.State != persistence.CartOpen {
		return fault.Conflict("merge into your own open cart")
	}
	sr, err := askCart(c, s.deps.Carts, (*cart.Client).Surrender, in.FromCartID, &cart.Surrender{Auth: cart.Auth{Token: in.FromToken}, IntoCartID: id})
	if err != nil {
		return err
	}
	if err := cartError(sr.Err); err != nil {
		return err
	}
	have := map[string]int64{}
	for _, l := range mine.Lines {
		have[l.VariantID] = l.Qty
	}
	v := mine
	for variant, qty := range sr.Lines {
		next, err := askCart(c, s.deps.Carts, (*cart.Client).SetLine, id, &cart.SetLine{Auth: who, VariantID: variant, Qty: min(have[variant]+qty, cart.MaxLineQty), VIP: vip})
		if err != nil {
			return err
		}
		if next.Err == nil {
			v = next
		}
	}
	if len(sr.Lines) > 0 && v == mine {
		// Nothing could be reserved again: show the cart as it is.
		v, err = askCart(c, s.deps.Carts, (*cart.Client).Get, id, &cart.Get{Auth: who, VIP: vip})
		if err != nil {
			return err
		}
	}
	return c.JSON(cartView(v))
}

type checkoutInput struct {
	Fulfilment  string        `json:"fulfilment"`
	Shipping    *shippingJSON `json:"shipping_address"`
	CreditMinor int64         `json:"credit_minor"`
}

// checkoutCart turns the caller's cart into an order. The order id derives
// from the Idempotency-Key, so a retry after a lost answer finds the same
// order instead of making a second one.
func (s *server) checkoutCart(c *fiber.Ctx) error {
	id, err := cartParam(c)
	if err != nil {
		return err
	}
	var in checkoutInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.CreditMinor < 0 {
		return fault.Invalid("", fault.FieldError{Field: "credit_minor", Message: "must not be negative"})
	}
	var addr persistence.ShippingAddress
	if in.Shipping != nil {
		a := in.Shipping
		addr = persistence.ShippingAddress{Recipient: a.Recipient, Phone: a.Phone, Line1: a.Line1, Line2: a.Line2,
			DepartmentCode: a.DepartmentCode, MunicipalityCode: a.MunicipalityCode, PostalCode: a.PostalCode, Notes: a.Notes}
	}
	f := persistence.Fulfilment(in.Fulfilment)
	if f != persistence.FulfilmentPickup && f != persistence.FulfilmentShipping {
		return fault.Invalid("", fault.FieldError{Field: "fulfilment", Message: "must be pickup or shipping"})
	}
	addr, err = order.CheckFulfilment(f, addr)
	if err != nil {
		return orderError(err)
	}
	orderID := idempotency.DerivedID(c, "")
	if orderID == "" {
		orderID = ulid.Make().String()
	}
	who, vip := s.cartAuth(c)
	co, err := askCart(c, s.deps.Carts, (*cart.Client).Checkout, id, &cart.Checkout{Auth: who, OrderID: orderID, Fulfilment: f, Shipping: addr,
		CreditMinor: in.CreditMinor, VIP: vip})
	if err != nil {
		return err
	}
	if err := cartError(co.Err); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(orderView(co.Order))
}
