package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

var shopTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"ShopCatalogue", testShopCatalogue},
	{"ShopStockMoves", testShopStockMoves},
	{"ShopReservations", testShopReservations},
	{"ShopConsumeRacesRelease", testShopConsumeRacesRelease},
	{"ShopConsumeAfterRegrant", testShopConsumeAfterRegrant},
	{"ShopVIP", testShopVIP},
	{"ShopCarts", testShopCarts},
}

var shopImage = persistence.ProductImage{URL: "https://cdn.example.com/oil.jpg", ContentType: "image/jpeg",
	SizeBytes: 120_000, Width: 800, Height: 800}

// shopVariant stores a product and one variant with onHand units.
func shopVariant(t *testing.T, s persistence.Store, id string, onHand int64) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.ProductPut(ctx, persistence.Product{ID: "p-" + id, Name: "Oil", Active: true}); err != nil {
			return err
		}
		if _, err := tx.VariantPut(ctx, persistence.Variant{ID: id, ProductID: "p-" + id, SKU: "SKU-" + id,
			PriceMinor: 5000000, TaxRateBP: 1900, Active: true}); err != nil {
			return err
		}
		if onHand == 0 {
			return nil
		}
		_, err := tx.StockMove(ctx, persistence.StockMovement{ID: newID(), VariantID: id, Kind: persistence.MoveReceipt,
			Qty: onHand, ActorID: "admin", Reason: "initial", At: base})
		return err
	})
}

// testShopCatalogue: categories, products and variants round-trip, with
// optimistic versions, unique SKUs and validated image metadata.
func testShopCatalogue(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	ctx := t.Context()
	cat := persistence.ShopCategory{ID: "oils", Name: "Oils", Active: true, UpdatedAt: base}
	p := persistence.Product{ID: "lavender", Name: "Lavender oil", Description: "Calming", CategoryID: "oils",
		Images: []persistence.ProductImage{shopImage}, Active: true, UpdatedAt: base}
	v := persistence.Variant{ID: "lavender-50", ProductID: "lavender", SKU: "LAV-50",
		Attributes: map[string]string{"size": "50ml"}, PriceMinor: 4500000, VIPPriceMinor: 4000000,
		TaxRateBP: 1900, LowStockThreshold: 3, Active: true, UpdatedAt: base}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		if cat, err = tx.ShopCategoryPut(ctx, cat); err != nil {
			return err
		}
		if p, err = tx.ProductPut(ctx, p); err != nil {
			return err
		}
		v, err = tx.VariantPut(ctx, v)
		return err
	})
	wantEqual(t, "versions", []int64{cat.Version, p.Version, v.Version}, []int64{1, 1, 1})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		gotP, err := tx.ProductGet(ctx, "lavender")
		if err != nil {
			return err
		}
		wantEqual(t, "product", gotP, persistence.Product{ID: "lavender", Name: "Lavender oil", Description: "Calming",
			CategoryID: "oils", Images: []persistence.ProductImage{shopImage}, Active: true, Version: 1, UpdatedAt: ct(base)})
		gotV, err := tx.VariantGet(ctx, "lavender-50")
		if err != nil {
			return err
		}
		want := v
		want.UpdatedAt = ct(base)
		wantEqual(t, "variant", gotV, want)
		if gotV.PriceFor(true) != 4000000 || gotV.PriceFor(false) != 4500000 {
			t.Fatalf("prices %d/%d", gotV.PriceFor(true), gotV.PriceFor(false))
		}
		list, err := tx.ProductList(ctx, "oils", true)
		if err != nil || len(list) != 1 {
			t.Fatalf("product list %v %v", list, err)
		}
		if list, err = tx.ProductList(ctx, "creams", false); err != nil || len(list) != 0 {
			t.Fatalf("other category %v %v", list, err)
		}
		st, err := tx.StockGet(ctx, "lavender-50")
		wantEqual(t, "new stock", []int64{st.OnHand, st.Reserved}, []int64{0, 0})
		return err
	})
	// A stale version, a reused SKU and an unknown product are refused.
	wantErr(t, "stale product", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		p.Version = 5
		_, err := tx.ProductPut(ctx, p)
		return err
	}), persistence.ErrConflict)
	wantErr(t, "reused SKU", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.VariantPut(ctx, persistence.Variant{ID: "other", ProductID: "lavender", SKU: "LAV-50", Active: true})
		return err
	}), persistence.ErrConflict)
	wantErr(t, "unknown product", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.VariantPut(ctx, persistence.Variant{ID: "x", ProductID: "nope", SKU: "X"})
		return err
	}), persistence.ErrNotFound)
	for name, im := range map[string]persistence.ProductImage{
		"http":     {URL: "http://cdn.example.com/a.jpg", ContentType: "image/jpeg", SizeBytes: 1, Width: 1, Height: 1},
		"gif":      {URL: "https://cdn.example.com/a.gif", ContentType: "image/gif", SizeBytes: 1, Width: 1, Height: 1},
		"too big":  {URL: "https://cdn.example.com/a.jpg", ContentType: "image/jpeg", SizeBytes: persistence.MaxImageBytes + 1, Width: 1, Height: 1},
		"too wide": {URL: "https://cdn.example.com/a.jpg", ContentType: "image/png", SizeBytes: 1, Width: 6001, Height: 1},
	} {
		_, err := persistence.NormalizeProduct(persistence.Product{ID: "x", Name: "x", Images: []persistence.ProductImage{im}})
		wantErr(t, "image "+name, err, persistence.ErrInvalid)
	}
	_, err := persistence.NormalizeVariant(persistence.Variant{ID: "x", ProductID: "p", SKU: "S", PriceMinor: 10, VIPPriceMinor: 20})
	wantErr(t, "VIP above regular", err, persistence.ErrInvalid)
	_ = ctx
}

