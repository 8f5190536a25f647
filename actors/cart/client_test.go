package cart

import (
	"context"
	"errors"
	"testing"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/door/doortest"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/persistence"
)

// TestClientSendsEachRequestAndTypesItsReply: every method sends its
// message unchanged to the id it was given and returns the reply the actor
// gave; a reply of another type, or a door that fails, is an error and no
// reply.
func TestClientSendsEachRequestAndTypesItsReply(t *testing.T) {
	ctx := context.Background()
	doortest.TypedReplies(t, "c1", []doortest.Call{
		{Name: "create", Msg: &Create{OwnerID: "ana"}, Reply: &View{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Create(ctx, "c1", m.(*Create)) }},
		{Name: "get", Msg: &Get{}, Reply: &View{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Get(ctx, "c1", m.(*Get)) }},
		{Name: "set line", Msg: &SetLine{VariantID: "oil"}, Reply: &View{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).SetLine(ctx, "c1", m.(*SetLine)) }},
		{Name: "surrender", Msg: &Surrender{IntoCartID: "c2"}, Reply: &SurrenderReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Surrender(ctx, "c1", m.(*Surrender)) }},
		{Name: "checkout", Msg: &Checkout{OrderID: "o"}, Reply: &CheckoutReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Checkout(ctx, "c1", m.(*Checkout)) }},
	})
}

// TestClientOverTheDirectory: the typed calls reach real cart actors (and
// through them the inventory actors) and bring back their answers.
func TestClientOverTheDirectory(t *testing.T) {
	st := inventorytest.Drivers()[0].Open(t)
	inventorytest.Stock(t, st, "oil", 4, 100, 0, 0)
	clk := &clock{}
	clk.ns.Store(t0.UnixNano())
	f := newFixture(t, st, clk.now, Config{})
	c := NewClient(f.carts)
	ctx := context.Background()
	anon, me := Auth{Token: "tok"}, Auth{Subject: "ana"}
	if v, err := c.Create(ctx, "anon", &Create{TokenHash: HashToken(anon.Token)}); err != nil || v.Err != nil {
		t.Fatalf("create = %+v, %v", v, err)
	}
	if v, err := c.SetLine(ctx, "anon", &SetLine{Auth: anon, VariantID: "oil", Qty: 2}); err != nil || v.Err != nil || len(v.Lines) != 1 {
		t.Fatalf("set line = %+v, %v", v, err)
	}
	if v, err := c.Get(ctx, "anon", &Get{Auth: Auth{Token: "wrong"}}); err != nil || !errors.Is(v.Err, ErrNotFound) {
		t.Fatalf("get with a wrong token = %+v, %v; want ErrNotFound in the reply", v, err)
	}
	if v, err := c.Create(ctx, "mine", &Create{OwnerID: "ana"}); err != nil || v.Err != nil {
		t.Fatalf("create = %+v, %v", v, err)
	}
	s, err := c.Surrender(ctx, "anon", &Surrender{Auth: anon, IntoCartID: "mine"})
	if err != nil || s.Err != nil || s.Lines["oil"] != 2 {
		t.Fatalf("surrender = %+v, %v", s, err)
	}
	if v, err := c.SetLine(ctx, "mine", &SetLine{Auth: me, VariantID: "oil", Qty: s.Lines["oil"]}); err != nil || v.Err != nil {
		t.Fatalf("set line = %+v, %v", v, err)
	}
	v, err := c.Get(ctx, "mine", &Get{Auth: me})
	if err != nil || v.Err != nil || len(v.Lines) != 1 || v.Lines[0].Qty != 2 {
		t.Fatalf("get = %+v, %v", v, err)
	}
	co, err := c.Checkout(ctx, "mine", &Checkout{Auth: me, OrderID: "order-1", Fulfilment: persistence.FulfilmentPickup})
	if err != nil || co.Err != nil || co.Order.ID != "order-1" {
		t.Fatalf("checkout = %+v, %v", co, err)
	}
}
