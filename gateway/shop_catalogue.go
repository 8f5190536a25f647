package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The shop catalogue and stock API: public browsing of products with their
// variants (and, when the inventory actors are wired, what is available),
// admin puts of categories, products and variants (audited, optimistic
// versions), and stock receipts, adjustments, damage and returns, which go
// through the variant's inventory actor so that its memory stays the one
// truth about what can be reserved. Carts are in shop_cart.go.

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

// ---- Views -----------------------------------------------------------------

type shopCategoryJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Active    bool      `json:"active"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

type productImageJSON struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
}

type variantJSON struct {
	ID                string            `json:"id"`
	ProductID         string            `json:"product_id"`
	SKU               string            `json:"sku"`
	Attributes        map[string]string `json:"attributes"`
	PriceMinor        int64             `json:"price_minor"`
	VIPPriceMinor     int64             `json:"vip_price_minor"`
	TaxRateBP         int               `json:"tax_rate_bp"`
	LowStockThreshold int64             `json:"low_stock_threshold"`
	Active            bool              `json:"active"`
	Version           int64             `json:"version"`
	UpdatedAt         time.Time         `json:"updated_at"`
	// Available is set on a product's page when the inventory answers.
	Available *int64 `json:"available,omitempty"`
}

type productJSON struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Description string             `json:"description"`
	CategoryID  string             `json:"category_id"`
	Images      []productImageJSON `json:"images"`
	Active      bool               `json:"active"`
	Version     int64              `json:"version"`
	UpdatedAt   time.Time          `json:"updated_at"`
	Variants    []variantJSON      `json:"variants"`
}

func shopCategoryView(c persistence.ShopCategory) shopCategoryJSON {
	return shopCategoryJSON{ID: c.ID, Name: c.Name, Active: c.Active, Version: c.Version, UpdatedAt: c.UpdatedAt.UTC()}
}

func variantView(v persistence.Variant) variantJSON {
	attrs := maps.Clone(v.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	return variantJSON{ID: v.ID, ProductID: v.ProductID, SKU: v.SKU, Attributes: attrs, PriceMinor: v.PriceMinor,
		VIPPriceMinor: v.VIPPriceMinor, TaxRateBP: v.TaxRateBP, LowStockThreshold: v.LowStockThreshold,
		Active: v.Active, Version: v.Version, UpdatedAt: v.UpdatedAt.UTC()}
}

func productView(p persistence.Product, variants []persistence.Variant) productJSON {
	out := productJSON{ID: p.ID, Name: p.Name, Description: p.Description, CategoryID: p.CategoryID,
		Images: make([]productImageJSON, len(p.Images)), Active: p.Active, Version: p.Version,
		UpdatedAt: p.UpdatedAt.UTC(), Variants: make([]variantJSON, 0, len(variants))}
	for i, im := range p.Images {
		out.Images[i] = productImageJSON(im)
	}
	for _, v := range variants {
		if v.ProductID == p.ID {
			out.Variants = append(out.Variants, variantView(v))
		}
	}
	return out
}

// ---- Public browsing -------------------------------------------------------

func (s *server) listShopCategories(c *fiber.Ctx) error {
	var list []persistence.ShopCategory
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.ShopCategoryList(ctx, true)
		return err
	}); err != nil {
		return err
	}
	out := make([]shopCategoryJSON, len(list))
	for i, cat := range list {
		out[i] = shopCategoryView(cat)
	}
	return c.JSON(fiber.Map{"categories": out})
}

func (s *server) listProducts(activeOnly bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		category := c.Query("category")
		if category != "" && !slugRE.MatchString(category) {
			return fault.Invalid("", fault.FieldError{Field: "category", Message: "must be a category id"})
		}
		var products []persistence.Product
		var variants []persistence.Variant
		if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
			if products, err = tx.ProductList(ctx, category, activeOnly); err != nil {
				return err
			}
			variants, err = tx.VariantList(ctx, "", activeOnly)
			return err
		}); err != nil {
			return err
		}
		out := make([]productJSON, len(products))
		for i, p := range products {
			out[i] = productView(p, variants)
		}
		return c.JSON(fiber.Map{"products": out})
	}
}

// getProduct shows one active product with its active variants and, when
// the inventory actors answer in time, the units available of each.
func (s *server) getProduct(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var p persistence.Product
	var variants []persistence.Variant
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		if p, err = tx.ProductGet(ctx, id); err != nil {
			return err
		}
		variants, err = tx.VariantList(ctx, id, true)
		return err
	}); err != nil {
		return notFound(err, "product")
	}
	if !p.Active {
		return fault.NotFound("product not found")
	}
	out := productView(p, variants)
	if s.deps.Inventory != nil {
		for i := range out.Variants {
			if lvl, err := s.deps.Inventory.Level(c.UserContext(), out.Variants[i].ID, &inventory.LevelQuery{}); err == nil && lvl.Err == nil {
				n := max(lvl.Available, 0)
				out.Variants[i].Available = &n
			}
		}
	}
	return c.JSON(out)
}

// ---- Admin puts ------------------------------------------------------------

type shopCategoryInput struct {
	Name    string `json:"name"`
	Active  bool   `json:"active"`
	Version int64  `json:"version"`
}

func (s *server) putShopCategory(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in shopCategoryInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	name := f.text("name", in.Name, 1, 80)
	if in.Version < 0 {
		f.add("version", "must be 0 (create) or the stored version")
	}
	if err := f.err(); err != nil {
		return err
	}
	cat, err := tx.ShopCategoryPut(c.UserContext(), persistence.ShopCategory{ID: id, Name: name, Active: in.Active,
		Version: in.Version, UpdatedAt: s.deps.Now()})
	if err != nil {
		return versionConflict(err, in.Version)
	}
	if err := s.audit(c, tx, "shop.category.put", "shop_category/"+id, shopCategoryView(cat)); err != nil {
		return err
	}
	return c.JSON(shopCategoryView(cat))
}

type productInput struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	CategoryID  string             `json:"category_id"`
	Images      []productImageJSON `json:"images"`
	Active      bool               `json:"active"`
	Version     int64              `json:"version"`
}

func (s *server) putProduct(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in productInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	p := persistence.Product{ID: id, Name: f.text("name", in.Name, 1, 120), Active: in.Active, Version: in.Version,
		UpdatedAt: s.deps.Now()}
	p.Description = f.text("description", in.Description, 0, 4000)
	if in.Version < 0 {
		f.add("version", "must be 0 (create) or the stored version")
	}
	if len(in.Images) > persistence.MaxProductImages {
		f.add("images", "at most 10 images")
	}
	for _, im := range in.Images {
		pi := persistence.ProductImage(im)
		if err := persistence.CheckProductImage(pi); err != nil {
			f.add("images", "each image needs an https URL, a JPEG, PNG or WebP type, 1 byte to 5 MiB and 1 to 6000 pixels a side")
			break
		}
		p.Images = append(p.Images, pi)
	}
	ctx := c.UserContext()
	if in.CategoryID != "" {
		if !slugRE.MatchString(in.CategoryID) {
			f.add("category_id", "must be a category id")
		} else if _, err := tx.ShopCategoryGet(ctx, in.CategoryID); err != nil {
			if !errors.Is(err, persistence.ErrNotFound) {
				return err
			}
			f.add("category_id", "no such category")
		}
		p.CategoryID = in.CategoryID
	}
	if err := f.err(); err != nil {
		return err
	}
	stored, err := tx.ProductPut(ctx, p)
	if err != nil {
		return versionConflict(err, in.Version)
	}
	variants, err := tx.VariantList(ctx, id, false)
	if err != nil {
		return err
	}
	out := productView(stored, variants)
	if err := s.audit(c, tx, "shop.product.put", "shop_product/"+id, fiber.Map{"name": stored.Name, "active": stored.Active, "version": stored.Version}); err != nil {
		return err
	}
	return c.JSON(out)
}

type variantInput struct {
	ProductID         string            `json:"product_id"`
	SKU               string            `json:"sku"`
	Attributes        map[string]string `json:"attributes"`
	PriceMinor        int64             `json:"price_minor"`
	VIPPriceMinor     int64             `json:"vip_price_minor"`
	TaxRateBP         int               `json:"tax_rate_bp"`
	LowStockThreshold int64             `json:"low_stock_threshold"`
	Active            bool              `json:"active"`
	Version           int64             `json:"version"`
}

func (s *server) putVariant(c *fiber.Ctx, tx persistence.Tx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in variantInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	if !slugRE.MatchString(in.ProductID) {
		f.add("product_id", "must be a product id")
	}
	sku := f.text("sku", in.SKU, 1, 64)
	if in.PriceMinor < 0 {
		f.add("price_minor", "must not be negative")
	}
	if in.VIPPriceMinor < 0 || in.VIPPriceMinor > in.PriceMinor {
		f.add("vip_price_minor", "must be 0 (none) or a price not above price_minor")
	}
	if in.TaxRateBP < 0 || in.TaxRateBP > 10000 {
		f.add("tax_rate_bp", "must be 0 to 10000 basis points")
	}
	if in.LowStockThreshold < 0 {
		f.add("low_stock_threshold", "must not be negative")
	}
	if len(in.Attributes) > persistence.MaxVariantAttributes {
		f.add("attributes", "at most 20 attributes")
	}
	for k, v := range in.Attributes {
		if k == "" || len(k) > 40 || len(v) > 200 {
			f.add("attributes", "names are 1 to 40 characters, values at most 200")
			break
		}
	}
	if in.Version < 0 {
		f.add("version", "must be 0 (create) or the stored version")
	}
	if err := f.err(); err != nil {
		return err
	}
	v, err := tx.VariantPut(c.UserContext(), persistence.Variant{ID: id, ProductID: in.ProductID, SKU: sku,
		Attributes: in.Attributes, PriceMinor: in.PriceMinor, VIPPriceMinor: in.VIPPriceMinor, TaxRateBP: in.TaxRateBP,
		LowStockThreshold: in.LowStockThreshold, Active: in.Active, Version: in.Version, UpdatedAt: s.deps.Now()})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return fault.Invalid("", fault.FieldError{Field: "product_id", Message: "no such product"})
	case errors.Is(err, persistence.ErrConflict) && in.Version == 0:
		return fault.Conflict("the variant id or SKU is already used")
	case err != nil:
		return versionConflict(err, in.Version)
	}
	if err := s.audit(c, tx, "shop.variant.put", "shop_variant/"+id, variantView(v)); err != nil {
		return err
	}
	// Prices and the threshold live in the inventory actor's memory too.
	if s.deps.Inventory != nil {
		s.deps.Inventory.Invalidate(id)
	}
	return c.JSON(variantView(v))
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

// askInventory sends m to a variant's inventory actor through inv with
// send (an inventory.Client method), mapping the transport failures every
// caller shares.
func askInventory[M, R any](ctx context.Context, inv *inventory.Client, send func(*inventory.Client, context.Context, string, M) (R, error), variantID string, m M) (R, error) {
	var zero R
	if inv == nil {
		return zero, fault.Unavailable("the shop's inventory is not running on this node")
	}
	r, err := send(inv, ctx, variantID, m)
	if err != nil {
		return zero, fault.Unavailable("the inventory did not answer in time; retry")
	}
	return r, nil
}

func inventoryError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, inventory.ErrOutOfStock):
		return fault.New(fault.CodeOutOfStock, "")
	case errors.Is(err, inventory.ErrUnknownVariant):
		return fault.NotFound("variant not found")
	case errors.Is(err, inventory.ErrInvalid):
		return fault.Invalid("the stock movement is not valid")
	case errors.Is(err, inventory.ErrRetry):
		return fault.Unavailable("the inventory is busy recovering; retry")
	}
	return err
}

func (s *server) getStock(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	lvl, err := askInventory(c.UserContext(), s.deps.Inventory, (*inventory.Client).Level, id, &inventory.LevelQuery{})
	if err != nil {
		return err
	}
	if err := inventoryError(lvl.Err); err != nil {
		return err
	}
	var moves []persistence.StockMovement
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		moves, err = tx.StockMovementList(ctx, id, 50)
		return err
	}); err != nil {
		return err
	}
	out := stockView(*lvl)
	for _, m := range moves {
		out.Movements = append(out.Movements, movementJSON{ID: m.ID, Kind: string(m.Kind), Qty: m.Qty, ActorID: m.ActorID,
			Reason: m.Reason, Reference: m.Reference, At: m.At.UTC()})
	}
	return c.JSON(out)
}

type movementInput struct {
	Kind   string `json:"kind"`
	Qty    int64  `json:"qty"`
	Reason string `json:"reason"`
}

// moveStock records a receipt, adjustment, damage or return through the
// variant's actor, with who and why, audited in the same transaction.
func (s *server) moveStock(c *fiber.Ctx) error {
	id, err := slugParam(c, "id")
	if err != nil {
		return err
	}
	var in movementInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	kind := persistence.MovementKind(in.Kind)
	switch kind {
	case persistence.MoveReceipt, persistence.MoveDamage, persistence.MoveReturn:
		if in.Qty < 1 || in.Qty > 1_000_000 {
			f.add("qty", "must be 1 to 1000000")
		}
	case persistence.MoveAdjustment:
		if in.Qty == 0 || in.Qty < -1_000_000 || in.Qty > 1_000_000 {
			f.add("qty", "must be a non-zero change of -1000000 to 1000000")
		}
	default:
		f.add("kind", "must be receipt, adjustment, damage or return")
	}
	reason := f.text("reason", in.Reason, 1, 500)
	if err := f.err(); err != nil {
		return err
	}
	p, _ := Principal(c)
	now := s.deps.Now().UTC()
	mvID := idempotency.DerivedID(c, "")
	if mvID == "" {
		mvID = ulid.Make().String()
	}
	mv := persistence.StockMovement{ID: mvID, VariantID: id, Kind: kind, Qty: in.Qty, ActorID: p.Subject, Reason: reason, At: now}
	detail, _ := json.Marshal(fiber.Map{"kind": kind, "qty": in.Qty, "reason": reason})
	audit := persistence.AuditEntry{ID: ulid.Make().String(), At: now, ActorID: p.Subject, ActorRole: string(p.Role),
		Action: "shop.stock." + string(kind), Subject: "shop_variant/" + id, RequestID: RequestID(c), Reason: reason, Detail: detail}
	mr, err := askInventory(c.UserContext(), s.deps.Inventory, (*inventory.Client).Move, id, &inventory.Move{Movement: mv, Audit: &audit})
	if err != nil {
		return err
	}
	if err := inventoryError(mr.Err); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(stockView(mr.Level))
}
