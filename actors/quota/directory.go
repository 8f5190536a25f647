package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/spa-engine/spa/actors/directory"
)

// Directory activates quota actors on demand, one per counted key, and
// routes requests to them (see package directory).
type Directory struct{ d *directory.Directory }

// NewDirectory spawns the quota directory on root. timeout bounds a
// request whose context has no deadline.
func NewDirectory(root *actor.RootContext, deps Deps, timeout time.Duration) (*Directory, error) {
	return newDirectoryNamed(root, deps, timeout, "quotas")
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
		return nil, fmt.Errorf("quota: %w", err)
	}
	return &Directory{d}, nil
}

// Ask sends msg to the key's actor and returns its reply, or the error of
// reaching it: the generic door (door.Door, cluster/route.Local); callers
// use a Client over it.
func (d *Directory) Ask(ctx context.Context, key string, msg any) (any, error) {
	return d.d.Ask(ctx, key, msg)
}

// Invalidate retires the key's activation, if any, once its writes are
// done (a cluster node handing the key's partition over).
func (d *Directory) Invalidate(key string) { d.d.Invalidate(key) }

// InvalidateWhere retires every activation whose key match reports true.
func (d *Directory) InvalidateWhere(match func(key string) bool) { d.d.InvalidateWhere(match) }

// Live returns how many quota actors this node hosts now.
func (d *Directory) Live() int { return d.d.Live() }

// PlacementKey is the key a cluster places a quota key's actor by: its
// partition is a hash of it (cluster/partition).
func PlacementKey(key string) string { return "quota/" + key }

// Stop stops every quota actor, then the directory; twice is harmless.
func (d *Directory) Stop(timeout time.Duration) { d.d.Stop(timeout) }
