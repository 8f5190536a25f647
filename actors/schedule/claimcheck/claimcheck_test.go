package claimcheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestCheck(t *testing.T) {
	op := func(slot string, call, ret int64, out Outcome) porcupine.Operation {
		return porcupine.Operation{Input: claim{slot}, Call: call, Output: out, Return: ret}
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
			r := &Recorder{ops: tc.ops}
			if err := r.Check(time.Second); (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
