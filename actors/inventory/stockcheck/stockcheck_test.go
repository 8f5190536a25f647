package stockcheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestCheck(t *testing.T) {
	res := func(qty, call, ret int64, out Outcome) porcupine.Operation {
		return porcupine.Operation{Input: op{variant: "v", qty: qty}, Call: call, Output: out, Return: ret}
	}
	rel := func(qty, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: op{variant: "v", qty: qty, release: true}, Call: call, Output: Granted, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"within stock", []porcupine.Operation{res(1, 0, 10, Granted), res(1, 20, 30, Granted)}, true},
		{"beyond stock", []porcupine.Operation{res(2, 0, 10, Granted), res(1, 20, 30, Granted)}, false},
		{"refused while stock remained", []porcupine.Operation{res(1, 0, 10, Refused)}, false},
		{"refused after the last unit", []porcupine.Operation{res(2, 0, 10, Granted), res(1, 20, 30, Refused)}, true},
		{"concurrent refusal may follow a grant", []porcupine.Operation{res(1, 0, 10, Refused), res(2, 5, 15, Granted)}, true},
		{"a release gives units back", []porcupine.Operation{res(2, 0, 10, Granted), rel(1, 20, 30), res(1, 40, 50, Granted)}, true},
		{"ambiguous may have taken the units", []porcupine.Operation{res(2, 0, 10, Ambiguous), res(1, 20, 30, Refused)}, true},
		{"ambiguous cannot take them twice", []porcupine.Operation{res(2, 0, 10, Ambiguous), res(2, 20, 30, Granted), res(1, 40, 50, Granted)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Recorder{ops: tc.ops, initial: map[string]int64{"v": 2}}
			if err := r.Check(time.Second); (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