// testShopStockMoves: receipts, damage and adjustments change on hand and
// are logged; on hand never goes negative.
func testShopStockMoves(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	shopVariant(t, s, "v1", 10)
	move := func(kind persistence.MovementKind, qty int64) (persistence.Stock, error) {
		var st persistence.Stock
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			st, err = tx.StockMove(ctx, persistence.StockMovement{ID: newID(), VariantID: "v1", Kind: kind, Qty: qty,
				ActorID: "admin", Reason: "count", At: base})
			return err
		})
		return st, err
	}
	if st, err := move(persistence.MoveDamage, 3); err != nil || st.OnHand != 7 {
		t.Fatalf("damage: %+v %v", st, err)
	}
	if st, err := move(persistence.MoveAdjustment, -2); err != nil || st.OnHand != 5 {
		t.Fatalf("adjustment: %+v %v", st, err)
	}
	_, err := move(persistence.MoveDamage, 6)
	wantErr(t, "damage beyond on hand", err, persistence.ErrConflict)
	_, err = move(persistence.MoveSale, 1)
	wantErr(t, "sale as a stock move", err, persistence.ErrInvalid)
	_, err = move(persistence.MoveReceipt, 0)
	wantErr(t, "empty receipt", err, persistence.ErrInvalid)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		ms, err := tx.StockMovementList(ctx, "v1", 10)
		if err != nil {
			return err
		}
		var kinds []persistence.MovementKind
		var qty []int64
		for _, m := range ms {
			kinds, qty = append(kinds, m.Kind), append(qty, m.Qty)
		}
		wantEqual(t, "movements", kinds, []persistence.MovementKind{persistence.MoveAdjustment, persistence.MoveDamage, persistence.MoveReceipt})
		wantEqual(t, "quantities", qty, []int64{-2, 3, 10})
		return nil
	})
}

func reservation(id, cart, variant string, qty int64, expires time.Time) persistence.Reservation {
	return persistence.Reservation{ID: id, CartID: cart, VariantID: variant, Qty: qty, ExpiresAt: expires}
}

