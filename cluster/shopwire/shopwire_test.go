package shopwire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

var (
	t0   = time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
	ship = persistence.ShippingAddress{Recipient: "Ana", Phone: "+573001234567", Line1: "Calle 10 # 5-51", Line2: "Apto 3",
		DepartmentCode: "11", MunicipalityCode: "11001", PostalCode: "110111", Notes: "ring twice"}
	stored = persistence.Cart{ID: "c1", OwnerID: "maria", TokenHash: []byte{1, 2, 3}, State: persistence.CartOpen, OrderID: "o1",
		MergedInto: "c0", ExpiresAt: t0.Add(time.Hour), Version: 4, CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0}
	ord = persistence.Order{ID: "o1", ClientID: "maria", CartID: "c1", Status: persistence.OrderPendingPayment,
		Lines: []persistence.OrderLine{
			{ID: "l1", VariantID: "lav-50", SKU: "LAV-50", Name: "Lavender 50ml", Qty: 2, UnitPriceMinor: 5_000_000, TaxRateBps: 1900,
				ReservationID: "r1", ReturnedQty: 1},
			{ID: "l2", VariantID: "ros-10", SKU: "ROS-10", Name: "Rose", Qty: 1, UnitPriceMinor: 10},
		},
		SubtotalMinor: 10_000_010, TaxMinor: 1_900_000, CreditAppliedMinor: 300, TotalMinor: 11_899_710,
		Fulfilment: persistence.FulfilmentShipping, Shipping: ship, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute),
		ExpiresAt: t0.Add(24 * time.Hour), Version: 3}
	lvl = inventory.Level{VariantID: "lav-50", OnHand: 9, Held: 4, Available: 5, Threshold: 2}
)

// viaBytes sends m through its protobuf bytes, as forward does.
func viaBytes[M proto.Message](t *testing.T, m M, into M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func TestInventoryRequestsRoundTrip(t *testing.T) {
	for _, msg := range []any{
		&inventory.Reserve{ReservationID: "r1", CartID: "c1", Qty: 3, TTL: 15 * time.Minute, Resize: true, ActorID: "cart"},
		&inventory.Reserve{ReservationID: "r1", CartID: "c1", Qty: 1, TTL: time.Minute},
		&inventory.Release{ReservationID: "r1", Reason: "line removed", ActorID: "cart"},
		&inventory.Consumed{ReservationIDs: []string{"r1", "r2"}},
		&inventory.Move{Movement: persistence.StockMovement{ID: "m1", VariantID: "lav-50", Kind: persistence.MoveReceipt, Qty: 4,
			ActorID: "owner", Reason: "delivery", Reference: "po-7", At: t0}},
		&inventory.Move{Movement: persistence.StockMovement{ID: "m2", VariantID: "lav-50", Kind: persistence.MoveAdjustment, Qty: -2, At: t0},
			Audit: &persistence.AuditEntry{ID: "a1", At: t0, ActorID: "owner", ActorRole: "admin", Action: "shop.stock.move",
				Subject: "shop_variant/lav-50", RequestID: "req-1", Reason: "count", Detail: []byte(`{"qty":-2}`)}},
		&inventory.LevelQuery{},
		&route.Invalidate{},
	} {
		t.Run(fmt.Sprintf("%T", msg), func(t *testing.T) {
			req, err := EncodeInventory("lav-50", msg)
			if err != nil {
				t.Fatal(err)
			}
			id, got, err := DecodeInventory(viaBytes(t, req, &messages.InventoryRequest{}))
			if err != nil || id != "lav-50" {
				t.Fatalf("decode: %q %v", id, err)
			}
			if !reflect.DeepEqual(got, msg) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, msg)
			}
		})
	}
}

