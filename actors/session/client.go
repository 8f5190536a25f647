package session

import (
	"context"
	"fmt"

	"github.com/spa-engine/spa/actors/door"
)

// Client is the typed door to the session actors, one per phone key. It
// works over any door.Door: the node's Directory when it runs alone, the
// cluster's session router otherwise.
//
// Unlike the other kinds' clients, a failure to reach the actor comes back
// as the reply's Err, wrapping ErrUnavailable, exactly as the actor
// refuses what it cannot decide: for sign-in, "nothing was sent" is the
// same outcome whichever side failed.
type Client struct{ d door.Door }

// NewClient returns a Client over d.
func NewClient(d door.Door) *Client { return &Client{d: d} }

// RequestCode asks the phone's actor (by key) to send a new code.
func (c *Client) RequestCode(ctx context.Context, key string, m *RequestCode) *RequestCodeReply {
	r, err := door.Ask[*RequestCodeReply](ctx, c.d, key, m)
	if err != nil {
		return &RequestCodeReply{Err: unreached(err)}
	}
	return r
}

// VerifyCode asks the phone's actor (by key) to check a code.
func (c *Client) VerifyCode(ctx context.Context, key string, m *VerifyCode) *VerifyReply {
	r, err := door.Ask[*VerifyReply](ctx, c.d, key, m)
	if err != nil {
		return &VerifyReply{Err: unreached(err)}
	}
	return r
}

// Converse hands the phone's (by key) inbound message to the bot.
func (c *Client) Converse(ctx context.Context, key string, m *Converse) *ConverseReply {
	r, err := door.Ask[*ConverseReply](ctx, c.d, key, m)
	if err != nil {
		return &ConverseReply{Err: unreached(err)}
	}
	return r
}

// Staff applies a person's action to the phone's (by key) conversation.
func (c *Client) Staff(ctx context.Context, key string, m *StaffAct) *StaffActReply {
	r, err := door.Ask[*StaffActReply](ctx, c.d, key, m)
	if err != nil {
		return &StaffActReply{Err: unreached(err)}
	}
	return r
}

// unreached is the refusal of a request that reached no actor, or was
// answered with a type it does not expect.
func unreached(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }
