package inventory

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

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
		{"reserve", &Reserve{ReservationID: "r"}, &ReserveReply{}, func(c *Client, m any) (any, error) { return c.Reserve(ctx, "oil", m.(*Reserve)) }},
		{"release", &Release{ReservationID: "r"}, &Reply{}, func(c *Client, m any) (any, error) { return c.Release(ctx, "oil", m.(*Release)) }},
		{"consumed", &Consumed{ReservationIDs: []string{"r"}}, &Reply{}, func(c *Client, m any) (any, error) { return c.Consumed(ctx, "oil", m.(*Consumed)) }},
		{"move", &Move{}, &MoveReply{}, func(c *Client, m any) (any, error) { return c.Move(ctx, "oil", m.(*Move)) }},
		{"level", &LevelQuery{}, &Level{}, func(c *Client, m any) (any, error) { return c.Level(ctx, "oil", m.(*LevelQuery)) }},
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
			if r, err := tc.call(c, tc.msg); err != nil || r != tc.reply || gotID != "oil" || gotMsg != tc.msg {
				t.Fatalf("= %v, %v after sending %#v to %q; want the actor's reply", r, err, gotMsg, gotID)
			}
			answer = &struct{ Err error }{} // no inventory reply
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

// invalidating is a door that records what it was told to retire.
type invalidating struct {
	door.Func
	retired []string
}

func (d *invalidating) Invalidate(id string) { d.retired = append(d.retired, id) }

// TestClientInvalidateReachesDoorsThatRetire: Invalidate passes to a door
// that can retire activations (a directory, a router) and is a no-op on
// one that cannot.
func TestClientInvalidateReachesDoorsThatRetire(t *testing.T) {
	d := &invalidating{Func: func(context.Context, string, any) (any, error) { return nil, errors.New("unused") }}
	NewClient(d).Invalidate("oil")
	if len(d.retired) != 1 || d.retired[0] != "oil" {
		t.Fatalf("retired %v, want [oil]", d.retired)
	}
	NewClient(d.Func).Invalidate("oil") // no Invalidate: nothing happens, no panic
}

// TestClientOverTheDirectory: the typed calls reach a real inventory actor
// and bring back its answers.
func TestClientOverTheDirectory(t *testing.T) {
	forEachDriver(t, func(t *testing.T, st persistence.Store) {
		inventorytest.Stock(t, st, "oil", 5, 100, 0, 0)
		f := newFixture(t, st)
		c := NewClient(f.dir)
		ctx := context.Background()
		rr, err := c.Reserve(ctx, "oil", &Reserve{ReservationID: "r1", CartID: "c1", Qty: 2, TTL: time.Hour, ActorID: "c"})
		if err != nil || rr.Err != nil || rr.Available != 3 {
			t.Fatalf("reserve = %+v, %v", rr, err)
		}
		if rr, err := c.Reserve(ctx, "oil", &Reserve{ReservationID: "r2", CartID: "c2", Qty: 4, TTL: time.Hour, ActorID: "c"}); err != nil || !errors.Is(rr.Err, ErrOutOfStock) {
			t.Fatalf("reserving beyond stock = %+v, %v; want ErrOutOfStock in the reply", rr, err)
		}
		lvl, err := c.Level(ctx, "oil", &LevelQuery{})
		if err != nil || lvl.Err != nil || lvl.OnHand != 5 || lvl.Held != 2 || lvl.Available != 3 {
			t.Fatalf("level = %+v, %v", lvl, err)
		}
		if r, err := c.Release(ctx, "oil", &Release{ReservationID: "r1", Reason: "line removed", ActorID: "c"}); err != nil || r.Err != nil {
			t.Fatalf("release = %+v, %v", r, err)
		}
		mr, err := c.Move(ctx, "oil", &Move{Movement: persistence.StockMovement{ID: "m1", VariantID: "oil", Kind: persistence.MoveReceipt,
			Qty: 3, ActorID: "admin", Reason: "delivery", At: t0}})
		if err != nil || mr.Err != nil || mr.Level.OnHand != 8 || mr.Level.Available != 8 {
			t.Fatalf("move = %+v, %v", mr, err)
		}
		if r, err := c.Consumed(ctx, "oil", &Consumed{ReservationIDs: []string{"unknown"}}); err != nil || r.Err != nil {
			t.Fatalf("consumed = %+v, %v", r, err)
		}
	})
}
