// Package leakcheck fails a package's tests when a goroutine outlives them
// (go.uber.org/goleak): actors, loops, timers and connections must all stop
// with whatever started them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"
)

// ignored are goroutines a library starts and ends on its own schedule, not
// ours to stop.
var ignored = []goleak.Option{
	// protoactor's dead-letter log throttle: one goroutine per throttle
	// window, which returns when the window's timer fires.
	goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
}

// Main runs the tests, then fails if goroutines are left.
func Main(m *testing.M) { goleak.VerifyTestMain(m, ignored...) }
