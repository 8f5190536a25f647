package cart

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/inventory/inventorytest"
	"github.com/spa-engine/spa/persistence"
)

// isNil reports a nil reply, typed or not.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return v == nil || rv.Kind() == reflect.Pointer && rv.IsNil()
}

// TestClientSendsEachRequestAndTypesItsReply: every method sends its
// message unchanged to the id it was given and returns the reply the actor
// gave; a reply of another type, or a door that fails, is an error and no
// reply.
func TestClientSendsEachRequestAndTypesItsReply(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		msg   any
		reply any
		call  func(c *Client, m any) (any, error)
	}{
		{"create", &Create{OwnerID: "ana"}, &View{}, func(c *Client, m any) (any, error) { return c.Create(ctx, "c1", m.(*Create)) }},
		{"get", &Get{}, &View{}, func(c *Client, m any) (any, error) { return c.Get(ctx, "c1", m.(*Get)) }},
		{"set line", &SetLine{VariantID: "oil"}, &View{}, func(c *Client, m any) (any, error) { return c.SetLine(ctx, "c1", m.(*SetLine)) }},
		{"surrender", &Surrender{IntoCartID: "c2"}, &SurrenderReply{}, func(c *Client, m any) (any, error) { return c.Surrender(ctx, "c1", m.(*Surrender)) }},
		{"checkout", &Checkout{OrderID: "o"}, &CheckoutReply{}, func(c *Client, m any) (any, error) { return c.Checkout(ctx, "c1", m.(*Checkout)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotID string
			var gotMsg, answer any
			var fail error
			c := NewClient(door.Func(func(_ context.Context, id string, msg any) (any, error) {
				gotID, gotMsg = id, msg
				return answer, fail
			}))
			answer = tc.reply
			if r, err := tc.call(c, tc.msg); err != nil || r != tc.reply || gotID != "c1" || gotMsg != tc.msg {
				t.Fatalf("= %v, %v after sending %#v to %q; want the actor's reply", r, err, gotMsg, gotID)
			}
			answer = &struct{ Err error }{} // no cart reply
			if r, err := tc.call(c, tc.msg); err == nil || !isNil(r) || !strings.Contains(err.Error(), "answered") {
				t.Fatalf("wrong reply type: = %v, %v; want an error naming it and no reply", r, err)
			}
			answer, fail = nil, errors.New("no answer in time")
			if r, err := tc.call(c, tc.msg); !errors.Is(err, fail) || !isNil(r) {
				t.Fatalf("failing door: = %v, %v; want its error", r, err)
			}
		})
	}
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
