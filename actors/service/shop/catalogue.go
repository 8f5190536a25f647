package shop

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/check"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// ---- Catalogue -----------------------------------------------------------------

// The shop catalogue: public browsing of products with their variants
// (and, on a product's page, what the inventory actors say is available),
// and admin puts of categories, products and variants, audited, with
// optimistic versions.
//
// The JSON forms of categories, products and variants are defined here:
// each is both the API's answer and the audit detail of the put that
// stored it, so the two cannot drift.

// CategoryJSON is a shop category as the API shows it.
type CategoryJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Active    bool      `json:"active"`
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProductImageJSON is one picture of a product.
type ProductImageJSON struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
}

// VariantJSON is a variant as the API shows it.
type VariantJSON struct {
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

// ProductJSON is a product with its variants as the API shows it.
type ProductJSON struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Description string             `json:"description"`
	CategoryID  string             `json:"category_id"`
	Images      []ProductImageJSON `json:"images"`
	Active      bool               `json:"active"`
	Version     int64              `json:"version"`
	UpdatedAt   time.Time          `json:"updated_at"`
	Variants    []VariantJSON      `json:"variants"`
}

// CategoryView is c's JSON form.
func CategoryView(c persistence.ShopCategory) CategoryJSON {
	return CategoryJSON{ID: c.ID, Name: c.Name, Active: c.Active, Version: c.Version, UpdatedAt: c.UpdatedAt.UTC()}
}

// VariantView is v's JSON form.
func VariantView(v persistence.Variant) VariantJSON {
	attrs := maps.Clone(v.Attributes)
	if attrs == nil {
		attrs = map[string]string{}
	}
	return VariantJSON{ID: v.ID, ProductID: v.ProductID, SKU: v.SKU, Attributes: attrs, PriceMinor: v.PriceMinor,
		VIPPriceMinor: v.VIPPriceMinor, TaxRateBP: v.TaxRateBP, LowStockThreshold: v.LowStockThreshold,
		Active: v.Active, Version: v.Version, UpdatedAt: v.UpdatedAt.UTC()}
}

// Product is a product with its variants and, on the public page, the
// units available of each variant whose inventory answered.
type Product struct {
	Product   persistence.Product
	Variants  []persistence.Variant
	Available map[string]int64 // by variant id
}

// ProductView is p's JSON form.
func ProductView(p Product) ProductJSON {
	out := ProductJSON{ID: p.Product.ID, Name: p.Product.Name, Description: p.Product.Description, CategoryID: p.Product.CategoryID,
		Images: make([]ProductImageJSON, len(p.Product.Images)), Active: p.Product.Active, Version: p.Product.Version,
		UpdatedAt: p.Product.UpdatedAt.UTC(), Variants: make([]VariantJSON, 0, len(p.Variants))}
	for i, im := range p.Product.Images {
		out.Images[i] = ProductImageJSON(im)
	}
	for _, v := range p.Variants {
		vj := VariantView(v)
		if n, ok := p.Available[v.ID]; ok {
			vj.Available = &n
		}
		out.Variants = append(out.Variants, vj)
	}
	return out
}

// withVariants pairs each product with its own variants, in the order
// they were listed.
func withVariants(products []persistence.Product, variants []persistence.Variant) []Product {
	out := make([]Product, len(products))
	for i, p := range products {
		out[i].Product = p
		for _, v := range variants {
			if v.ProductID == p.ID {
				out[i].Variants = append(out[i].Variants, v)
			}
		}
	}
	return out
}

// slugID refuses an id that is not a slug (the gateway checks path ids
// first with the same message).
func slugID(field, id string) error {
	if !check.Slug.MatchString(id) {
		return fault.Invalid("", fault.FieldError{Field: field, Message: "must be 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit"})
	}
	return nil
}

// ---- Browsing ------------------------------------------------------------------

// Categories lists the active categories; anyone may browse.
func (s *Service) Categories(ctx context.Context) (list []persistence.ShopCategory, err error) {
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.ShopCategoryList(ctx, true)
		return err
	})
	return list, err
}

