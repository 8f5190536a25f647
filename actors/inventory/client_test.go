package inventory

import (
	"context"
	"errors"
	"testing"
	"time"

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
	doortest.TypedReplies(t, "oil", []doortest.Call{
		{Name: "reserve", Msg: &Reserve{ReservationID: "r"}, Reply: &ReserveReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Reserve(ctx, "oil", m.(*Reserve)) }},
		{Name: "release", Msg: &Release{ReservationID: "r"}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Release(ctx, "oil", m.(*Release)) }},
		{Name: "consumed", Msg: &Consumed{ReservationIDs: []string{"r"}}, Reply: &Reply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Consumed(ctx, "oil", m.(*Consumed)) }},
		{Name: "move", Msg: &Move{}, Reply: &MoveReply{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Move(ctx, "oil", m.(*Move)) }},
		{Name: "level", Msg: &LevelQuery{}, Reply: &Level{}, Do: func(d door.Door, m any) (any, error) { return NewClient(d).Level(ctx, "oil", m.(*LevelQuery)) }},
	})
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
