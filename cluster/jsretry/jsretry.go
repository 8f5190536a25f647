// Package jsretry retries JetStream requests that a forming or recovering
// cluster may leave unanswered (a bucket's stream electing its leader, a
// lost API request): each try gets its own short timeout, the whole is
// bounded by the caller's context. Membership and partition leases use it.
package jsretry

import (
	"context"
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