// testShopReservations: a reservation is refused by the database itself
// when the units held at now would exceed on hand; an expired live
// reservation holds nothing; release and consume act only on live ones.
func testShopReservations(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	shopVariant(t, s, "v1", 5)
	later := base.Add(10 * time.Minute)
	put := func(r persistence.Reservation, now time.Time) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.ReservationPut(ctx, r, "cart", now) })
	}
	if err := put(reservation("r1", "c1", "v1", 3, later), base); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "beyond stock", put(reservation("r2", "c2", "v1", 3, later), base), persistence.ErrConflict)
	if err := put(reservation("r2", "c2", "v1", 2, later), base); err != nil {
		t.Fatal(err)
	}
	// Resizing r1 down frees a unit; resizing up beyond stock is refused.
	if err := put(reservation("r1", "c1", "v1", 2, later), base); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "grow beyond stock", put(reservation("r1", "c1", "v1", 4, later), base), persistence.ErrConflict)
	// After r1 and r2 expire (not yet released) their units are free again.
	if err := put(reservation("r3", "c3", "v1", 5, later.Add(time.Hour)), later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		st, _ := tx.StockGet(ctx, "v1")
		wantEqual(t, "reserved counts unreleased live rows", []int64{st.OnHand, st.Reserved}, []int64{5, 9})
		ok, err := tx.ReservationRelease(ctx, "r1", "cart", "expired", later)
		if err != nil || !ok {
			t.Fatalf("release r1: %v %v", ok, err)
		}
		if ok, err = tx.ReservationRelease(ctx, "r1", "cart", "expired", later); err != nil || ok {
			t.Fatalf("second release r1: %v %v", ok, err)
		}
		// An expired reservation cannot be consumed.
		_, err = tx.ReservationConsume(ctx, "r2", "o1", "client", later)
		wantErr(t, "consume expired", err, persistence.ErrConflict)
		r, err := tx.ReservationConsume(ctx, "r3", "o1", "client", later)
		if err != nil || r.State != persistence.ReservationConsumed || r.OrderID != "o1" {
			t.Fatalf("consume r3: %+v %v", r, err)
		}
		_, err = tx.ReservationConsume(ctx, "r3", "o2", "client", later)
		wantErr(t, "consume twice", err, persistence.ErrConflict)
		if ok, err = tx.ReservationRelease(ctx, "r3", "cart", "expired", later.Add(2*time.Hour)); err != nil || ok {
			t.Fatalf("release consumed: %v %v", ok, err)
		}
		st, _ = tx.StockGet(ctx, "v1")
		wantEqual(t, "after sale", []int64{st.OnHand, st.Reserved}, []int64{0, 2})
		live, err := tx.ReservationList(ctx, "v1")
		if err != nil || len(live) != 1 || live[0].ID != "r2" {
			t.Fatalf("live reservations %+v %v", live, err)
		}
		byCart, err := tx.ReservationListByCart(ctx, "c2")
		if err != nil || len(byCart) != 1 {
			t.Fatalf("cart reservations %+v %v", byCart, err)
		}
		return nil
	})
	wantErr(t, "resize consumed", put(reservation("r3", "c3", "v1", 1, later.Add(time.Hour)), later), persistence.ErrConflict)
}

// testShopConsumeRacesRelease: checkout consuming a reservation and the
// inventory actor releasing it at its expiry, concurrently, many times:
// exactly one wins each time, and the counters agree with the winner.
func testShopConsumeRacesRelease(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const n = 20
	shopVariant(t, s, "v1", n)
	expires := base.Add(time.Minute)
	for i := range n {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.ReservationPut(ctx, reservation(newID(), "c", "v1", 1, expires), "cart", base)
		})
		_ = i
	}
	var live []persistence.Reservation
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		live, err = tx.ReservationList(ctx, "v1")
		return err
	})
	sold, released := 0, 0
	for _, r := range live {
		var wg sync.WaitGroup
		var consumeErr, releaseErr error
		var didRelease bool
		wg.Add(2)
		go func() {
			defer wg.Done()
			consumeErr = s.InTx(t.Context(), func(tx persistence.Tx) error {
				_, err := tx.ReservationConsume(t.Context(), r.ID, "o-"+r.ID, "client", expires.Add(-time.Second))
				return err
			})
		}()
		go func() {
			defer wg.Done()
			releaseErr = s.InTx(t.Context(), func(tx persistence.Tx) (err error) {
				didRelease, err = tx.ReservationRelease(t.Context(), r.ID, "inventory", "expired", expires)
				return err
			})
		}()
		wg.Wait()
		if releaseErr != nil || (consumeErr != nil && !errors.Is(consumeErr, persistence.ErrConflict)) {
			t.Fatalf("race: consume %v, release %v", consumeErr, releaseErr)
		}
		if (consumeErr == nil) == didRelease {
			t.Fatalf("reservation %s: consumed=%v released=%v; exactly one must win", r.ID, consumeErr == nil, didRelease)
		}
		if didRelease {
			released++
		} else {
			sold++
		}
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		st, err := tx.StockGet(ctx, "v1")
		wantEqual(t, "counters", []int64{st.OnHand, st.Reserved}, []int64{int64(n - sold), 0})
		return err
	})
	if sold+released != n {
		t.Fatalf("sold %d + released %d != %d", sold, released, n)
	}
}

