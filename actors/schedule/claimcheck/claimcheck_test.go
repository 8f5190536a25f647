package claimcheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestCheck(t *testing.T) {
	op := func(slot string, call, ret int64, out Outcome) porcupine.Operation {
		return porcupine.Operation{Input: claim{slot, 0}, Call: call, Output: out, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"one winner, later refusals", []porcupine.Operation{op("a", 0, 10, Won), op("a", 20, 30, Refused)}, true},
		{"concurrent: refusal may precede the win", []porcupine.Operation{op("a", 0, 10, Refused), op("a", 5, 15, Won)}, true},
		{"two winners", []porcupine.Operation{op("a", 0, 10, Won), op("a", 20, 30, Won)}, false},
		{"refused a free slot", []porcupine.Operation{op("a", 0, 10, Refused), op("a", 20, 30, Won)}, false},
		{"slots are independent", []porcupine.Operation{op("a", 0, 10, Won), op("b", 0, 10, Won)}, true},
		{"ambiguous may explain a refusal", []porcupine.Operation{op("a", 0, 10, Ambiguous), op("a", 20, 30, Refused)}, true},
		{"false refusal before anyone", []porcupine.Operation{op("a", 0, 10, Refused)}, false},
		{"ambiguous that did not happen", []porcupine.Operation{op("a", 0, 10, Ambiguous), op("a", 20, 30, Won)}, true},
		{"ambiguous cannot explain two wins", []porcupine.Operation{op("a", 0, 10, Ambiguous), op("a", 20, 30, Won), op("a", 40, 50, Won)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Recorder{ops: tc.ops, model: model}
			if err := r.Check(time.Second); (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestCheckHolderWins: with NewHolderRecorder a client claiming a slot it
// holds wins it again, and only other clients are refused.
func TestCheckHolderWins(t *testing.T) {
	op := func(client int, call, ret int64, out Outcome) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: claim{"a", client}, Call: call, Output: out, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"the holder wins its own slot again", []porcupine.Operation{op(1, 0, 10, Won), op(1, 20, 30, Won)}, true},
		{"another is refused", []porcupine.Operation{op(1, 0, 10, Won), op(2, 20, 30, Refused)}, true},
		{"the holder refused its own slot", []porcupine.Operation{op(1, 0, 10, Won), op(1, 20, 30, Refused)}, false},
		{"two clients win one slot", []porcupine.Operation{op(1, 0, 10, Won), op(2, 20, 30, Won)}, false},
		{"refused a free slot", []porcupine.Operation{op(2, 0, 10, Refused)}, false},
		{"an ambiguous claim may have taken it", []porcupine.Operation{op(1, 0, 10, Ambiguous), op(2, 20, 30, Refused), op(1, 40, 50, Won)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Recorder{ops: tc.ops, model: holderModel}
			if err := r.Check(time.Second); (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
