package shopwire

import (
	"testing"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/route/routetest"
	"github.com/spa-engine/spa/persistence"
)

// TestCodecsPlaceAndCarryShopRequests: each router's codec places its
// actor by the kind's placement key and carries a request and its reply
// there and back.
func TestCodecsPlaceAndCarryShopRequests(t *testing.T) {
	for _, tc := range []struct {
		name    string
		codec   route.Codec
		id, key string
		msg     any
		reply   any
		refusal error
	}{
		{"inventory", InventoryCodec(), "oil", "inventory/oil", &inventory.Reserve{ReservationID: "r1", Qty: 2},
			&inventory.ReserveReply{Err: inventory.ErrOutOfStock}, inventory.ErrOutOfStock},
		{"cart", CartCodec(), "c1", "cart/c1", &cart.SetLine{VariantID: "oil", Qty: 2},
			&cart.View{Err: cart.ErrClosed}, cart.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routetest.Carries(t, tc.codec, tc.id, tc.key, tc.msg, tc.reply, tc.refusal, func(back any) error {
				switch r := back.(type) {
				case *inventory.ReserveReply:
					return r.Err
				case *cart.View:
					return r.Err
				}
				return nil
			})
		})
	}
}

// TestOnlyRepeatableRequestsCarryAnIdempotencyKey: a forwarded try that
// times out is resent only with a key (forward.Request), so requests that
// must not be applied twice have none and the others do.
func TestOnlyRepeatableRequestsCarryAnIdempotencyKey(t *testing.T) {
	inv, carts := InventoryCodec().IdempotencyKey, CartCodec().IdempotencyKey
	for _, tc := range []struct {
		name string
		key  func(any) string
		msg  any
		want string
	}{
		{"inventory reserve", inv, &inventory.Reserve{ReservationID: "r", Qty: 1}, "reserve/r/1"},
		{"inventory release", inv, &inventory.Release{ReservationID: "r"}, "release/r"},
		{"inventory consumed", inv, &inventory.Consumed{ReservationIDs: []string{"r", "s"}}, "consumed/r,s"},
		{"inventory move", inv, &inventory.Move{Movement: persistence.StockMovement{ID: "m"}}, "move/m"},
		{"inventory level", inv, &inventory.LevelQuery{}, "level"},
		{"cart checkout", carts, &cart.Checkout{OrderID: "o"}, "checkout/o"},
		{"cart get", carts, &cart.Get{}, "get"},
		{"cart set line", carts, &cart.SetLine{VariantID: "v", Qty: 2}, "setline/v/2"},
		{"cart create", carts, &cart.Create{}, ""},
		{"cart surrender", carts, &cart.Surrender{IntoCartID: "c"}, ""},
	} {
		if got := tc.key(tc.msg); got != tc.want {
			t.Errorf("%s: keyed %q, want %q", tc.name, got, tc.want)
		}
	}
}
