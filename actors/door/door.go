// Package door is how code outside an actor reaches one: a Door sends a
// message to the actor with a given id (on this node, or through the
// cluster router on the node that owns the id) and returns its reply.
//
// A Door is untyped on purpose: the router and the local registries carry
// any message. Each actor kind wraps a Door in a typed client (for example
// schedule.Client.Hold) built on Ask, so the one reply assertion of a
// request lives beside the actor that answers it and callers never make one.
package door

import (
	"context"
	"fmt"
)

// Door sends msg to the actor with the given id and waits for its reply.
// Local registries and cluster/route.Router both satisfy it.
type Door interface {
	Ask(ctx context.Context, id string, msg any) (any, error)
}

// Now is a Door that can answer some requests at once, in the caller's
// goroutine, without waiting for the actor (a read served from a published
// snapshot); ok is false when it cannot, and the caller Asks. A caller
// asking many actors together answers what it can this way before starting
// a goroutine for each of the rest.
type Now interface {
	AskNow(id string, msg any) (reply any, ok bool)
}

// Local is a Door that knows where its actors live: whether actor id is
// on this node now, so asking it costs no network hop (a hint: it may
// move before the ask). A Door without it has every actor local.
type Local interface {
	Local(id string) bool
}

// Func adapts a function to a Door (tests, wrappers).
type Func func(ctx context.Context, id string, msg any) (any, error)

// Ask calls f.
func (f Func) Ask(ctx context.Context, id string, msg any) (any, error) { return f(ctx, id, msg) }

// Ask sends msg through d and returns the reply as an R. A reply of another
// type is a programming error between a client and its actor; it comes back
// as an error naming both types rather than a panic.
func Ask[R any](ctx context.Context, d Door, id string, msg any) (R, error) {
	var zero R
	out, err := d.Ask(ctx, id, msg)
	if err != nil {
		return zero, err
	}
	r, ok := out.(R)
	if !ok {
		return zero, fmt.Errorf("door: %T to %q answered %T, want %T", msg, id, out, zero)
	}
	return r, nil
}
