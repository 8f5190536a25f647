package cart

import (
	"context"

	"github.com/spa-engine/spa/actors/door"
)

// Client is the typed door to the cart actors, one per cart: one method
// per request the outside sends, each answered with that request's reply
// type. It works over any door.Door: the node's Directory when it runs
// alone, the cluster's cart router otherwise. An error means the actor was
// not reached or answered a type its request does not expect; a refusal
// travels in the reply's Err.
type Client struct{ d door.Door }

// NewClient returns a Client over d.
func NewClient(d door.Door) *Client { return &Client{d: d} }

// Create makes cart cartID.
func (c *Client) Create(ctx context.Context, cartID string, m *Create) (*View, error) {
	return door.Ask[*View](ctx, c.d, cartID, m)
}

// Get shows the cart.
func (c *Client) Get(ctx context.Context, cartID string, m *Get) (*View, error) {
	return door.Ask[*View](ctx, c.d, cartID, m)
}

// SetLine sets the quantity of one variant in the cart.
func (c *Client) SetLine(ctx context.Context, cartID string, m *SetLine) (*View, error) {
	return door.Ask[*View](ctx, c.d, cartID, m)
}

// Surrender empties an anonymous cart into another.
func (c *Client) Surrender(ctx context.Context, cartID string, m *Surrender) (*SurrenderReply, error) {
	return door.Ask[*SurrenderReply](ctx, c.d, cartID, m)
}

// Checkout turns the cart into an order.
func (c *Client) Checkout(ctx context.Context, cartID string, m *Checkout) (*CheckoutReply, error) {
	return door.Ask[*CheckoutReply](ctx, c.d, cartID, m)
}
