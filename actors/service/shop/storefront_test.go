package shop

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	protoactor "github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
)

// The catalogue, stock and cart use cases against a real store with real
// local inventory and cart actors (no HTTP): what the API and the WhatsApp
// bot both get.

var (
	vipAna = caller("vip-ana", auth.RoleClient) // pays VIP prices
	kiosk  = caller("kiosk-1", auth.RoleKiosk)
	nobody = service.Caller{RequestID: "req-anon"}
)

type storefront struct {
	t     *testing.T
	store persistence.Store
	svc   *Service
}

// shops runs fn on each driver with a Service wired to fresh inventory
// and cart actors over the store; callers whose subject starts with
// "vip-" pay VIP prices. Business time is the real clock: the actors
// time reservations with it.
func shops(t *testing.T, fn func(t *testing.T, f *storefront)) {
	for _, d := range inventorytest.Drivers() {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			sys := protoactor.NewActorSystem(protoactor.WithLoggerFactory(func(*protoactor.ActorSystem) *slog.Logger { return quiet }))
			im, err := inventory.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			cm, err := cart.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			inv, err := inventory.NewDirectory(sys.Root, inventory.Deps{Store: st, Log: quiet, Metrics: im}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			carts, err := cart.NewDirectory(sys.Root, cart.Deps{Store: st, Inventory: inv, Log: quiet, Metrics: cm}, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { carts.Stop(5 * time.Second); inv.Stop(5 * time.Second); sys.Shutdown() })
			f := &storefront{t: t, store: st, svc: New(Deps{Store: st, Inventory: inventory.NewClient(inv), Carts: cart.NewClient(carts),
				VIP: func(c auth.Claims) bool { return len(c.Subject) > 4 && c.Subject[:4] == "vip-" }})}
			fn(t, f)
		})
	}
}

func (f *storefront) in(fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := f.t.Context()
	return f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

func (f *storefront) audit() []persistence.AuditEntry {
	f.t.Helper()
	var list []persistence.AuditEntry
	if err := f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.AuditList(ctx, persistence.AuditListParams{Limit: 100})
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return list
}

func (f *storefront) putCategory(by service.Caller, in CategoryInput) (c persistence.ShopCategory, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		c, err = f.svc.PutCategory(ctx, tx, by, in)
		return err
	})
	return c, err
}

func (f *storefront) putProduct(by service.Caller, in ProductInput) (p Product, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		p, err = f.svc.PutProduct(ctx, tx, by, in)
		return err
	})
	return p, err
}

func (f *storefront) putVariant(by service.Caller, in VariantInput) (v persistence.Variant, err error) {
	err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
		v, err = f.svc.PutVariant(ctx, tx, by, in)
		return err
	})
	return v, err
}

// Lavender oil, 50 ml: 45,000.00 COP (VIP 40,000.00) plus 19% tax.
var lavender = VariantInput{ID: "lavender-50", ProductID: "lavender", SKU: "LAV-50", Attributes: map[string]string{"size": "50ml"},
	PriceMinor: 4_500_000, VIPPriceMinor: 4_000_000, TaxRateBP: 1900, LowStockThreshold: 2, Active: true}

