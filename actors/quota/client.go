package quota

import (
	"context"
	"fmt"

	"github.com/spa-engine/spa/actors/door"
)

// Client is the typed door to the quota actors, one per key. It works
// over any door.Door: the node's Directory when it runs alone, the
// cluster's quota router otherwise. A failure to reach the actor comes
// back as the reply's Err, wrapping ErrUnavailable, exactly as the actor
// refuses what it cannot decide: either way nothing was granted.
type Client struct{ d door.Door }

// NewClient returns a Client over d.
func NewClient(d door.Door) *Client { return &Client{d: d} }

// Take asks the key's actor for m's units.
func (c *Client) Take(ctx context.Context, key string, m *Take) *Reply {
	return c.ask(ctx, key, m)
}

// Release gives m's leases back to the key's actor.
func (c *Client) Release(ctx context.Context, key string, m *Release) *Reply {
	return c.ask(ctx, key, m)
}

func (c *Client) ask(ctx context.Context, key string, m any) *Reply {
	r, err := door.Ask[*Reply](ctx, c.d, key, m)
	if err != nil {
		return &Reply{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	return r
}
