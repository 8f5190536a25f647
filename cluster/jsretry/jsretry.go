// Package jsretry retries JetStream requests that a forming or recovering
// cluster may leave unanswered (a bucket's stream electing its leader, a
// lost API request): each try gets its own short timeout, the whole is
// bounded by the caller's context. Membership and partition leases use it;
// WhileElecting serves the start-up requests of cmd/spa.
package jsretry

import (
	"context"
	"errors"
	"time"
)

// Try bounds one attempt.
const Try = 2 * time.Second

// Do calls f until it succeeds or ctx ends, returning f's last error.
func Do(ctx context.Context, f func(context.Context) error) error {
	wait := 20 * time.Millisecond
	for {
		tctx, cancel := context.WithTimeout(ctx, Try)
		err := f(tctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// WhileElecting retries a JetStream request at start-up while it times
// out, for up to a minute: in a cluster, a node restarting while a stream
// or the meta group elects a leader gets no answer for a few seconds. Any
// other error returns at once. Each try, like Do's, has Try to be
// answered: three nodes starting together lose some of their stream and
// consumer requests, and each lost one waited out the client's 5-second
// API timeout (a three-node start took ~35 s under the race detector,
// all but ~4 of them such waits).
func WhileElecting[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	give := time.Now().Add(time.Minute)
	for {
		tctx, cancel := context.WithTimeout(ctx, Try)
		v, err := f(tctx)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(give) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