// testShopConsumeAfterRegrant: the inventory actor, seeing a reservation
// expired, gave its units to another cart; a checkout whose clock (or
// transaction start) still saw it unexpired may not consume it then, or
// the variant would be oversold.
func testShopConsumeAfterRegrant(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	shopVariant(t, s, "v1", 3)
	expires := base.Add(time.Minute)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.ReservationPut(ctx, reservation("r1", "c1", "v1", 3, expires), "cart", base)
	})
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.ReservationPut(ctx, reservation("r2", "c2", "v1", 3, expires.Add(time.Hour)), "cart", expires)
	})
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ReservationConsume(ctx, "r1", "o1", "client", expires.Add(-time.Second))
		return err
	})
	wantErr(t, "consume a reservation whose units went to another cart", err, persistence.ErrConflict)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		st, err := tx.StockGet(ctx, "v1")
		wantEqual(t, "counters", []int64{st.OnHand, st.Reserved}, []int64{3, 6})
		return err
	})
}

// testShopCarts: carts round-trip with versions; an owner's open cart is
// found.
func testShopCarts(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	c := persistence.Cart{ID: "c1", OwnerID: "client-1", State: persistence.CartOpen, ExpiresAt: base.Add(time.Hour),
		CreatedAt: base, UpdatedAt: base}
	anon := persistence.Cart{ID: "c2", TokenHash: []byte{1, 2, 3}, State: persistence.CartOpen, ExpiresAt: base,
		CreatedAt: base, UpdatedAt: base}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		if c, err = tx.CartPut(ctx, c); err != nil {
			return err
		}
		if anon, err = tx.CartPut(ctx, anon); err != nil {
			return err
		}
		got, err := tx.CartOpenByOwner(ctx, "client-1")
		wantEqual(t, "open cart", got, c)
		return err
	})
	wantEqual(t, "stored anonymous cart", anon, persistence.Cart{ID: "c2", TokenHash: []byte{1, 2, 3},
		State: persistence.CartOpen, ExpiresAt: ct(base), Version: 1, CreatedAt: ct(base), UpdatedAt: ct(base)})
	c.State, c.OrderID = persistence.CartCheckedOut, "o1"
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		c, err = tx.CartPut(ctx, c)
		return err
	})
	if c.Version != 2 || c.OrderID != "o1" {
		t.Fatalf("updated cart %+v", c)
	}
	wantErr(t, "stale cart", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		c.Version = 1
		_, err := tx.CartPut(ctx, c)
		return err
	}), persistence.ErrConflict)
	wantErr(t, "no open cart", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.CartOpenByOwner(ctx, "client-1")
		return err
	}), persistence.ErrNotFound)
	// A new reservation is for an open cart (or one the store does not
	// hold): the checked-out c1 takes none.
	shopVariant(t, s, "v1", 5)
	put := func(id, cart string) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.ReservationPut(ctx, reservation(id, cart, "v1", 1, base.Add(time.Hour)), "cart", base)
		})
	}
	wantErr(t, "reservation of a checked-out cart", put("r1", "c1"), persistence.ErrConflict)
	for _, cart := range []string{"c2", "not-stored"} {
		if err := put("r-"+cart, cart); err != nil {
			t.Fatalf("reservation of cart %s: %v", cart, err)
		}
	}
}

// testShopVIP: a client marked VIP is one until unmarked; marking twice
// is harmless.
func testShopVIP(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	is := func(id string) bool {
		var vip bool
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			vip, err = tx.ShopVIPIs(ctx, id)
			return err
		})
		return vip
	}
	set := func(id string, vip bool) {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.ShopVIPSet(ctx, id, vip, "admin", base) })
	}
	set("client-1", true)
	set("client-1", true)
	wantEqual(t, "vip", []bool{is("client-1"), is("client-2")}, []bool{true, false})
	set("client-1", false)
	set("client-2", false)
	wantEqual(t, "after unmark", []bool{is("client-1"), is("client-2")}, []bool{false, false})
	wantErr(t, "no client", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.ShopVIPSet(ctx, "", true, "admin", base)
	}), persistence.ErrInvalid)
}
