// Package stockcheck checks recorded histories of stock reservations for
// linearizability with porcupine: every reservation must be explainable
// by some order of instantaneous decisions, each inside its own
// call–return interval, in which a reservation is granted only if enough
// units remain and refused only if too few do. Units come back only
// through explicit releases recorded in the same history (reservations in
// these histories do not expire while it is recorded).
package stockcheck

import (
	"fmt"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Outcome of one operation as the client saw it.
type Outcome int

// Outcomes. An Ambiguous operation (timeout, retryable failure) may or may
// not have taken effect; the checker considers both.
const (
	Granted Outcome = iota
	Refused
	Ambiguous
)

// op is the input of one operation: qty units of variant, taken (reserve)
// or given back (release, which always succeeds).
type op struct {
	variant string
	qty     int64
	release bool
}

// Model returns the porcupine model for a stock of initial units per
// variant (variants absent from the map start at 0).
func Model(initial map[string]int64) porcupine.Model {
	return (&porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var order []string
			for _, o := range h {
				v := o.Input.(op).variant
				if _, ok := by[v]; !ok {
					order = append(order, v)
				}
				by[v] = append(by[v], o)
			}
			out := make([][]porcupine.Operation, len(order))
			for i, v := range order {
				out[i] = by[v]
			}
			return out
		},
		// The state is the units left; partitions are checked separately,
		// so the initial state is taken from the first operation's
		// variant.
		Init: func() []any { return []any{int64(-1)} },
		Step: func(state, input, output any) []any {
			in := input.(op)
			left := state.(int64)
			if left < 0 {
				left = initial[in.variant]
			}
			if in.release {
				return []any{left + in.qty}
			}
			switch output.(Outcome) {
			case Granted: // only if enough units remain
				if left < in.qty {
					return nil
				}
				return []any{left - in.qty}
			case Refused: // only if too few remain
				if left >= in.qty {
					return nil
				}
				return []any{left}
			default:
				out := []any{left}
				if left >= in.qty {
					out = append(out, left-in.qty)
				}
				return out
			}
		},
		DescribeOperation: func(input, output any) string {
			in := input.(op)
			if in.release {
				return fmt.Sprintf("release(%s, %d)", in.variant, in.qty)
			}
			return fmt.Sprintf("reserve(%s, %d) → %v", in.variant, in.qty, output)
		},
	}).ToModel()
}

// Recorder collects a history from concurrent clients.
type Recorder struct {
	mu      sync.Mutex
	ops     []porcupine.Operation
	t0      time.Time
	initial map[string]int64
}

// NewRecorder starts a history of variants holding initial units.
func NewRecorder(initial map[string]int64) *Recorder {
	return &Recorder{t0: time.Now(), initial: initial}
}

// Reserve runs do, timing it, and records its outcome for qty units of
// variant.
func (r *Recorder) Reserve(client int, variant string, qty int64, do func() Outcome) Outcome {
	return r.record(client, op{variant: variant, qty: qty}, do)
}

// Release runs do, timing it, and records that qty units came back.
func (r *Recorder) Release(client int, variant string, qty int64, do func()) {
	r.record(client, op{variant: variant, qty: qty, release: true}, func() Outcome { do(); return Granted })
}

func (r *Recorder) record(client int, in op, do func() Outcome) Outcome {
	call := time.Since(r.t0).Nanoseconds()
	out := do()
	ret := time.Since(r.t0).Nanoseconds()
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
	return out
}

// Len is the number of recorded operations.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// Check reports whether the history is linearizable, within timeout (0: no
// limit). porcupine.Unknown (timed out) is reported as an error too.
func (r *Recorder) Check(timeout time.Duration) error {
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	switch porcupine.CheckOperationsTimeout(Model(r.initial), ops, timeout) {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		return fmt.Errorf("stockcheck: %d operations are not linearizable: a reservation was granted beyond stock or refused while stock remained", len(ops))
	default:
		return fmt.Errorf("stockcheck: the check of %d operations did not finish within %s", len(ops), timeout)
	}
}