// stock puts the category, product and variant through the service and
// receives units.
func (f *storefront) stock(units int64) {
	f.t.Helper()
	if _, err := f.putCategory(boss, CategoryInput{ID: "oils", Name: "Oils", Active: true}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.putProduct(boss, ProductInput{ID: "lavender", Name: "Lavender oil", Description: "Calming", CategoryID: "oils",
		Images: []ProductImageJSON{{URL: "https://cdn.example.com/lav.jpg", ContentType: "image/jpeg", SizeBytes: 120000, Width: 800, Height: 800}},
		Active: true}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.putVariant(boss, lavender); err != nil {
		f.t.Fatal(err)
	}
	if units > 0 {
		if _, err := f.svc.MoveStock(f.t.Context(), boss, MoveInput{VariantID: "lavender-50", Kind: "receipt", Qty: units, Reason: "delivery"}); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *storefront) available() int64 {
	f.t.Helper()
	p, err := f.svc.ProductPage(f.t.Context(), "lavender")
	if err != nil {
		f.t.Fatal(err)
	}
	n, ok := p.Available["lavender-50"]
	if !ok {
		f.t.Fatal("the inventory did not answer")
	}
	return n
}

func TestShopCataloguePutsAuditAndConflict(t *testing.T) {
	shops(t, func(t *testing.T, f *storefront) {
		f.stock(0)
		audit := f.audit()
		var actions []string
		for _, a := range audit {
			actions = append(actions, a.Action)
			if a.ActorID != "boss" || a.ActorRole != "admin" || a.RequestID != "req-boss" {
				t.Errorf("audit entry %+v", a)
			}
			if a.Action == "shop.variant.put" {
				var got VariantJSON
				if err := json.Unmarshal(a.Detail, &got); err != nil || got.SKU != "LAV-50" || got.VIPPriceMinor != 4_000_000 ||
					a.Subject != "shop_variant/lavender-50" {
					t.Errorf("variant audit %s %s (%v)", a.Subject, a.Detail, err)
				}
			}
			if a.Action == "shop.product.put" && string(a.Detail) != `{"active":true,"name":"Lavender oil","version":1}` {
				t.Errorf("product audit detail %s", a.Detail)
			}
		}
		slices.Sort(actions)
		if !slices.Equal(actions, []string{"shop.category.put", "shop.product.put", "shop.variant.put"}) {
			t.Fatalf("audit actions %v", actions)
		}

		// An update with the stored version passes; a stale one is a
		// version conflict naming the version sent, and leaves no entry.
		p, err := f.putProduct(boss, ProductInput{ID: "lavender", Name: "Lavender oil 2", CategoryID: "oils", Active: true, Version: 1})
		if err != nil || p.Product.Version != 2 || len(p.Variants) != 1 || p.Variants[0].ID != "lavender-50" {
			t.Fatalf("product update: %+v %v", p, err)
		}
		_, err = f.putProduct(boss, ProductInput{ID: "lavender", Name: "x", Active: true, Version: 1})
		if servicetest.Code(err) != fault.CodeVersionConflict || err.(*fault.Error).Details.(map[string]any)["version"] != int64(1) {
			t.Fatalf("stale product put: %v", err)
		}
		stale := lavender
		stale.Version = 7
		if _, err := f.putVariant(boss, stale); servicetest.Code(err) != fault.CodeVersionConflict {
			t.Fatalf("stale variant put: %v", err)
		}
		if _, err := f.putCategory(boss, CategoryInput{ID: "oils", Name: "Oils", Version: 3}); servicetest.Code(err) != fault.CodeVersionConflict {
			t.Fatalf("stale category put: %v", err)
		}
		if n := len(f.audit()); n != 4 {
			t.Fatalf("%d audit entries, want 4 (3 creates, 1 update)", n)
		}
	})
}

func TestShopCatalogueRefusals(t *testing.T) {
	shops(t, func(t *testing.T, f *storefront) {
		f.stock(1)
		variant := func(edit func(*VariantInput)) VariantInput {
			in := lavender
			in.ID, in.SKU = "other", "OTHER"
			edit(&in)
			return in
		}
		for _, tc := range []struct {
			name   string
			err    func() error
			code   string
			fields []string
		}{
			{"client puts a category", func() error {
				_, err := f.putCategory(ana, CategoryInput{ID: "x", Name: "x"})
				return err
			}, fault.CodeForbidden, nil},
			{"anonymous puts a product", func() error {
				_, err := f.putProduct(nobody, ProductInput{ID: "x", Name: "x"})
				return err
			}, fault.CodeUnauthenticated, nil},
			{"desk puts a variant", func() error {
				_, err := f.putVariant(desk, variant(func(*VariantInput) {}))
				return err
			}, fault.CodeForbidden, nil},
			{"client lists inactive products", func() error {
				_, err := f.svc.Products(t.Context(), ana, "", false)
				return err
			}, fault.CodeForbidden, nil},
			{"bad id", func() error {
				_, err := f.putCategory(boss, CategoryInput{ID: "Bad Id", Name: "x"})
				return err
			}, fault.CodeValidationFailed, []string{"id"}},
			{"empty name, negative version", func() error {
				_, err := f.putCategory(boss, CategoryInput{ID: "x", Name: " ", Version: -1})
				return err
			}, fault.CodeValidationFailed, []string{"name", "version"}},
			{"http image, unknown category", func() error {
				_, err := f.putProduct(boss, ProductInput{ID: "x", Name: "x", CategoryID: "nope",
					Images: []ProductImageJSON{{URL: "http://x.example/a.jpg", ContentType: "image/jpeg", SizeBytes: 1, Width: 1, Height: 1}}})
				return err
			}, fault.CodeValidationFailed, []string{"images", "category_id"}},
			{"duplicate SKU", func() error {
				_, err := f.putVariant(boss, variant(func(in *VariantInput) { in.SKU = "LAV-50" }))
				return err
			}, fault.CodeConflict, nil},
			{"unknown product", func() error {
				_, err := f.putVariant(boss, variant(func(in *VariantInput) { in.ProductID = "nope" }))
				return err
			}, fault.CodeValidationFailed, []string{"product_id"}},
			{"VIP above the price, bad tax, negative threshold", func() error {
				_, err := f.putVariant(boss, variant(func(in *VariantInput) {
					in.VIPPriceMinor, in.TaxRateBP, in.LowStockThreshold = in.PriceMinor+1, 10001, -1
				}))
				return err
			}, fault.CodeValidationFailed, []string{"vip_price_minor", "tax_rate_bp", "low_stock_threshold"}},
			{"bad category filter", func() error {
				_, err := f.svc.Products(t.Context(), nobody, "Oils!", true)
				return err
			}, fault.CodeValidationFailed, []string{"category"}},
			{"unknown product page", func() error {
				_, err := f.svc.ProductPage(t.Context(), "nope")
				return err
			}, fault.CodeNotFound, nil},
		} {
			err := tc.err()
			if got := servicetest.Code(err); got != tc.code {
				t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
				continue
			}
			if tc.fields != nil {
				if got := servicetest.Fields(err); !slices.Equal(got, tc.fields) {
					t.Errorf("%s: fields %v, want %v", tc.name, got, tc.fields)
				}
			}
		}
		// An inactive product is absent from the public but listed for admins.
		if _, err := f.putProduct(boss, ProductInput{ID: "lavender", Name: "Lavender oil", Version: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ProductPage(t.Context(), "lavender"); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("inactive product page: %v", err)
		}
		if l, err := f.svc.Products(t.Context(), nobody, "", true); err != nil || len(l) != 0 {
			t.Fatalf("public list with the product inactive: %+v %v", l, err)
		}
		if l, err := f.svc.Products(t.Context(), boss, "", false); err != nil || len(l) != 1 || len(l[0].Variants) != 1 {
			t.Fatalf("admin list: %+v %v", l, err)
		}
	})
}

func TestShopListingAndStockLevels(t *testing.T) {
	shops(t, func(t *testing.T, f *storefront) {
		f.stock(10)
		cats, err := f.svc.Categories(t.Context())
		if err != nil || len(cats) != 1 || cats[0].ID != "oils" {
			t.Fatalf("categories %+v %v", cats, err)
		}
		list, err := f.svc.Products(t.Context(), nobody, "oils", true)
		if err != nil || len(list) != 1 || len(list[0].Variants) != 1 || list[0].Variants[0].SKU != "LAV-50" {
			t.Fatalf("listing %+v %v", list, err)
		}
		if v := ProductView(list[0]); v.Variants[0].Available != nil {
			t.Fatalf("the listing asks no inventory: %+v", v.Variants[0])
		}
		p, err := f.svc.ProductPage(t.Context(), "lavender")
		if err != nil || len(p.Product.Images) != 1 {
			t.Fatalf("product page %+v %v", p, err)
		}
		if v := ProductView(p); v.Variants[0].Available == nil || *v.Variants[0].Available != 10 {
			t.Fatalf("product page stock %+v", v.Variants)
		}

		// Movements: damage beyond what is free is refused; who and why are kept.
		if _, err := f.svc.MoveStock(t.Context(), boss, MoveInput{VariantID: "lavender-50", Kind: "damage", Qty: 11, Reason: "dropped"}); servicetest.Code(err) != fault.CodeOutOfStock {
			t.Fatalf("damage beyond stock: %v", err)
		}
		lvl, err := f.svc.MoveStock(t.Context(), boss, MoveInput{VariantID: "lavender-50", ID: "move-1", Kind: "adjustment", Qty: -3, Reason: "count"})
		if err != nil || lvl.OnHand != 7 || lvl.Available != 7 {
			t.Fatalf("adjustment: %+v %v", lvl, err)
		}
		st, err := f.svc.Stock(t.Context(), boss, "lavender-50")
		if err != nil || st.Level.Available != 7 || len(st.Movements) != 2 || st.Movements[0].ID != "move-1" ||
			st.Movements[0].ActorID != "boss" || st.Movements[0].Reason != "count" {
			t.Fatalf("stock %+v %v", st, err)
		}
		found := false
		for _, a := range f.audit() {
			found = found || (a.Action == "shop.stock.adjustment" && a.Subject == "shop_variant/lavender-50" && a.Reason == "count" &&
				a.ActorRole == "admin" && string(a.Detail) == `{"kind":"adjustment","qty":-3,"reason":"count"}`)
		}
		if !found {
			t.Fatal("no audit entry for the adjustment")
		}
		if f.available() != 7 {
			t.Fatal("the product page does not follow the stock")
		}
		for _, tc := range []struct {
			name string
			by   service.Caller
			in   MoveInput
			code string
		}{
			{"client", ana, MoveInput{VariantID: "lavender-50", Kind: "receipt", Qty: 1, Reason: "x"}, fault.CodeForbidden},
			{"bad kind", boss, MoveInput{VariantID: "lavender-50", Kind: "theft", Qty: 1, Reason: "x"}, fault.CodeValidationFailed},
			{"zero adjustment", boss, MoveInput{VariantID: "lavender-50", Kind: "adjustment", Reason: "x"}, fault.CodeValidationFailed},
			{"no reason", boss, MoveInput{VariantID: "lavender-50", Kind: "receipt", Qty: 1}, fault.CodeValidationFailed},
			{"unknown variant", boss, MoveInput{VariantID: "nope", Kind: "receipt", Qty: 1, Reason: "x"}, fault.CodeNotFound},
		} {
			if _, err := f.svc.MoveStock(t.Context(), tc.by, tc.in); servicetest.Code(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		if _, err := f.svc.Stock(t.Context(), boss, "nope"); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("stock of an unknown variant: %v", err)
		}
	})
}

func TestShopCartCheckout(t *testing.T) {
	shops(t, func(t *testing.T, f *storefront) {
		f.stock(5)
		ctx := t.Context()

		// An anonymous cart: its token opens it; adding beyond the stock is
		// refused; it cannot check out.
		anon, err := f.svc.OpenCart(ctx, nobody)
		if err != nil || !anon.Created || anon.Token == "" || anon.View.Cart.OwnerID != "" || CheckCartID(anon.View.Cart.ID) != nil {
			t.Fatalf("anonymous cart %+v %v", anon, err)
		}
		ref := CartRef{ID: anon.View.Cart.ID, Token: anon.Token}
		v, err := f.svc.SetLine(ctx, nobody, LineInput{Cart: ref, VariantID: "lavender-50", Qty: 2})
		if err != nil || len(v.Lines) != 1 || v.Lines[0].UnitPriceMinor != 4_500_000 || v.TotalMinor != 2*4_500_000+1_710_000 {
			t.Fatalf("add line: %+v %v", v, err)
		}
		if f.available() != 3 {
			t.Fatal("the cart's units are not reserved")
		}
		if _, err := f.svc.SetLine(ctx, nobody, LineInput{Cart: ref, VariantID: "lavender-50", Qty: 9}); servicetest.Code(err) != fault.CodeOutOfStock {
			t.Fatalf("beyond stock: %v", err)
		}
		if _, err := f.svc.Cart(ctx, nobody, CartRef{ID: ref.ID, Token: "wrong"}); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("wrong token: %v", err)
		}
		if _, err := f.svc.Checkout(ctx, nobody, CheckoutInput{Cart: ref, Fulfilment: "pickup"}); servicetest.Code(err) != fault.CodeUnauthenticated {
			t.Fatalf("anonymous checkout: %v", err)
		}

		// A VIP client's cart takes the anonymous cart's lines at VIP prices.
		mine, err := f.svc.OpenCart(ctx, vipAna)
		if err != nil || !mine.Created || mine.Token != "" || mine.View.Cart.OwnerID != "vip-ana" {
			t.Fatalf("client cart %+v %v", mine, err)
		}
		again, err := f.svc.OpenCart(ctx, vipAna)
		if err != nil || again.Created || again.View.Cart.ID != mine.View.Cart.ID {
			t.Fatalf("second OpenCart %+v %v", again, err)
		}
		into := CartRef{ID: mine.View.Cart.ID}
		merged, err := f.svc.Merge(ctx, vipAna, MergeInput{Into: into, FromCartID: ref.ID, FromToken: ref.Token})
		if err != nil || len(merged.Lines) != 1 || merged.Lines[0].Qty != 2 || merged.Lines[0].UnitPriceMinor != 4_000_000 {
			t.Fatalf("merge (VIP prices): %+v %v", merged, err)
		}
		if v, err := f.svc.Cart(ctx, nobody, ref); err != nil || v.Cart.State != persistence.CartMerged {
			t.Fatalf("anonymous cart after merge: %+v %v", v, err)
		}
		if f.available() != 3 {
			t.Fatal("merging must move the reservation, not add one")
		}

		// Checkout consumes the reservations into an order, once.
		o, err := f.svc.Checkout(ctx, vipAna, CheckoutInput{Cart: into, OrderID: "order-1", Fulfilment: "pickup"})
		if err != nil || o.ID != "order-1" || o.ClientID != "vip-ana" || o.Status != persistence.OrderPendingPayment ||
			len(o.Lines) != 1 || o.Lines[0].UnitPriceMinor != 4_000_000 || o.TotalMinor != 8_000_000+1_520_000 {
			t.Fatalf("checkout: %+v %v", o, err)
		}
		var res persistence.Reservation
		var live []persistence.Reservation
		var stock persistence.Stock
		if err := f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
			if res, err = tx.ReservationGet(ctx, o.Lines[0].ReservationID); err != nil {
				return err
			}
			if live, err = tx.ReservationListByCart(ctx, into.ID); err != nil {
				return err
			}
			stock, err = tx.StockGet(ctx, "lavender-50")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if res.State != persistence.ReservationConsumed || res.OrderID != "order-1" || len(live) != 0 || stock.OnHand != 3 || stock.Reserved != 0 {
			t.Fatalf("after checkout: reservation %+v, live %+v, stock %+v", res, live, stock)
		}
		if f.available() != 3 {
			t.Fatal("a sale must not change what is available")
		}
		if again, err := f.svc.Checkout(ctx, vipAna, CheckoutInput{Cart: into, OrderID: "order-1", Fulfilment: "pickup"}); err != nil || again.ID != "order-1" {
			t.Fatalf("retried checkout: %+v %v", again, err)
		}
		if _, err := f.svc.Checkout(ctx, vipAna, CheckoutInput{Cart: into, OrderID: "order-2", Fulfilment: "pickup"}); servicetest.Code(err) != fault.CodeCartClosed {
			t.Fatalf("second checkout: %v", err)
		}
		if _, err := f.svc.SetLine(ctx, vipAna, LineInput{Cart: into, VariantID: "lavender-50", Qty: 1}); servicetest.Code(err) != fault.CodeCartClosed {
			t.Fatalf("line on a checked-out cart: %v", err)
		}

		// A regular client pays regular prices; removing a line frees its units.
		bobs, err := f.svc.OpenCart(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		line := LineInput{Cart: CartRef{ID: bobs.View.Cart.ID}, VariantID: "lavender-50", Qty: 1}
		if v, err := f.svc.SetLine(ctx, bob, line); err != nil || v.Lines[0].UnitPriceMinor != 4_500_000 {
			t.Fatalf("regular price: %+v %v", v, err)
		}
		if v, err := f.svc.RemoveLine(ctx, bob, line); err != nil || len(v.Lines) != 0 || f.available() != 3 {
			t.Fatalf("remove line: %+v %v", v, err)
		}
		// The same rules from any caller: another client's cart is absent.
		if _, err := f.svc.Cart(ctx, ana, CartRef{ID: bobs.View.Cart.ID}); servicetest.Code(err) != fault.CodeNotFound {
			t.Fatalf("another client's cart: %v", err)
		}
	})
}

func TestShopCartRefusals(t *testing.T) {
	shops(t, func(t *testing.T, f *storefront) {
		f.stock(5)
		ctx := t.Context()
		bobs, err := f.svc.OpenCart(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		ref := CartRef{ID: bobs.View.Cart.ID}
		empty, err := f.svc.OpenCart(ctx, nobody)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			err    func() error
			code   string
			fields []string
		}{
			{"malformed cart id", func() error {
				_, err := f.svc.Cart(ctx, bob, CartRef{ID: "../x"})
				return err
			}, fault.CodeNotFound, nil},
			{"unknown cart", func() error {
				_, err := f.svc.Cart(ctx, bob, CartRef{ID: "0123456789abcdef0123456789abcdef"})
				return err
			}, fault.CodeNotFound, nil},
			{"qty 0", func() error {
				_, err := f.svc.SetLine(ctx, bob, LineInput{Cart: ref, VariantID: "lavender-50"})
				return err
			}, fault.CodeValidationFailed, []string{"qty"}},
			{"qty 100", func() error {
				_, err := f.svc.SetLine(ctx, bob, LineInput{Cart: ref, VariantID: "lavender-50", Qty: 100})
				return err
			}, fault.CodeValidationFailed, []string{"qty"}},
			{"bad variant id", func() error {
				_, err := f.svc.SetLine(ctx, bob, LineInput{Cart: ref, VariantID: "Nope!", Qty: 1})
				return err
			}, fault.CodeValidationFailed, []string{"variant"}},
			{"variant not on sale", func() error {
				_, err := f.svc.SetLine(ctx, bob, LineInput{Cart: ref, VariantID: "nope", Qty: 1})
				return err
			}, fault.CodeValidationFailed, []string{"variant"}},
			{"kiosk merges", func() error {
				_, err := f.svc.Merge(ctx, kiosk, MergeInput{Into: ref, FromCartID: empty.View.Cart.ID, FromToken: empty.Token})
				return err
			}, fault.CodeForbidden, nil},
			{"merge without a token", func() error {
				_, err := f.svc.Merge(ctx, bob, MergeInput{Into: ref, FromCartID: empty.View.Cart.ID})
				return err
			}, fault.CodeValidationFailed, []string{"from_cart_id"}},
			{"merge into an anonymous cart", func() error {
				_, err := f.svc.Merge(ctx, bob, MergeInput{Into: CartRef{ID: empty.View.Cart.ID, Token: empty.Token}, FromCartID: empty.View.Cart.ID, FromToken: empty.Token})
				return err
			}, fault.CodeConflict, nil},
			{"merge with a wrong token", func() error {
				_, err := f.svc.Merge(ctx, bob, MergeInput{Into: ref, FromCartID: empty.View.Cart.ID, FromToken: "wrong"})
				return err
			}, fault.CodeNotFound, nil},
			{"negative credit", func() error {
				_, err := f.svc.Checkout(ctx, bob, CheckoutInput{Cart: ref, Fulfilment: "pickup", CreditMinor: -1})
				return err
			}, fault.CodeValidationFailed, []string{"credit_minor"}},
			{"bad fulfilment", func() error {
				_, err := f.svc.Checkout(ctx, bob, CheckoutInput{Cart: ref, Fulfilment: "drone"})
				return err
			}, fault.CodeValidationFailed, []string{"fulfilment"}},
			{"shipping without an address", func() error {
				_, err := f.svc.Checkout(ctx, bob, CheckoutInput{Cart: ref, Fulfilment: "shipping"})
				return err
			}, fault.CodeValidationFailed, nil},
			{"empty cart", func() error {
				_, err := f.svc.Checkout(ctx, bob, CheckoutInput{Cart: ref, Fulfilment: "pickup"})
				return err
			}, fault.CodeConflict, nil},
		} {
			err := tc.err()
			if got := servicetest.Code(err); got != tc.code {
				t.Errorf("%s: code %q (%v), want %q", tc.name, got, err, tc.code)
				continue
			}
			if tc.fields != nil {
				if got := servicetest.Fields(err); !slices.Equal(got, tc.fields) {
					t.Errorf("%s: fields %v, want %v", tc.name, got, tc.fields)
				}
			}
		}
		// Spending more credit than the client has is refused, and the
		// cart stays open.
		if _, err := f.svc.SetLine(ctx, bob, LineInput{Cart: ref, VariantID: "lavender-50", Qty: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Checkout(ctx, bob, CheckoutInput{Cart: ref, Fulfilment: "pickup", CreditMinor: 1}); servicetest.Code(err) != fault.CodeInsufficientCredit {
			t.Fatalf("credit beyond the balance: %v", err)
		}
		if v, err := f.svc.Cart(ctx, bob, ref); err != nil || v.Cart.State != persistence.CartOpen {
			t.Fatalf("cart after a refused checkout: %+v %v", v, err)
		}
	})
}

// Without actors wired, the cart and stock use cases answer unavailable.
func TestShopWithoutActors(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	svc := New(Deps{Store: st})
	ctx := t.Context()
	if _, err := svc.OpenCart(ctx, nobody); servicetest.Code(err) != fault.CodeUnavailable {
		t.Fatalf("open cart: %v", err)
	}
	if _, err := svc.Checkout(ctx, ana, CheckoutInput{Cart: CartRef{ID: "0123456789abcdef0123456789abcdef"}, Fulfilment: "pickup"}); servicetest.Code(err) != fault.CodeUnavailable {
		t.Fatalf("checkout: %v", err)
	}
	if _, err := svc.MoveStock(ctx, boss, MoveInput{VariantID: "x", Kind: "receipt", Qty: 1, Reason: "x"}); servicetest.Code(err) != fault.CodeUnavailable {
		t.Fatalf("move stock: %v", err)
	}
	if _, err := svc.Stock(ctx, boss, "x"); servicetest.Code(err) != fault.CodeUnavailable {
		t.Fatalf("stock: %v", err)
	}
}
