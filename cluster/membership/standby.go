package membership

import (
	"context"
	"time"
)

// Health is how WatchHealth judges the node: Check (a store ping, say)
// runs every Every, bounded by Every; the node goes on standby once Check
// has failed for After without passing, and comes off once it has passed
// for After without failing, so one slow ping moves nothing and a
// flapping store does not move partitions back and forth every second.
type Health struct {
	Check func(context.Context) error
	Every time.Duration // default 1s
	After time.Duration // default 3s
}

// WatchHealth puts this node on standby (SetStandby) while h says it is
// unhealthy, until ctx ends; it leaves the standby as it found it then.
func (n *Node) WatchHealth(ctx context.Context, h Health) {
	if h.Every <= 0 {
		h.Every = time.Second
	}
	if h.After <= 0 {
		h.After = 3 * time.Second
	}
	t := time.NewTicker(h.Every)
	defer t.Stop()
	var since time.Time // when the current run of passes or failures began
	lastOK := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, h.Every)
		err := h.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if ok := err == nil; ok != lastOK || since.IsZero() {
			lastOK, since = ok, now
		}
		if now.Sub(since) < h.After || n.Self().Standby() == !lastOK {
			continue
		}
		if lastOK {
			n.log.Info("store reachable again: off standby, partitions placed here again")
		} else {
			n.log.Warn("store unreachable: on standby, partitions handed to the other members", "err", err)
		}
		sctx, cancel := context.WithTimeout(ctx, h.Every)
		if serr := n.SetStandby(sctx, !lastOK); serr != nil {
			n.log.Warn("standby record not written; the next renewal carries it", "err", serr)
		}
		cancel()
	}
}
