package inventory

import (
	"context"

	"github.com/spa-engine/spa/actors/door"
)

// Client is the typed door to the inventory actors, one per shop variant:
// one method per request the outside sends, each answered with that
// request's reply type. It works over any door.Door: the node's Directory
// when it runs alone, the cluster's inventory router otherwise. An error
// means the actor was not reached or answered a type its request does not
// expect; a refusal travels in the reply's Err.
type Client struct{ d door.Door }

// NewClient returns a Client over d.
func NewClient(d door.Door) *Client { return &Client{d: d} }

// Reserve holds units of variantID for a cart.
func (c *Client) Reserve(ctx context.Context, variantID string, m *Reserve) (*ReserveReply, error) {
	return door.Ask[*ReserveReply](ctx, c.d, variantID, m)
}

// Release gives a reservation's units back.
func (c *Client) Release(ctx context.Context, variantID string, m *Release) (*Reply, error) {
	return door.Ask[*Reply](ctx, c.d, variantID, m)
}

// Consumed tells the actor that checkout sold these reservations.
func (c *Client) Consumed(ctx context.Context, variantID string, m *Consumed) (*Reply, error) {
	return door.Ask[*Reply](ctx, c.d, variantID, m)
}

// Move applies a stock movement.
func (c *Client) Move(ctx context.Context, variantID string, m *Move) (*MoveReply, error) {
	return door.Ask[*MoveReply](ctx, c.d, variantID, m)
}

// Level asks for the variant's stock now.
func (c *Client) Level(ctx context.Context, variantID string, m *LevelQuery) (*Level, error) {
	return door.Ask[*Level](ctx, c.d, variantID, m)
}

// Invalidate makes variantID's actor reload its variant (prices, the
// threshold or stock changed outside it) when the door can retire
// activations, as the Directory and the cluster router can; over another
// door (a test's fake) it does nothing.
func (c *Client) Invalidate(variantID string) {
	if inv, ok := c.d.(interface{ Invalidate(id string) }); ok {
		inv.Invalidate(variantID)
	}
}
