package gateway

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/service/shop"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The shop catalogue and stock API: public browsing of products with their
// variants (and, when the inventory actors are wired, what is available),
// admin puts of categories, products and variants (audited, optimistic
// versions), and stock receipts, adjustments, damage and returns, which go
// through the variant's inventory actor so that its memory stays the one
// truth about what can be reserved. The rules are the shop service's
// (actors/service/shop, catalogue.go and stock.go); these handlers decode,
// call and encode. Carts are in shop_cart.go.

// registerShop adds the catalogue, stock and cart routes. They are always
// registered; those that need actors answer 503 when none are wired.
func (s *server) registerShop(app *fiber.App) {
	admin, mutate := RequireRole(auth.RoleAdmin), s.mutate
	app.Get("/v1/shop/categories", s.listShopCategories)
	app.Get("/v1/shop/products", s.listProducts(true))
	app.Get("/v1/shop/products/:id", s.getProduct)
	app.Get("/v1/admin/shop/products", admin, s.listProducts(false))
	app.Put("/v1/admin/shop/categories/:id", admin, mutate(s.putShopCategory))
	app.Put("/v1/admin/shop/products/:id", admin, mutate(s.putProduct))
	app.Put("/v1/admin/shop/variants/:id", admin, mutate(s.putVariant))
	app.Get("/v1/admin/shop/variants/:id/stock", admin, s.getStock)
	app.Post("/v1/admin/shop/variants/:id/stock-movements", admin, s.external(s.moveStock))
	s.registerShopCart(app)
}

// ---- Catalogue -------------------------------------------------------------

func (s *server) listShopCategories(c *fiber.Ctx) error {
	list, err := s.shop.Categories(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"categories": views(list, shop.CategoryView)})
}

func (s *server) listProducts(activeOnly bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		list, err := s.shop.Products(c.UserContext(), s.caller(c), c.Query("category"), activeOnly)
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"products": views(list, shop.ProductView)})
	}
}

func (s *server) getProduct(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	p, err := s.shop.ProductPage(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(shop.ProductView(p))
}

func (s *server) putShopCategory(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := shop.CategoryInput{ID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	cat, err := s.shop.PutCategory(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(shop.CategoryView(cat))
}

func (s *server) putProduct(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := shop.ProductInput{ID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, err := s.shop.PutProduct(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(shop.ProductView(p))
}

func (s *server) putVariant(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := shop.VariantInput{ID: id}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	v, err := s.shop.PutVariant(c.UserContext(), tx, s.caller(c), in)
	if err != nil {
		return err
	}
	return c.JSON(shop.VariantView(v))
}

// ---- Stock -----------------------------------------------------------------

type movementJSON struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Qty       int64     `json:"qty"`
	ActorID   string    `json:"actor_id"`
	Reason    string    `json:"reason"`
	Reference string    `json:"reference"`
	At        time.Time `json:"at"`
}

type stockJSON struct {
	VariantID         string         `json:"variant_id"`
	OnHand            int64          `json:"on_hand"`
	Held              int64          `json:"held"`
	Available         int64          `json:"available"`
	LowStockThreshold int64          `json:"low_stock_threshold"`
	Movements         []movementJSON `json:"movements,omitempty"`
}

func stockView(l inventory.Level) stockJSON {
	return stockJSON{VariantID: l.VariantID, OnHand: l.OnHand, Held: l.Held, Available: l.Available, LowStockThreshold: l.Threshold}
}

func (s *server) getStock(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	st, err := s.shop.Stock(c.UserContext(), s.caller(c), id)
	if err != nil {
		return err
	}
	out := stockView(st.Level)
	for _, m := range st.Movements {
		out.Movements = append(out.Movements, movementJSON{ID: m.ID, Kind: string(m.Kind), Qty: m.Qty, ActorID: m.ActorID,
			Reason: m.Reason, Reference: m.Reference, At: m.At.UTC()})
	}
	return c.JSON(out)
}

// moveStock records a receipt, adjustment, damage or return. The
// movement's id derives from the Idempotency-Key, so a retry is not
// counted twice.
func (s *server) moveStock(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	in := shop.MoveInput{VariantID: id, ID: idempotency.DerivedID(c, "")}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	lvl, err := s.shop.MoveStock(c.UserContext(), s.caller(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(stockView(lvl))
}