func TestInventoryRepliesRoundTrip(t *testing.T) {
	withErr := lvl
	withErr.Err = fmt.Errorf("%w: lav-50", inventory.ErrUnknownVariant)
	for _, reply := range []any{
		&inventory.ReserveReply{ReservationID: "r1", ExpiresAt: t0, Available: 3},
		&inventory.ReserveReply{Available: 1, Err: fmt.Errorf("%w: want 2", inventory.ErrOutOfStock)},
		&inventory.ReserveReply{Err: inventory.ErrExpired},
		&lvl,
		&withErr,
		&inventory.MoveReply{Level: lvl},
		&inventory.MoveReply{Level: lvl, Err: fmt.Errorf("%w: %w", inventory.ErrRetry, persistence.ErrConflict)},
		&inventory.Reply{},
		&inventory.Reply{Err: fmt.Errorf("%w: no id", inventory.ErrInvalid)},
		&route.Invalidated{},
	} {
		t.Run(fmt.Sprintf("%T", reply), func(t *testing.T) {
			enc, err := EncodeInventoryReply(reply)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeInventoryReply(viaBytes(t, enc, &messages.InventoryReply{}))
			if err != nil {
				t.Fatal(err)
			}
			checkErrs(t, reply, got)
			if !reflect.DeepEqual(got, reply) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, reply)
			}
		})
	}
}

func TestCartRequestsRoundTrip(t *testing.T) {
	who := cart.Auth{Subject: "maria", Token: "secret-token"}
	for _, msg := range []any{
		&cart.Create{OwnerID: "maria", VIP: true},
		&cart.Create{TokenHash: []byte{9, 8, 7}},
		&cart.Get{Auth: who, VIP: true},
		&cart.SetLine{Auth: who, VariantID: "lav-50", Qty: 2, VIP: true},
		&cart.SetLine{Auth: cart.Auth{Token: "t"}, VariantID: "lav-50"},
		&cart.Surrender{Auth: who, IntoCartID: "c2"},
		&cart.Checkout{Auth: who, OrderID: "o1", Fulfilment: persistence.FulfilmentShipping, Shipping: ship, CreditMinor: 300, VIP: true},
		&cart.Checkout{Auth: who, OrderID: "o1", Fulfilment: persistence.FulfilmentPickup},
	} {
		t.Run(fmt.Sprintf("%T", msg), func(t *testing.T) {
			req, err := EncodeCart("c1", msg)
			if err != nil {
				t.Fatal(err)
			}
			id, got, err := DecodeCart(viaBytes(t, req, &messages.CartRequest{}))
			if err != nil || id != "c1" {
				t.Fatalf("decode: %q %v", id, err)
			}
			if !reflect.DeepEqual(got, msg) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, msg)
			}
		})
	}
}

func TestCartRepliesRoundTrip(t *testing.T) {
	lines := []cart.Line{
		{VariantID: "lav-50", ProductID: "lav", SKU: "LAV-50", Name: "Lavender", Qty: 2, UnitPriceMinor: 5_000_000, TaxRateBP: 1900,
			ReservationID: "r1", ExpiresAt: t0},
		{VariantID: "ros-10", ProductID: "ros", SKU: "ROS-10", Name: "Rose", Qty: 1, UnitPriceMinor: 10},
	}
	for _, reply := range []any{
		&cart.View{Cart: stored, Lines: lines, SubtotalMinor: 10_000_010, TaxMinor: 1_900_000, TotalMinor: 11_900_010},
		&cart.View{Cart: persistence.Cart{ID: "c2", State: persistence.CartOpen}},
		&cart.View{Err: cart.ErrNotFound},
		&cart.View{Cart: stored, Err: fmt.Errorf("%w: at most 2 lines", cart.ErrInvalid)},
		&cart.CheckoutReply{Order: ord},
		&cart.CheckoutReply{Err: fmt.Errorf("%w: %w", cart.ErrInvalid, persistence.ErrInsufficientCredit)},
		&cart.CheckoutReply{Err: fmt.Errorf("%w: 1 line(s) could not be held", cart.ErrReservationLapsed)},
		&cart.SurrenderReply{Lines: map[string]int64{"lav-50": 2, "ros-10": 1}},
		&cart.SurrenderReply{Err: cart.ErrClosed},
	} {
		t.Run(fmt.Sprintf("%T", reply), func(t *testing.T) {
			enc, err := EncodeCartReply(reply)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeCartReply(viaBytes(t, enc, &messages.CartReply{}))
			if err != nil {
				t.Fatal(err)
			}
			checkErrs(t, reply, got)
			if !reflect.DeepEqual(got, reply) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, reply)
			}
		})
	}
}

