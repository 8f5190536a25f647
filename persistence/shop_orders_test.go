package persistence

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAllocateCredit(t *testing.T) {
	grants := []CreditGrant{{ID: "a", RemainingMinor: 300}, {ID: "b", RemainingMinor: 0}, {ID: "c", RemainingMinor: 500}}
	got, err := AllocateCredit(grants, 600)
	if err != nil || !reflect.DeepEqual(got, []CreditTake{{"a", 300}, {"c", 300}}) {
		t.Fatalf("600: %v, %v", got, err)
	}
	got, err = AllocateCredit(grants, 200)
	if err != nil || !reflect.DeepEqual(got, []CreditTake{{"a", 200}}) {
		t.Fatalf("200: %v, %v", got, err)
	}
	if _, err := AllocateCredit(grants, 801); !errors.Is(err, ErrInsufficientCredit) || !errors.Is(err, ErrRefused) {
		t.Fatalf("801: %v", err)
	}
}

func TestResolveReturn(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	stored := Return{ID: "r", Status: ReturnRequested, Version: 1,
		Lines: []ReturnLine{{OrderLineID: "a", Qty: 1}, {OrderLineID: "b", Qty: 2}}}
	out, err := ResolveReturn(stored, Return{ID: "r", Status: ReturnCompleted, RefundMinor: 10, ProcessedBy: "desk", UpdatedAt: at,
		Lines: []ReturnLine{{OrderLineID: "a"}, {OrderLineID: "b", Damaged: true, Qty: 99}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []ReturnLine{{OrderLineID: "a", Qty: 1}, {OrderLineID: "b", Qty: 2, Damaged: true}}
	if !reflect.DeepEqual(out.Lines, want) || out.Version != 2 || out.Status != ReturnCompleted {
		t.Fatalf("resolved %+v", out)
	}
	for name, r := range map[string]Return{
		"missing line":     {ID: "r", Status: ReturnCompleted, ProcessedBy: "desk", UpdatedAt: at, Lines: []ReturnLine{{OrderLineID: "a"}}},
		"foreign line":     {ID: "r", Status: ReturnCompleted, ProcessedBy: "desk", UpdatedAt: at, Lines: []ReturnLine{{OrderLineID: "a"}, {OrderLineID: "b"}, {OrderLineID: "c"}}},
		"back to request":  {ID: "r", Status: ReturnRequested, ProcessedBy: "desk", UpdatedAt: at},
		"no processor":     {ID: "r", Status: ReturnRejected, UpdatedAt: at},
		"refund on reject": {ID: "r", Status: ReturnRejected, RefundMinor: 1, ProcessedBy: "desk", UpdatedAt: at},
	} {
		if _, err := ResolveReturn(stored, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	done := stored
	done.Status = ReturnRejected
	if _, err := ResolveReturn(done, Return{ID: "r", Status: ReturnCompleted, ProcessedBy: "desk", UpdatedAt: at}); !errors.Is(err, ErrStatusMismatch) ||
		!errors.Is(err, ErrConflict) {
		t.Fatalf("resolving twice: %v", err)
	}
}
