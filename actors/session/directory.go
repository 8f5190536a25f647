package session

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
)

// Directory activates session actors on demand, one per phone key, and
// routes requests to them (see package directory).
type Directory struct{ d *directory.Directory }

// NewDirectory spawns the session directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	return newDirectoryNamed(root, deps, timeout, "sessions")
}

func newDirectoryNamed(root *actor.RootContext, deps Deps, timeout time.Duration, name string) (*Directory, error) {
	deps, err := deps.withDefaults()
	if err != nil {
		return nil, err
	}
	d, err := directory.New(root, directory.Config{
		Name:        name,
		Spawn:       func(key string) actor.Producer { return newActor(deps, key) },
		Refuse:      refusal,
		ErrShutdown: fmt.Errorf("%w: node shutting down", ErrUnavailable),
		Timeout:     timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return &Directory{d}, nil
}

// Key is the actor key of a phone: the hex of its blind index, so neither
// actor names nor the otp_states table hold the number.
func Key(blindIndex []byte) string { return hex.EncodeToString(blindIndex) }

// RequestCode asks the phone's actor (by key) to send a new code; see
// Client.RequestCode.
func (d *Directory) RequestCode(ctx context.Context, key string, m *RequestCode) *RequestCodeReply {
	return NewClient(d).RequestCode(ctx, key, m)
}

// VerifyCode asks the phone's actor (by key) to check a code; see
// Client.VerifyCode.
func (d *Directory) VerifyCode(ctx context.Context, key string, m *VerifyCode) *VerifyReply {
	return NewClient(d).VerifyCode(ctx, key, m)
}

// Ask sends msg to the phone's actor (by key) and returns its reply, or
// the error of reaching it: the generic door a cluster's router uses
// (cluster/route.Local); callers in the node use RequestCode and
// VerifyCode.
func (d *Directory) Ask(ctx context.Context, key string, msg any) (any, error) {
	return d.d.Ask(ctx, key, msg)
}

// Invalidate retires the phone's activation, if any, once its writes are
// done (a cluster node handing the phone's partition over).
func (d *Directory) Invalidate(key string) { d.d.Invalidate(key) }

// Live returns how many session actors this node hosts now.
func (d *Directory) Live() int { return d.d.Live() }

// InvalidateWhere retires every activation whose key match reports true.
func (d *Directory) InvalidateWhere(match func(key string) bool) { d.d.InvalidateWhere(match) }

// PlacementKey is the key a cluster places a phone key's actor by: its
// partition is a hash of it (cluster/partition).
func PlacementKey(key string) string { return "session/" + key }

// Stop stops every session actor, then the directory; twice is harmless.
func (d *Directory) Stop(timeout time.Duration) { d.d.Stop(timeout) }
