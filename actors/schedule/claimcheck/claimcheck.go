// Package claimcheck checks recorded histories of slot claims for
// linearizability with porcupine: every claim must be explainable by some
// order of instantaneous decisions, each inside its own call–return
// interval, in which a claim succeeds only on a free slot and is refused
// only when another claim already holds it. Tests and the load generator
// record histories through Recorder and check them with Check.
package claimcheck

import (
	"fmt"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Outcome of one claim as the client saw it.
type Outcome int

// Outcomes. An Ambiguous claim (timeout, 5xx) may or may not have taken
// effect; the checker considers both.
const (
	Won Outcome = iota
	Refused
	Ambiguous
	// NotSent: the claim never left the client (no connection to send it
	// on, or its run was over), so it cannot have happened. Claim leaves
	// it out of the history.
	NotSent
)

// claim is the input of one operation: which slot, and who claims it.
type claim struct {
	slot   string
	client int
}

// partition splits a history by slot, since slots are independent.
func partition(h []porcupine.Operation) [][]porcupine.Operation {
	by := map[string][]porcupine.Operation{}
	var order []string
	for _, op := range h {
		s := op.Input.(claim).slot
		if _, ok := by[s]; !ok {
			order = append(order, s)
		}
		by[s] = append(by[s], op)
	}
	out := make([][]porcupine.Operation, len(order))
	for i, s := range order {
		out[i] = by[s]
	}
	return out
}

// model: the state of one slot is whether it is held. Histories are
// partitioned by slot. It is nondeterministic because an ambiguous claim
// may or may not have won.
var model = (&porcupine.NondeterministicModel{
	Partition: partition,
	Init:      func() []any { return []any{false} },
	Step: func(state, _, output any) []any {
		held := state.(bool)
		switch output.(Outcome) {
		case Won: // only a free slot can be won
			if held {
				return nil
			}
			return []any{true}
		case Refused: // only a held slot can be refused
			if !held {
				return nil
			}
			return []any{true}
		default: // ambiguous: it won if it could, or it did not happen
			return []any{true, held}
		}
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("claim(%s) → %v", input.(claim).slot, output)
	},
}).ToModel()

// free is holderModel's state of a slot nobody holds.
const free = -1

// holderModel is model where the holder wins its own slot: a slot's state
// is who holds it; a claim wins a free slot, or the slot its own client
// holds already (it gets its hold back), and is refused only a slot
// another client holds.
var holderModel = (&porcupine.NondeterministicModel{
	Partition: partition,
	Init:      func() []any { return []any{free} },
	Step: func(state, input, output any) []any {
		holder, by := state.(int), input.(claim).client
		switch output.(Outcome) {
		case Won:
			if holder != free && holder != by {
				return nil
			}
			return []any{by}
		case Refused:
			if holder == free || holder == by {
				return nil
			}
			return []any{holder}
		default:
			if holder == free {
				return []any{by, free}
			}
			return []any{holder}
		}
	},
	DescribeOperation: func(input, output any) string {
		in := input.(claim)
		return fmt.Sprintf("client %d claims %s → %v", in.client, in.slot, output)
	},
}).ToModel()

// Recorder collects a history from concurrent clients.
type Recorder struct {
	mu    sync.Mutex
	ops   []porcupine.Operation
	t0    time.Time
	model porcupine.Model
}

// NewRecorder starts a history in which every claim of a held slot is
// refused: clients are told apart only for the record.
func NewRecorder() *Recorder { return &Recorder{t0: time.Now(), model: model} }

// NewHolderRecorder starts a history in which the holder wins its own
// slot: a client claiming again a slot it holds gets its hold back (Won),
// and only other clients are refused. Client numbers name the clients
// (the holders), not the goroutines.
func NewHolderRecorder() *Recorder { return &Recorder{t0: time.Now(), model: holderModel} }

// Claim runs do, timing it, and records its outcome for slot.
func (r *Recorder) Claim(client int, slot string, do func() Outcome) Outcome {
	call := time.Since(r.t0).Nanoseconds()
	out := do()
	if out == NotSent {
		return out
	}
	ret := time.Since(r.t0).Nanoseconds()
	r.mu.Lock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: claim{slot, client}, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
	return out
}

// Len is the number of recorded claims.
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
	switch porcupine.CheckOperationsTimeout(r.model, ops, timeout) {
	case porcupine.Ok:
		return nil
	case porcupine.Illegal:
		return fmt.Errorf("claimcheck: %d claims are not linearizable: a claim won a held slot or was refused a free one", len(ops))
	default:
		return fmt.Errorf("claimcheck: the check of %d claims did not finish within %s", len(ops), timeout)
	}
}