// TestErrorsKeepTheirSentinels: every sentinel survives the trip, alone
// and wrapped with another (a cart error around a store error), and the
// text is kept.
func TestErrorsKeepTheirSentinels(t *testing.T) {
	for _, s := range sentinels {
		err := fmt.Errorf("context: %w", s.Err)
		got := decodeErr(viaBytes(t, encodeErr(err), &messages.ShopError{}))
		if !errors.Is(got, s.Err) || got.Error() != err.Error() {
			t.Errorf("%v decoded as %v", err, got)
		}
		for _, other := range sentinels {
			if other.Err != s.Err && errors.Is(got, other.Err) {
				t.Errorf("%v decoded also matches %v", err, other.Err)
			}
		}
	}
	both := fmt.Errorf("%w: %w", cart.ErrInvalid, persistence.ErrInsufficientCredit)
	got := decodeErr(encodeErr(both))
	if !errors.Is(got, cart.ErrInvalid) || !errors.Is(got, persistence.ErrInsufficientCredit) {
		t.Errorf("%v decoded as %v", both, got)
	}
	plain := errors.New("disk on fire")
	if got := decodeErr(encodeErr(plain)); got.Error() != plain.Error() || errors.Is(got, cart.ErrRetry) {
		t.Errorf("plain error decoded as %v", got)
	}
}

func TestUnknownMessagesAreRefused(t *testing.T) {
	if _, err := EncodeInventory("v", &cart.Get{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("inventory encode of a cart message: %v", err)
	}
	if _, err := EncodeCart("c", &inventory.LevelQuery{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("cart encode of an inventory message: %v", err)
	}
	if _, _, err := DecodeInventory(&messages.InventoryRequest{VariantId: "v"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("empty inventory request: %v", err)
	}
	if _, _, err := DecodeInventory(&messages.InventoryRequest{Request: &messages.InventoryRequest_Level{Level: &messages.InventoryLevelQuery{}}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("inventory request without variant id: %v", err)
	}
	if _, _, err := DecodeInventory(&messages.InventoryRequest{VariantId: "v", Request: &messages.InventoryRequest_Move{Move: &messages.InventoryMove{}}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("move without a movement: %v", err)
	}
	if _, _, err := DecodeCart(&messages.CartRequest{Request: &messages.CartRequest_Get{Get: &messages.CartGet{}}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("cart request without cart id: %v", err)
	}
	if _, err := DecodeInventoryReply(&messages.InventoryReply{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("inventory reply without kind: %v", err)
	}
	if _, err := DecodeCartReply(&messages.CartReply{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("cart reply without kind: %v", err)
	}
	if _, err := EncodeCartReply(&inventory.Reply{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("cart encode of an inventory reply: %v", err)
	}
}

// checkErrs checks that got's errors match want's sentinels and text, then
// clears both so the rest compares with reflect.DeepEqual.
func checkErrs(t *testing.T, want, got any) {
	t.Helper()
	w, g := errField(want), errField(got)
	for i := range w {
		if (*w[i] == nil) != (*g[i] == nil) {
			t.Fatalf("error %v decoded as %v", *w[i], *g[i])
		}
		if *w[i] == nil {
			continue
		}
		if (*g[i]).Error() != (*w[i]).Error() {
			t.Fatalf("error text %q decoded as %q", *w[i], *g[i])
		}
		for _, s := range sentinels {
			if errors.Is(*w[i], s.Err) != errors.Is(*g[i], s.Err) {
				t.Fatalf("error %v decoded as %v: differ on %v", *w[i], *g[i], s.Err)
			}
		}
		*w[i], *g[i] = nil, nil
	}
}

// errField returns pointers to the error fields of a reply.
func errField(r any) []*error {
	switch r := r.(type) {
	case *inventory.ReserveReply:
		return []*error{&r.Err}
	case *inventory.Level:
		return []*error{&r.Err}
	case *inventory.MoveReply:
		return []*error{&r.Err, &r.Level.Err}
	case *inventory.Reply:
		return []*error{&r.Err}
	case *cart.View:
		return []*error{&r.Err}
	case *cart.CheckoutReply:
		return []*error{&r.Err}
	case *cart.SurrenderReply:
		return []*error{&r.Err}
	}
	return nil
}