// Products lists the products of category ("": all) with their variants:
// the active ones for anyone (activeOnly), or all of them for admins.
func (s *Service) Products(ctx context.Context, by service.Caller, category string, activeOnly bool) ([]Product, error) {
	if !activeOnly {
		if err := allow(by, adminRoles); err != nil {
			return nil, err
		}
	}
	if category != "" && !check.Slug.MatchString(category) {
		return nil, fault.Invalid("", fault.FieldError{Field: "category", Message: "must be a category id"})
	}
	var products []persistence.Product
	var variants []persistence.Variant
	err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if products, err = tx.ProductList(ctx, category, activeOnly); err != nil {
			return err
		}
		variants, err = tx.VariantList(ctx, "", activeOnly)
		return err
	})
	if err != nil {
		return nil, err
	}
	return withVariants(products, variants), nil
}

// ProductPage shows one active product with its active variants and, when
// the inventory actors answer in time, the units available of each.
func (s *Service) ProductPage(ctx context.Context, id string) (Product, error) {
	if err := slugID("id", id); err != nil {
		return Product{}, err
	}
	var p Product
	err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if p.Product, err = tx.ProductGet(ctx, id); err != nil {
			return err
		}
		p.Variants, err = tx.VariantList(ctx, id, true)
		return err
	})
	if err != nil {
		return Product{}, fault.IfNotFound(err, "product")
	}
	if !p.Product.Active {
		return Product{}, fault.NotFound("product not found")
	}
	p = withVariants([]persistence.Product{p.Product}, p.Variants)[0]
	if s.inventory != nil {
		for _, v := range p.Variants {
			if lvl, err := s.inventory.Level(ctx, v.ID, &inventory.LevelQuery{}); err == nil && lvl.Err == nil {
				if p.Available == nil {
					p.Available = map[string]int64{}
				}
				p.Available[v.ID] = max(lvl.Available, 0)
			}
		}
	}
	return p, nil
}

// ---- Admin puts ----------------------------------------------------------------

// CategoryInput creates (Version 0) or updates a category.
type CategoryInput struct {
	ID      string `json:"-"`
	Name    string `json:"name"`
	Active  bool   `json:"active"`
	Version int64  `json:"version"`
}

// PutCategory stores a category in tx, audited; admins only.
func (s *Service) PutCategory(ctx context.Context, tx persistence.Tx, by service.Caller, in CategoryInput) (persistence.ShopCategory, error) {
	if err := allow(by, adminRoles); err != nil {
		return persistence.ShopCategory{}, err
	}
	if err := slugID("id", in.ID); err != nil {
		return persistence.ShopCategory{}, err
	}
	var f check.Fields
	name := f.Text("name", in.Name, 1, 80)
	if in.Version < 0 {
		f.Add("version", "must be 0 (create) or the stored version")
	}
	if err := f.Err(); err != nil {
		return persistence.ShopCategory{}, err
	}
	now := s.now()
	cat, err := tx.ShopCategoryPut(ctx, persistence.ShopCategory{ID: in.ID, Name: name, Active: in.Active,
		Version: in.Version, UpdatedAt: now})
	if err != nil {
		return persistence.ShopCategory{}, fault.IfVersionConflict(err, in.Version)
	}
	if err := service.Audit(ctx, tx, now, by, "shop.category.put", "shop_category/"+in.ID, "", CategoryView(cat)); err != nil {
		return persistence.ShopCategory{}, err
	}
	return cat, nil
}

// ProductInput creates (Version 0) or updates a product.
type ProductInput struct {
	ID          string             `json:"-"`
	Name        string             `json:"name"`
	Description string             `json:"description"`
	CategoryID  string             `json:"category_id"`
	Images      []ProductImageJSON `json:"images"`
	Active      bool               `json:"active"`
	Version     int64              `json:"version"`
}

