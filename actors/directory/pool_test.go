package directory

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// goid is the calling goroutine's id, from its stack header.
func goid() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(buf[:bytes.IndexByte(buf, ' ')]), 10, 64)
	return id
}

// A burst scheduled while a worker waits runs on that worker (its grown
// stack is kept), not on a fresh goroutine as protoactor's default
// dispatcher does.
func TestPoolRunsBurstsOnAWaitingWorker(t *testing.T) {
	p := newPool()
	defer p.close()
	ran := make(chan uint64)
	burst := func() { ran <- goid() }
	p.Schedule(burst)
	first := <-ran
	for range 50 {
		time.Sleep(5 * time.Millisecond) // the worker is waiting by now
		p.Schedule(burst)
		if <-ran == first {
			return
		}
	}
	t.Fatal("no burst ran on the worker that ran the first")
}

// Waiting workers end when the pool closes and when they have waited
// idleFor; a burst scheduled after close still runs.
func TestPoolWorkersEnd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := newPool()
	p.idleFor = time.Hour
	ran := make(chan struct{})
	for range 3 {
		p.Schedule(func() { ran <- struct{}{} })
	}
	for range 3 {
		<-ran
	}
	p.close()
	p.Schedule(func() { ran <- struct{}{} })
	<-ran

	q := newPool()
	defer q.close()
	q.idleFor = time.Millisecond
	q.Schedule(func() { ran <- struct{}{} })
	<-ran
}
