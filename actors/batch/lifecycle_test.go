package batch

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/directory"
)

// lifeContext is the little of actor.Context a Lifecycle uses, for an
// activation without a directory (it stops itself when it retires).
type lifeContext struct {
	actor.Context
	msg      any
	replies  []any
	stopped  bool
	timeouts []time.Duration // SetReceiveTimeout's arguments
}

func (c *lifeContext) Message() any                      { return c.msg }
func (c *lifeContext) Respond(r any)                     { c.replies = append(c.replies, r) }
func (c *lifeContext) Parent() *actor.PID                { return nil }
func (c *lifeContext) Self() *actor.PID                  { return nil }
func (c *lifeContext) Stop(*actor.PID)                   { c.stopped = true }
func (c *lifeContext) SetReceiveTimeout(d time.Duration) { c.timeouts = append(c.timeouts, d) }

type refused struct {
	msg any
	err error
}

func TestLifecycle(t *testing.T) {
	errRetry, errUnknown := errors.New("retry"), errors.New("unknown")
	kind := &Kind{Name: "test", IDKey: "id", Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "live"}), Fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "fenced"}),
		Refuse:   func(msg any, err error) any { return refused{msg, err} },
		ErrRetry: errRetry, ErrNotLoaded: fmt.Errorf("%w: did not load", errRetry), ErrUnknown: errUnknown}
	request := func(l *Lifecycle) (ran bool, c *lifeContext) {
		c = &lifeContext{msg: "request"}
		l.Guard(c, func() { ran = true })
		return ran, c
	}
	for _, tc := range []struct {
		name    string
		err     error // from activate
		refusal error // of a request afterwards; nil: decided
	}{
		{"loaded", nil, nil},
		{"unknown", fmt.Errorf("load: %w", errUnknown), errUnknown},
		{"not loaded", errors.New("store down"), kind.ErrNotLoaded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, commits := NewLifecycle(kind, "x"), &Committer{}
			c := &lifeContext{msg: &actor.Started{}}
			if ok := l.Start(c, func() error { return tc.err }); ok != (tc.err == nil) || c.stopped == ok {
				t.Fatalf("Start = %v, retired %v", ok, c.stopped)
			}
			if n := testutil.ToFloat64(kind.Live); n != 1 {
				t.Fatalf("live %v", n)
			}
			ran, rc := request(&l)
			if tc.refusal == nil {
				if !ran || len(rc.replies) != 0 || !l.Deciding() {
					t.Fatalf("not decided: %v %v", ran, rc.replies)
				}
				l.Receive(&lifeContext{msg: directory.Stop{}}, commits)
				ran, rc = request(&l)
				tc.refusal = errRetry // stopping, and no directory to hand it to
			}
			if ran || len(rc.replies) != 1 || rc.replies[0] != (refused{"request", tc.refusal}) || l.Deciding() {
				t.Fatalf("refusal %v (ran %v), want %v", rc.replies, ran, tc.refusal)
			}
			l.Receive(&lifeContext{msg: &actor.Stopped{}}, commits)
			if n := testutil.ToFloat64(kind.Live); n != 0 {
				t.Fatalf("live %v after stop", n)
			}
		})
	}
}

// TestIdleWhileWritingPassivatesLater: the idle timeout that finds a
// write in flight keeps the actor, and arms the timeout again (protoactor
// disarms it when it fires), so the actor passivates once idle; one that
// finds nothing to write retires it.
func TestIdleWhileWritingPassivatesLater(t *testing.T) {
	kind := &Kind{Name: "test", IDKey: "id", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), IdleAfter: time.Minute,
		Live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "live"}), Fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "fenced"})}
	l := NewLifecycle(kind, "x")
	if !l.Start(&lifeContext{msg: &actor.Started{}}, func() error { return nil }) {
		t.Fatal("not started")
	}
	writing := &lifeContext{msg: &actor.ReceiveTimeout{}}
	l.Receive(writing, &Committer{inFlight: true})
	if writing.stopped || !slices.Equal(writing.timeouts, []time.Duration{time.Minute}) || !l.Deciding() {
		t.Fatalf("idle while writing: stopped %v, timeouts %v, deciding %v", writing.stopped, writing.timeouts, l.Deciding())
	}
	idle := &lifeContext{msg: &actor.ReceiveTimeout{}}
	l.Receive(idle, &Committer{})
	if !idle.stopped {
		t.Fatal("idle with nothing to write: not retired")
	}
}

// underDirectory is a lifeContext whose actor a directory hosts: retiring
// sends the directory a message instead of stopping.
type underDirectory struct {
	lifeContext
	sent []any
}

func (c *underDirectory) Parent() *actor.PID       { return actor.NewPID("node", "directory") }
func (c *underDirectory) Send(_ *actor.PID, m any) { c.sent = append(c.sent, m) }

// A Stop from the directory (a partition handed off, passivation, shutdown)
// that arrives while a batch is in flight, then the batch fails: the
// actor stops once the failure is answered. The directory, which marked it
// retiring when it sent that Stop, ignores its request to retire and sends
// no other Stop: an actor waiting for one never stopped, and every request
// for its calendar waited for it until its caller's deadline (seen in the
// chaos suite: a database cut during a hand-off wedged a room for minutes).
func TestStopDuringAFailingBatch(t *testing.T) {
	kind := &Kind{Name: "test", IDKey: "id", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), IdleAfter: time.Minute,
		Live: prometheus.NewGauge(prometheus.GaugeOpts{Name: "live"}), Fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "fenced"}),
		ErrRetry: errors.New("retry")}
	l := NewLifecycle(kind, "x")
	if !l.Start(&lifeContext{msg: &actor.Started{}}, func() error { return nil }) {
		t.Fatal("not started")
	}
	commits := &Committer{inFlight: true}
	stop := &underDirectory{lifeContext: lifeContext{msg: directory.Stop{}}}
	l.Receive(stop, commits)
	if stop.stopped {
		t.Fatal("stopped with a write in flight")
	}
	var answered error
	failed := &underDirectory{lifeContext: lifeContext{msg: Done{ops: []Op{{Reply: func(err error) { answered = err }}}, err: errors.New("store unreachable")}}}
	l.Receive(failed, commits)
	if !errors.Is(answered, kind.ErrRetry) {
		t.Fatalf("the batch's caller got %v, want a retryable refusal", answered)
	}
	if !failed.stopped {
		t.Fatalf("a failed batch after Stop left the actor running (it sent %v and waits for a Stop that will not come)", failed.sent)
	}

	// Without a Stop first, the failure asks the directory to retire it.
	l = NewLifecycle(kind, "y")
	l.Start(&lifeContext{msg: &actor.Started{}}, func() error { return nil })
	failed = &underDirectory{lifeContext: lifeContext{msg: Done{ops: []Op{{Reply: func(error) {}}}, err: errors.New("store unreachable")}}}
	l.Receive(failed, &Committer{inFlight: true})
	if failed.stopped || len(failed.sent) != 1 {
		t.Fatalf("failed batch, no Stop yet: stopped %v, sent %v; want a request to retire", failed.stopped, failed.sent)
	}
}
