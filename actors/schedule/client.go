package schedule

import (
	"context"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/keyed"
)

// Client is the typed door to the schedule actors, one per staff member:
// one method per request the outside sends, each answered with that
// request's reply type. It works over any door.Door: the node's Directory
// when it runs alone, the cluster's schedule router otherwise (or the lock
// baseline engine). An error means the actor was not reached (a timeout, a
// node gone) or answered a type its request does not expect; a refusal
// travels in the reply's Err.
type Client struct{ d door.Door }

// NewClient returns a Client over d.
func NewClient(d door.Door) *Client { return &Client{d: d} }

// Change is a request answered with *Reply: Confirm, Cancel, CheckIn,
// Complete, NoShow and Reschedule. Callers that build one of several
// transitions send it with Client.Change, after SetKey when the client
// sent an Idempotency-Key.
type Change interface {
	change()
	SetKey(k *keyed.Key)
}

func (*Confirm) change()    {}
func (*Cancel) change()     {}
func (*CheckIn) change()    {}
func (*Complete) change()   {}
func (*NoShow) change()     {}
func (*Reschedule) change() {}

// SetKey gives a change (or a hold) the client's idempotency key.
func (m *Hold) SetKey(k *keyed.Key)       { m.Key = k }
func (m *Confirm) SetKey(k *keyed.Key)    { m.Key = k }
func (m *Cancel) SetKey(k *keyed.Key)     { m.Key = k }
func (m *CheckIn) SetKey(k *keyed.Key)    { m.Key = k }
func (m *Complete) SetKey(k *keyed.Key)   { m.Key = k }
func (m *NoShow) SetKey(k *keyed.Key)     { m.Key = k }
func (m *Reschedule) SetKey(k *keyed.Key) { m.Key = k }

// Hold asks staffID's actor to hold a slot.
func (c *Client) Hold(ctx context.Context, staffID string, m *Hold) (*HoldReply, error) {
	return door.Ask[*HoldReply](ctx, c.d, staffID, m)
}

// Local reports, in a cluster, whether a staff member's actor lives on
// this node (asking it costs no forwarded request); nil when the door has
// no such notion (one node: every actor is local).
func (c *Client) Local() func(staffID string) bool {
	if l, ok := c.d.(door.Local); ok {
		return l.Local
	}
	return nil
}

// SlotsNow answers m at once when the door can (door.Now: this node holds
// an exact snapshot of staffID's calendar); ok is false otherwise.
func (c *Client) SlotsNow(staffID string, m *SlotsQuery) (*SlotsReply, bool) {
	now, ok := c.d.(door.Now)
	if !ok {
		return nil, false
	}
	out, ok := now.AskNow(staffID, m)
	if !ok {
		return nil, false
	}
	r, ok := out.(*SlotsReply)
	return r, ok
}

// Slots asks staffID's actor for bookable starts.
func (c *Client) Slots(ctx context.Context, staffID string, m *SlotsQuery) (*SlotsReply, error) {
	return door.Ask[*SlotsReply](ctx, c.d, staffID, m)
}

// Change sends one appointment transition to staffID's actor.
func (c *Client) Change(ctx context.Context, staffID string, m Change) (*Reply, error) {
	return door.Ask[*Reply](ctx, c.d, staffID, m)
}

// Confirm turns a hold into a booking.
func (c *Client) Confirm(ctx context.Context, staffID string, m *Confirm) (*Reply, error) {
	return c.Change(ctx, staffID, m)
}

// Cancel frees an appointment's slot.
func (c *Client) Cancel(ctx context.Context, staffID string, m *Cancel) (*Reply, error) {
	return c.Change(ctx, staffID, m)
}

// CheckIn records the client's arrival.
func (c *Client) CheckIn(ctx context.Context, staffID string, m *CheckIn) (*Reply, error) {
	return c.Change(ctx, staffID, m)
}

// Complete closes an appointment that took place.
func (c *Client) Complete(ctx context.Context, staffID string, m *Complete) (*Reply, error) {
	return c.Change(ctx, staffID, m)
}

// NoShow closes an appointment the client did not come to.
func (c *Client) NoShow(ctx context.Context, staffID string, m *NoShow) (*Reply, error) {
	return c.Change(ctx, staffID, m)
}

// Reschedule moves an appointment to another start.
func (c *Client) Reschedule(ctx context.Context, staffID string, m *Reschedule) (*Reply, error) {
	return c.Change(ctx, staffID, m)
}
