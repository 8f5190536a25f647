package gateway

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The cart API. A signed-in client has one open cart, found or made by
// POST /v1/carts; an anonymous cart is addressed by an unguessable id and
// opened with the secret token returned once when it is created (header
// X-Cart-Token). The rules are the shop service's (actors/service/shop,
// cart.go): every change goes to the cart's actor, which reserves stock
// with the inventory actors; checkout turns the reservations into an
// order in one transaction. Unknown carts and wrong tokens both answer
// 404, so cart ids cannot be probed.

// CartTokenHeader carries an anonymous cart's secret.
const CartTokenHeader = "X-Cart-Token"

func (s *server) registerShopCart(app *fiber.App) {
	app.Post("/v1/carts", s.external(s.createCart))
	app.Get("/v1/carts/:id", s.getCart)
	app.Put("/v1/carts/:id/lines/:variant", s.keyed(s.setCartLine))
	app.Delete("/v1/carts/:id/lines/:variant", s.keyed(s.setCartLine))
	app.Post("/v1/carts/:id/merge", RequireRole(personRoles...), s.external(s.mergeCart))
	app.Post("/v1/carts/:id/checkout", RequireRole(personRoles...), s.legal.Require(persistence.LegalSlugTerms, persistence.LegalSlugPrivacy), s.keyed(s.checkoutCart))
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

// cartRef reads the cart id in the path and the token header.
func cartRef(c *fiber.Ctx) (shop.CartRef, error) {
	id := c.Params("id")
	return shop.CartRef{ID: id, Token: c.Get(CartTokenHeader)}, shop.CheckCartID(id)
}

// createCart returns the signed-in client's open cart (200), or makes one
// (201); an anonymous cart's token is in the answer once.
func (s *server) createCart(c *fiber.Ctx) error {
	o, err := s.shop.OpenCart(c.UserContext(), s.caller(c))
	if err != nil {
		return err
	}
	out := cartView(o.View)
	if !o.Created {
		return c.JSON(out)
	}
	out.Token = o.Token
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
	ref, err := cartRef(c)
	if err != nil {
		return err
	}
	v, err := s.shop.Cart(c.UserContext(), s.caller(c), ref)
	if err != nil {
		return err
	}
	return c.JSON(cartView(v))
}

// setCartLine sets (PUT) or removes (DELETE) a variant's line.
func (s *server) setCartLine(c *fiber.Ctx) error {
	ref, err := cartRef(c)
	if err != nil {
		return err
	}
	variant, err := slugParam(c, "variant")
	if err != nil {
		return err
	}
	in := shop.LineInput{Cart: ref, VariantID: variant, Key: idempotency.KeyOf(c)}
	set := s.shop.RemoveLine
	if c.Method() == fiber.MethodPut {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		set = s.shop.SetLine
	}
	v, err := set(c.UserContext(), s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(cartView(v))
}

// mergeCart moves an anonymous cart's lines into the caller's cart (on
// sign-in); see shop.Service.Merge.
func (s *server) mergeCart(c *fiber.Ctx) error {
	ref, err := cartRef(c)
	if err != nil {
		return err
	}
	in := shop.MergeInput{Into: ref}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := s.shop.Merge(c.UserContext(), s.caller(c), in)
	if err != nil {
		return err
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
	ref, err := cartRef(c)
	if err != nil {
		return err
	}
	var in checkoutInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	co := shop.CheckoutInput{Cart: ref, OrderID: idempotency.DerivedID(c, ""), Fulfilment: in.Fulfilment, CreditMinor: in.CreditMinor,
		Key: idempotency.KeyOf(c)}
	if a := in.Shipping; a != nil {
		co.Shipping = persistence.ShippingAddress{Recipient: a.Recipient, Phone: a.Phone, Line1: a.Line1, Line2: a.Line2,
			DepartmentCode: a.DepartmentCode, MunicipalityCode: a.MunicipalityCode, PostalCode: a.PostalCode, Notes: a.Notes}
	}
	o, err := s.shop.Checkout(c.UserContext(), s.caller(c), co)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(orderView(o))
}
