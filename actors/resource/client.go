package resource

import (
	"context"

	"github.com/spa-engine/spa/actors/door"
)

// Client is the typed door to the resource actors, one per room or sauna:
// one method per request the outside sends, each answered with that
// request's reply type. It works over any door.Door: the node's Directory
// when it runs alone, the cluster's resource router otherwise. An error
// means the actor was not reached or answered a type its request does not
// expect; a refusal travels in the reply's Err.
type Client struct{ d door.Door }

// NewClient returns a Client over d.
func NewClient(d door.Door) *Client { return &Client{d: d} }

// Claim reserves one unit of resourceID for an appointment.
func (c *Client) Claim(ctx context.Context, resourceID string, m *Claim) (*ClaimReply, error) {
	return door.Ask[*ClaimReply](ctx, c.d, resourceID, m)
}

// Release drops an appointment's claim.
func (c *Client) Release(ctx context.Context, resourceID string, m *Release) (*Reply, error) {
	return door.Ask[*Reply](ctx, c.d, resourceID, m)
}

// Track tells the actor an appointment's latest state.
func (c *Client) Track(ctx context.Context, resourceID string, m *Track) (*TrackReply, error) {
	return door.Ask[*TrackReply](ctx, c.d, resourceID, m)
}

// Full asks where the resource is saturated.
func (c *Client) Full(ctx context.Context, resourceID string, m *FullQuery) (*FullReply, error) {
	return door.Ask[*FullReply](ctx, c.d, resourceID, m)
}
