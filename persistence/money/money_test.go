package money

import (
	"errors"
	"math"
	"testing"
)

func TestTaxRoundsHalfUpPerLine(t *testing.T) {
	for _, tc := range []struct {
		qty, unit int64
		bps       int
		want      int64
		rationale string
	}{
		{1, 4_500_000, 1900, 855_000, "exact"},
		{1, 3_333_333, 500, 166_667, "166666.65 rounds up"},
		{1, 10, 500, 1, "0.5 rounds up"},
		{1, 9, 500, 0, "0.45 rounds down"},
		{3, 3_333_333, 1900, 1_900_000, "per line, not per unit: 1899999.81"},
		{0, 4_500_000, 1900, 0, "no units"},
		{1, Max, 10000, Max, "the largest amount at 100% stays exact"},
	} {
		if got, err := Tax(tc.qty, tc.unit, tc.bps); err != nil || got != tc.want {
			t.Errorf("%s: Tax(%d, %d, %d) = %d, %v; want %d", tc.rationale, tc.qty, tc.unit, tc.bps, got, err, tc.want)
		}
	}
}

func TestOutOfRangeIsRefusedNotWrapped(t *testing.T) {
	for name, f := range map[string]func() (int64, error){
		"price at 2^63-1":         func() (int64, error) { return Times(1, math.MaxInt64) },
		"product wraps int64":     func() (int64, error) { return Times(99, math.MaxInt64/50) },
		"product above Max":       func() (int64, error) { return Times(2, Max) },
		"negative quantity":       func() (int64, error) { return Times(-1, 5) },
		"tax of 2^63-1":           func() (int64, error) { return Tax(1, math.MaxInt64, 1900) },
		"tax rate above 100%":     func() (int64, error) { return Tax(1, 100, 10001) },
		"sum above Max":           func() (int64, error) { var s Sum; s.Add(Max); s.Add(1); return s.Total() },
		"sum of an invalid value": func() (int64, error) { var s Sum; s.Add(-5); return s.Total() },
		"below zero":              func() (int64, error) { var s Sum; s.Add(5); s.Sub(6); return s.Total() },
		"sticky":                  func() (int64, error) { var s Sum; s.Add(Max); s.Add(Max); s.Sub(Max); return s.Total() },
	} {
		if v, err := f(); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s: %d, %v; want ErrOutOfRange", name, v, err)
		}
	}
}

func TestBillTotals(t *testing.T) {
	var b Bill
	b.Line(2, 50_000, 1900) // 100,000 + 19,000
	b.Line(1, 10, 500)      // 10 + 1 (0.5 rounds up)
	sub, tax, due, err := b.Totals(1_000)
	if err != nil || sub != 100_010 || tax != 19_001 || due != 118_011 {
		t.Fatalf("totals %d %d %d %v", sub, tax, due, err)
	}
	if _, _, _, err := b.Totals(200_000); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("credit above the amount due: %v", err)
	}
	var big Bill
	big.Line(99, Max/2, 1900)
	if _, _, _, err := big.Totals(0); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("a cart of 99 × 5·10^11: %v", err)
	}
}