// PutProduct stores a product in tx, audited, and returns it with all its
// variants; admins only.
func (s *Service) PutProduct(ctx context.Context, tx persistence.Tx, by service.Caller, in ProductInput) (Product, error) {
	if err := allow(by, adminRoles); err != nil {
		return Product{}, err
	}
	if err := slugID("id", in.ID); err != nil {
		return Product{}, err
	}
	now := s.now()
	var f check.Fields
	p := persistence.Product{ID: in.ID, Name: f.Text("name", in.Name, 1, 120), Active: in.Active, Version: in.Version,
		UpdatedAt: now}
	p.Description = f.Text("description", in.Description, 0, 4000)
	if in.Version < 0 {
		f.Add("version", "must be 0 (create) or the stored version")
	}
	if len(in.Images) > persistence.MaxProductImages {
		f.Add("images", "at most 10 images")
	}
	for _, im := range in.Images {
		pi := persistence.ProductImage(im)
		if err := persistence.CheckProductImage(pi); err != nil {
			f.Add("images", "each image needs an https URL, a JPEG, PNG or WebP type, 1 byte to 5 MiB and 1 to 6000 pixels a side")
			break
		}
		p.Images = append(p.Images, pi)
	}
	if in.CategoryID != "" {
		if !check.Slug.MatchString(in.CategoryID) {
			f.Add("category_id", "must be a category id")
		} else if _, err := tx.ShopCategoryGet(ctx, in.CategoryID); err != nil {
			if !errors.Is(err, persistence.ErrNotFound) {
				return Product{}, err
			}
			f.Add("category_id", "no such category")
		}
		p.CategoryID = in.CategoryID
	}
	if err := f.Err(); err != nil {
		return Product{}, err
	}
	stored, err := tx.ProductPut(ctx, p)
	if err != nil {
		return Product{}, fault.IfVersionConflict(err, in.Version)
	}
	variants, err := tx.VariantList(ctx, in.ID, false)
	if err != nil {
		return Product{}, err
	}
	if err := service.Audit(ctx, tx, now, by, "shop.product.put", "shop_product/"+in.ID, "",
		map[string]any{"name": stored.Name, "active": stored.Active, "version": stored.Version}); err != nil {
		return Product{}, err
	}
	return withVariants([]persistence.Product{stored}, variants)[0], nil
}

// VariantInput creates (Version 0) or updates a variant of a product.
type VariantInput struct {
	ID                string            `json:"-"`
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

// PutVariant stores a variant in tx, audited, and has its inventory actor
// reload it (prices and the threshold live in its memory too); admins
// only.
func (s *Service) PutVariant(ctx context.Context, tx persistence.Tx, by service.Caller, in VariantInput) (persistence.Variant, error) {
	if err := allow(by, adminRoles); err != nil {
		return persistence.Variant{}, err
	}
	if err := slugID("id", in.ID); err != nil {
		return persistence.Variant{}, err
	}
	var f check.Fields
	if !check.Slug.MatchString(in.ProductID) {
		f.Add("product_id", "must be a product id")
	}
	sku := f.Text("sku", in.SKU, 1, 64)
	f.Amount("price_minor", in.PriceMinor, 0)
	if in.VIPPriceMinor < 0 || in.VIPPriceMinor > in.PriceMinor {
		f.Add("vip_price_minor", "must be 0 (none) or a price not above price_minor")
	}
	if in.TaxRateBP < 0 || in.TaxRateBP > 10000 {
		f.Add("tax_rate_bp", "must be 0 to 10000 basis points")
	}
	if in.LowStockThreshold < 0 {
		f.Add("low_stock_threshold", "must not be negative")
	}
	if len(in.Attributes) > persistence.MaxVariantAttributes {
		f.Add("attributes", "at most 20 attributes")
	}
	for k, v := range in.Attributes {
		if k == "" || len(k) > 40 || len(v) > 200 {
			f.Add("attributes", "names are 1 to 40 characters, values at most 200")
			break
		}
	}
	if in.Version < 0 {
		f.Add("version", "must be 0 (create) or the stored version")
	}
	if err := f.Err(); err != nil {
		return persistence.Variant{}, err
	}
	now := s.now()
	v, err := tx.VariantPut(ctx, persistence.Variant{ID: in.ID, ProductID: in.ProductID, SKU: sku,
		Attributes: in.Attributes, PriceMinor: in.PriceMinor, VIPPriceMinor: in.VIPPriceMinor, TaxRateBP: in.TaxRateBP,
		LowStockThreshold: in.LowStockThreshold, Active: in.Active, Version: in.Version, UpdatedAt: now})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return persistence.Variant{}, fault.Invalid("", fault.FieldError{Field: "product_id", Message: "no such product"})
	case errors.Is(err, persistence.ErrConflict) && in.Version == 0:
		return persistence.Variant{}, fault.Conflict("the variant id or SKU is already used")
	case err != nil:
		return persistence.Variant{}, fault.IfVersionConflict(err, in.Version)
	}
	if err := service.Audit(ctx, tx, now, by, "shop.variant.put", "shop_variant/"+in.ID, "", VariantView(v)); err != nil {
		return persistence.Variant{}, err
	}
	// Prices and the threshold live in the inventory actor's memory too.
	if s.inventory != nil {
		s.inventory.Invalidate(in.ID)
	}
	return v, nil
}
