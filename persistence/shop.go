package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spa-engine/spa/persistence/money"
)

// ---- Shop: catalogue, inventory, reservations, carts ---------------------
//
// Stock of a variant is decided by that variant's inventory actor, which
// owns the variant's inventory row and reservations (fenced like a
// calendar: CalendarActivate / CalendarCheckEpoch on "inventory/<variant>").
// The one write outside it is ReservationConsume, made by checkout: it is
// conditional (live and unexpired), so it can never race a release into a
// lost or double-counted reservation, and ReservationPut re-checks stock in
// SQL, so an actor whose memory missed a sale cannot oversell either.

// ShopCategory groups products in the catalogue.
type ShopCategory struct {
	ID        string
	Name      string
	Active    bool
	Version   int64 // optimistic concurrency; 0: not stored yet
	UpdatedAt time.Time
}

// ProductImage is a product picture hosted elsewhere, described by
// metadata the catalogue validates (it never fetches the URL).
type ProductImage struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
}

// Image limits.
const (
	MaxProductImages     = 10
	MaxImageBytes        = 5 << 20
	MaxImageDimension    = 6000
	MaxVariantAttributes = 20
)

// imageTypes are the accepted image content types.
var imageTypes = []string{"image/jpeg", "image/png", "image/webp"}

// Product is a retail item; what is sold is one of its variants.
type Product struct {
	ID          string
	Name        string
	Description string
	CategoryID  string // "" when uncategorised
	Images      []ProductImage
	Active      bool
	Version     int64
	UpdatedAt   time.Time
}

// Variant is a sellable unit of a product (a size, a scent) with its own
// SKU, prices and stock.
type Variant struct {
	ID                string
	ProductID         string
	SKU               string // unique across variants
	Attributes        map[string]string
	PriceMinor        int64 // COP minor units
	VIPPriceMinor     int64 // 0: no VIP price, the regular one applies
	TaxRateBP         int   // basis points, e.g. 1900 for 19% IVA
	LowStockThreshold int64 // a low-stock event fires when available falls to or below it
	Active            bool
	Version           int64
	UpdatedAt         time.Time
}

// Stock is a variant's inventory row. Reserved counts reservations still
// marked live, including expired ones whose release has not been written
// yet; what is available at an instant is computed from the reservations
// (see ReservationList), not from Reserved.
type Stock struct {
	VariantID string
	OnHand    int64
	Reserved  int64
	UpdatedAt time.Time
}

// MovementKind is why a variant's stock changed.
type MovementKind string

// Movement kinds. Receipt, adjustment, damage and return change on hand
// (MoveStock); reservation and release change reserved; sale both.
const (
	MoveReceipt     MovementKind = "receipt"
	MoveAdjustment  MovementKind = "adjustment" // Qty signed
	MoveReservation MovementKind = "reservation"
	MoveRelease     MovementKind = "release"
	MoveSale        MovementKind = "sale"
	MoveReturn      MovementKind = "return"
	MoveDamage      MovementKind = "damage"
)

// StockMovement is one entry of the append-only movement log.
type StockMovement struct {
	ID        string // ULID
	VariantID string
	Kind      MovementKind
	Qty       int64 // signed change of OnHand for stock moves, of Reserved for reservation/release
	ActorID   string
	Reason    string
	Reference string // reservation or order id, when there is one
	At        time.Time
}

// ReservationState is the life stage of a reservation.
type ReservationState string

// Reservation states: live → consumed (checkout) | released (removed,
// expired, cart abandoned).
const (
	ReservationLive     ReservationState = "live"
	ReservationConsumed ReservationState = "consumed"
	ReservationReleased ReservationState = "released"
)

