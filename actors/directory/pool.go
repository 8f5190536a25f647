package directory

import (
	"sync"
	"time"
)

// pool is the protoactor Dispatcher of a directory and the actors it
// hosts: it runs a mailbox's burst of messages on a goroutine it keeps for
// a while, instead of protoactor's default fresh goroutine per burst.
//
// Why: a calendar actor's mailbox empties between most messages, even
// under load (each message is decided in microseconds), so the default
// dispatcher started a goroutine per message, on a new small stack that
// the decision then grew, copying it, two or three times: in a profile of
// `spa serve` under the hot scenario, stack growth was ~13% of the
// server's CPU. A kept goroutine keeps its grown stack (the runtime only
// halves an idle one at a garbage collection).
//
// A burst goes to a worker waiting for one, else to a new worker. A
// worker that waits idleFor to twice that without work ends, as do
// waiting workers once the pool is closed, so an idle node, a stopped directory and a test
// leave no goroutine behind.
type pool struct {
	throughput int
	idleFor    time.Duration
	work       chan func() // unbuffered: a send succeeds only if a worker waits
	done       chan struct{}
	closeOnce  sync.Once
}

// poolIdle is about how long a worker waits for another burst before it
// ends (up to twice this): far longer than the gaps between messages under
// load, and short enough that goleak's checks at the end of a test binary
// see idle workers gone.
const poolIdle = 50 * time.Millisecond

// poolThroughput is protoactor's default: a mailbox yields the processor
// after this many messages in a row.
const poolThroughput = 300

func newPool() *pool {
	return &pool{throughput: poolThroughput, idleFor: poolIdle, work: make(chan func()), done: make(chan struct{})}
}

// Schedule runs fn (a mailbox's message loop) on a waiting worker, or on
// a new one.
func (p *pool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		go p.run(fn)
	}
}

// Throughput implements actor.Dispatcher.
func (p *pool) Throughput() int { return p.throughput }

// run is one worker: fn, then whatever is scheduled while it waits. Its
// idle timer is re-armed only when it fires (ending the worker if nothing
// ran since the previous tick), not after every burst: a worker ends
// after idleFor to twice that without work.
func (p *pool) run(fn func()) {
	idle := time.NewTimer(p.idleFor)
	defer idle.Stop()
	for {
		fn()
		worked := true
	wait:
		select {
		case fn = <-p.work:
		case <-idle.C:
			if !worked {
				return
			}
			worked = false
			idle.Reset(p.idleFor)
			goto wait
		case <-p.done:
			return
		}
	}
}

// close ends the waiting workers; later bursts still run, each on a
// goroutine of its own that ends with it (a worker that is running ends
// once it has finished). Calling it twice is harmless.
func (p *pool) close() { p.closeOnce.Do(func() { close(p.done) }) }
