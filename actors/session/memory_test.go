package session

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/persistence"
)

// otpMemStore answers a session actor's load and write from nothing: no
// stored state, every write accepted. Only those two methods exist (the
// embedded nil Tx panics on others), so the benchmark measures actors, not
// a database.
type otpMemStore struct{ persistence.Store }

type otpMemTx struct{ persistence.Tx }

func (otpMemStore) InTx(ctx context.Context, fn func(persistence.Tx) error) error {
	return fn(otpMemTx{})
}

func (otpMemTx) OTPStateGet(context.Context, string) (persistence.OTPState, error) {
	return persistence.OTPState{}, persistence.ErrNotFound
}

func (otpMemTx) OTPStatePut(_ context.Context, s persistence.OTPState) (persistence.OTPState, error) {
	s.Version++
	return s, nil
}

// BenchmarkIdleActorMemory activates 100 000 session actors, each asked for
// a code (so it holds a send count and a hashed challenge, as after a real
// request) and then idle, and reports the heap they hold each. Run it
// alone: go test -run '^$' -bench IdleActorMemory -benchtime 1x ./actors/session
func BenchmarkIdleActorMemory(b *testing.B) {
	const actors = 100_000
	hasher, err := otp.NewHasher(bytes.Repeat([]byte{7}, otp.MinKeyLen))
	if err != nil {
		b.Fatal(err)
	}
	discard := sender.SenderFunc(func(context.Context, sender.Message) error { return nil })
	for b.Loop() {
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
		m, _ := NewMetrics(prometheus.NewRegistry())
		dir, err := NewDirectory(system.Root, Deps{Store: otpMemStore{}, Hasher: hasher, Sender: discard, Log: quiet, Metrics: m,
			Config: Config{IdleAfter: time.Hour}}, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < actors; i += 8 {
					r := dir.RequestCode(context.Background(), fmt.Sprintf("%064x", i), &RequestCode{Phone: fmt.Sprintf("+5730%08d", i)})
					if r.Err != nil {
						b.Errorf("activate %d: %v", i, r.Err)
						return
					}
				}
			})
		}
		wg.Wait()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/actors, "heap-bytes/actor")
		dir.Stop(time.Minute)
		system.Shutdown()
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