// Reservation holds Qty units of a variant for a cart until ExpiresAt. A
// live reservation past ExpiresAt holds nothing, whether or not its
// release has been written.
type Reservation struct {
	ID        string
	CartID    string
	VariantID string
	Qty       int64
	ExpiresAt time.Time
	State     ReservationState
	OrderID   string // set when consumed
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Holds reports whether r takes stock at now.
func (r Reservation) Holds(now time.Time) bool {
	return r.State == ReservationLive && r.ExpiresAt.After(now)
}

// CartState is the life stage of a cart.
type CartState string

// Cart states.
const (
	CartOpen       CartState = "open"
	CartCheckedOut CartState = "checked_out"
	CartExpired    CartState = "expired"
	CartMerged     CartState = "merged"
)

// Cart is a shopping cart; its lines are its live reservations.
type Cart struct {
	ID         string
	OwnerID    string // the signed-in client; "" for an anonymous cart
	TokenHash  []byte // SHA-256 of an anonymous cart's secret token
	State      CartState
	OrderID    string // set when checked out
	MergedInto string // set when merged
	ExpiresAt  time.Time
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ShopStore keeps the shop's catalogue, stock and carts. Puts of
// categories, products and variants behave like ServicePut (Version 0
// creates, a stale version is ErrConflict). Malformed input is ErrInvalid.
type ShopStore interface {
	ShopCategoryPut(ctx context.Context, c ShopCategory) (ShopCategory, error)
	ShopCategoryGet(ctx context.Context, id string) (ShopCategory, error)
	// ShopCategoryList returns categories by ID, only active ones when
	// activeOnly.
	ShopCategoryList(ctx context.Context, activeOnly bool) ([]ShopCategory, error)

	ProductPut(ctx context.Context, p Product) (Product, error)
	ProductGet(ctx context.Context, id string) (Product, error)
	// ProductList returns products by ID, of one category when categoryID
	// is set, only active ones when activeOnly.
	ProductList(ctx context.Context, categoryID string, activeOnly bool) ([]Product, error)

	// VariantPut also creates the variant's empty inventory row. A SKU
	// used by another variant is ErrConflict; an unknown product
	// ErrNotFound.
	VariantPut(ctx context.Context, v Variant) (Variant, error)
	VariantGet(ctx context.Context, id string) (Variant, error)
	// VariantList returns a product's variants by ID ("" : all).
	VariantList(ctx context.Context, productID string, activeOnly bool) ([]Variant, error)

	// StockGet returns the variant's inventory row or ErrNotFound.
	StockGet(ctx context.Context, variantID string) (Stock, error)
	// StockMove applies a receipt, adjustment, damage or return to on
	// hand and appends m; on hand may not become negative (ErrConflict).
	StockMove(ctx context.Context, m StockMovement) (Stock, error)
	// StockMovementList returns a variant's movements, newest first, at
	// most limit (1..MaxAuditListLimit).
	StockMovementList(ctx context.Context, variantID string, limit int) ([]StockMovement, error)

	// ReservationPut creates r live, or resizes and extends the live
	// reservation with its ID, adjusting the variant's reserved count and
	// logging the change by actorID. It re-checks in SQL that the units
	// held at now, r included, do not exceed on hand: ErrConflict if they
	// would (the caller's memory was stale), if r's ID names a
	// reservation that is no longer live, or if r is new and its cart is
	// stored and no longer open.
	ReservationPut(ctx context.Context, r Reservation, actorID string, now time.Time) error
	// ReservationRelease marks the live reservation released and gives
	// its units back; it reports false (and changes nothing) when the
	// reservation is not live any more (consumed or released already).
	ReservationRelease(ctx context.Context, id, actorID, reason string, now time.Time) (bool, error)
	// ReservationConsume turns a live reservation unexpired at now into a
	// sale for orderID: on hand and reserved both drop by its quantity.
	// ErrConflict if it is not live or has expired, or if on hand no longer
	// covers it beside the other reservations live at now (the inventory
	// actor saw it expire and gave its units away); ErrNotFound if absent.
	ReservationConsume(ctx context.Context, id, orderID, actorID string, now time.Time) (Reservation, error)
	ReservationGet(ctx context.Context, id string) (Reservation, error)
	// ReservationList returns the live reservations (expired or not) of a
	// variant, by ID.
	ReservationList(ctx context.Context, variantID string) ([]Reservation, error)
	// ReservationListByCart returns a cart's live reservations, by ID.
	ReservationListByCart(ctx context.Context, cartID string) ([]Reservation, error)

	// CartPut creates (Version 0) or updates a cart, like ServicePut.
	CartPut(ctx context.Context, c Cart) (Cart, error)
	CartGet(ctx context.Context, id string) (Cart, error)
	// CartOpenByOwner returns the owner's open cart, or ErrNotFound.
	CartOpenByOwner(ctx context.Context, ownerID string) (Cart, error)

	// ShopVIPSet marks (vip) or unmarks a client as paying VIP prices,
	// recording who did it; setting what is already so changes nothing.
	ShopVIPSet(ctx context.Context, clientID string, vip bool, by string, at time.Time) error
	// ShopVIPIs reports whether the client pays VIP prices.
	ShopVIPIs(ctx context.Context, clientID string) (bool, error)
}

// InventoryCalendarID names a variant's inventory in the fencing table.
func InventoryCalendarID(variantID string) string { return "inventory/" + variantID }

// NormalizeShopCategory checks c for ShopCategoryPut.
func NormalizeShopCategory(c ShopCategory) (ShopCategory, error) {
	if err := checkID("category", c.ID); err != nil {
		return c, err
	}
	if strings.TrimSpace(c.Name) == "" {
		return c, invalidf("category %s has no name", c.ID)
	}
	c.UpdatedAt = CanonicalTime(c.UpdatedAt)
	return c, checkVersion("category", c.Version)
}

// CheckProductImage validates an image's metadata: an absolute https URL,
// an accepted content type, a size of at most MaxImageBytes and
// dimensions within 1..MaxImageDimension.
func CheckProductImage(im ProductImage) error {
	u, err := url.Parse(im.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || len(im.URL) > 2048 {
		return invalidf("image URL %q is not an absolute https URL", im.URL)
	}
	if !slices.Contains(imageTypes, im.ContentType) {
		return invalidf("image content type %q is not one of %v", im.ContentType, imageTypes)
	}
	if im.SizeBytes < 1 || im.SizeBytes > MaxImageBytes {
		return invalidf("image size %d is not 1..%d bytes", im.SizeBytes, MaxImageBytes)
	}
	if im.Width < 1 || im.Width > MaxImageDimension || im.Height < 1 || im.Height > MaxImageDimension {
		return invalidf("image dimensions %dx%d are not within 1..%d", im.Width, im.Height, MaxImageDimension)
	}
	return nil
}

// NormalizeProduct checks p for ProductPut.
func NormalizeProduct(p Product) (Product, error) {
	if err := checkID("product", p.ID); err != nil {
		return p, err
	}
	if strings.TrimSpace(p.Name) == "" {
		return p, invalidf("product %s has no name", p.ID)
	}
	if len(p.Images) > MaxProductImages {
		return p, invalidf("product %s has %d images; at most %d", p.ID, len(p.Images), MaxProductImages)
	}
	for _, im := range p.Images {
		if err := CheckProductImage(im); err != nil {
			return p, err
		}
	}
	if len(p.Images) == 0 {
		p.Images = nil
	}
	p.UpdatedAt = CanonicalTime(p.UpdatedAt)
	return p, checkVersion("product", p.Version)
}

// NormalizeVariant checks v for VariantPut: ids and SKU, non-negative
// prices with a VIP price not above the regular one, a tax rate of
// 0..10000 basis points and a non-negative threshold.
func NormalizeVariant(v Variant) (Variant, error) {
	if err := checkID("variant", v.ID); err != nil {
		return v, err
	}
	if err := checkID("product", v.ProductID); err != nil {
		return v, err
	}
	if strings.TrimSpace(v.SKU) == "" || len(v.SKU) > 64 {
		return v, invalidf("variant %s SKU %q is not 1..64 characters", v.ID, v.SKU)
	}
	if !money.Valid(v.PriceMinor) || v.VIPPriceMinor < 0 || v.VIPPriceMinor > v.PriceMinor {
		return v, invalidf("variant %s prices %d/%d: amounts (0 to 10^12), VIP not above regular", v.ID, v.PriceMinor, v.VIPPriceMinor)
	}
	if v.TaxRateBP < 0 || v.TaxRateBP > 10000 {
		return v, invalidf("variant %s tax rate %d bp is not 0..10000", v.ID, v.TaxRateBP)
	}
	if v.LowStockThreshold < 0 {
		return v, invalidf("variant %s low-stock threshold %d is negative", v.ID, v.LowStockThreshold)
	}
	if len(v.Attributes) > MaxVariantAttributes {
		return v, invalidf("variant %s has %d attributes; at most %d", v.ID, len(v.Attributes), MaxVariantAttributes)
	}
	for k := range v.Attributes {
		if k == "" {
			return v, invalidf("variant %s has an attribute with an empty name", v.ID)
		}
	}
	if len(v.Attributes) == 0 {
		v.Attributes = nil
	}
	v.UpdatedAt = CanonicalTime(v.UpdatedAt)
	return v, checkVersion("variant", v.Version)
}

// PriceFor is the unit price a client pays: the VIP price for VIP clients
// when the variant has one.
func (v Variant) PriceFor(vip bool) int64 {
	if vip && v.VIPPriceMinor > 0 {
		return v.VIPPriceMinor
	}
	return v.PriceMinor
}

// EncodeImages and DecodeImages are the images column (JSON text).
func EncodeImages(ims []ProductImage) string {
	if len(ims) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(ims)
	return string(b)
}

// DecodeImages reads the images column; an empty list comes back nil.
func DecodeImages(s string) ([]ProductImage, error) {
	var ims []ProductImage
	if err := json.Unmarshal([]byte(s), &ims); err != nil {
		return nil, fmt.Errorf("persistence: images column: %w", err)
	}
	if len(ims) == 0 {
		return nil, nil
	}
	return ims, nil
}

// EncodeAttributes and DecodeAttributes are the attributes column (a JSON
// object; encoding/json sorts its keys, so equal maps encode equally).
func EncodeAttributes(a map[string]string) string {
	if len(a) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

// DecodeAttributes reads the attributes column; an empty map comes back nil.
func DecodeAttributes(s string) (map[string]string, error) {
	var a map[string]string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("persistence: attributes column: %w", err)
	}
	if len(a) == 0 {
		return nil, nil
	}
	return maps.Clone(a), nil
}

// NormalizeStockMove checks m for StockMove: ids, a kind that changes on
// hand, a positive quantity (a non-zero signed one for an adjustment),
// who and why. It returns the signed change of on hand.
func NormalizeStockMove(m StockMovement) (StockMovement, int64, error) {
	if err := checkID("movement", m.ID); err != nil {
		return m, 0, err
	}
	if err := checkID("variant", m.VariantID); err != nil {
		return m, 0, err
	}
	if m.ActorID == "" || strings.TrimSpace(m.Reason) == "" {
		return m, 0, invalidf("stock movement %s needs who and why", m.ID)
	}
	m.At = CanonicalTime(m.At)
	var delta int64
	switch m.Kind {
	case MoveReceipt, MoveReturn:
		delta = m.Qty
	case MoveDamage:
		delta = -m.Qty
	case MoveAdjustment:
		if m.Qty == 0 {
			return m, 0, invalidf("an adjustment of 0")
		}
		return m, m.Qty, nil
	default:
		return m, 0, invalidf("stock movement kind %q does not change on hand by itself", m.Kind)
	}
	if m.Qty < 1 {
		return m, 0, invalidf("stock movement quantity %d is not positive", m.Qty)
	}
	return m, delta, nil
}

// NormalizeReservation checks r for ReservationPut.
func NormalizeReservation(r Reservation) (Reservation, error) {
	if err := checkID("reservation", r.ID); err != nil {
		return r, err
	}
	if err := checkID("cart", r.CartID); err != nil {
		return r, err
	}
	if err := checkID("variant", r.VariantID); err != nil {
		return r, err
	}
	if r.Qty < 1 {
		return r, invalidf("reservation %s quantity %d is not positive", r.ID, r.Qty)
	}
	r.ExpiresAt = CanonicalTime(r.ExpiresAt)
	if r.ExpiresAt.IsZero() {
		return r, invalidf("reservation %s needs an expiry", r.ID)
	}
	r.State = ReservationLive
	return r, nil
}

// NormalizeCart checks c for CartPut.
func NormalizeCart(c Cart) (Cart, error) {
	if err := checkID("cart", c.ID); err != nil {
		return c, err
	}
	switch c.State {
	case CartOpen, CartCheckedOut, CartExpired, CartMerged:
	default:
		return c, invalidf("cart %s state %q is unknown", c.ID, c.State)
	}
	if c.OwnerID == "" && len(c.TokenHash) == 0 {
		return c, invalidf("cart %s has neither an owner nor a token", c.ID)
	}
	c.ExpiresAt, c.CreatedAt, c.UpdatedAt = CanonicalTime(c.ExpiresAt), CanonicalTime(c.CreatedAt), CanonicalTime(c.UpdatedAt)
	return c, checkVersion("cart", c.Version)
}

// StockShort is the error ReservationPut returns when the stock in the
// database does not cover the reservation.
func StockShort(variantID string, want, free int64) error {
	return fmt.Errorf("persistence: variant %s: %d wanted, %d free: %w", variantID, want, free, ErrConflict)
}

// ReservationNotLive is the error for a reservation that is no longer live
// (or expired, for a consume).
func ReservationNotLive(id string) error {
	return fmt.Errorf("persistence: reservation %s is not live: %w", id, ErrConflict)
}

// CartNotOpen is the error for a new reservation of a cart that is
// closed (checked out, expired or merged).
func CartNotOpen(cartID string, state CartState) error {
	return fmt.Errorf("persistence: cart %s is %s, not open: %w", cartID, state, ErrConflict)
}

// StockMissing is the error for a variant without an inventory row.
func StockMissing(variantID string) error {
	return fmt.Errorf("persistence: no stock row for variant %s: %w", variantID, ErrNotFound)
}

// ReservationMovement is the log entry of a reservation growing (delta > 0)
// or shrinking (delta < 0, a release).
func ReservationMovement(r Reservation, delta int64, actorID string, now time.Time) StockMovement {
	m := StockMovement{ID: ulid.Make().String(), VariantID: r.VariantID, Kind: MoveReservation, Qty: delta,
		ActorID: actorID, Reason: "cart " + r.CartID, Reference: r.ID, At: CanonicalTime(now)}
	if delta < 0 {
		m.Kind = MoveRelease
	}
	if m.ActorID == "" {
		m.ActorID = "system"
	}
	return m
}

// SaleMovement is the log entry of a consumed reservation.
func SaleMovement(r Reservation, actorID string, now time.Time) StockMovement {
	m := ReservationMovement(r, -r.Qty, actorID, now)
	m.Kind, m.Reason, m.Reference = MoveSale, "order "+r.OrderID, r.ID
	return m
}
