// Package money is the arithmetic of amounts in COP minor units: every
// amount is an int64 between 0 and Max, and every sum, product and tax is
// checked, so no total can wrap around to a negative number. It is a leaf
// (no imports of this module) so the store's input rules and the actors
// share it.
package money

import (
	"errors"
	"math/bits"
)

// Max is the largest amount the engine accepts anywhere, in minor units
// (10^12: ten thousand million pesos, far above any spa's price, cart or
// balance, and far below int64's 9.2·10^18, so a product of an amount and a
// quantity of up to a million still fits).
const Max int64 = 1_000_000_000_000

// ErrOutOfRange is returned when an amount, or a total made of amounts,
// falls outside 0..Max.
var ErrOutOfRange = errors.New("money: amount out of range (0 to 10^12 minor units)")

// Valid reports whether v is an amount: 0 <= v <= Max.
func Valid(v int64) bool { return v >= 0 && v <= Max }

// Times is qty units of unit, checked: ErrOutOfRange when either is
// negative or the product exceeds Max.
func Times(qty, unit int64) (int64, error) {
	if qty < 0 || unit < 0 {
		return 0, ErrOutOfRange
	}
	hi, lo := bits.Mul64(uint64(qty), uint64(unit))
	if hi != 0 || lo > uint64(Max) {
		return 0, ErrOutOfRange
	}
	return int64(lo), nil
}

// Tax is the tax on qty units of unit at rateBps basis points, rounded
// half up to the minor unit. ErrOutOfRange when qty × unit is not an
// amount or the rate is outside 0..10000 (within them the product with the
// rate stays below 10^16: no overflow).
func Tax(qty, unit int64, rateBps int) (int64, error) {
	base, err := Times(qty, unit)
	if err != nil || rateBps < 0 || rateBps > 10000 {
		return 0, ErrOutOfRange
	}
	return (base*int64(rateBps) + 5000) / 10000, nil
}

// Sum adds and subtracts amounts, remembering the first time the running
// total left 0..Max. The zero Sum is 0.
type Sum struct {
	total int64
	err   error
}

// Add adds v (which must itself be an amount).
func (s *Sum) Add(v int64) {
	if s.err == nil && (!Valid(v) || s.total > Max-v) {
		s.err = ErrOutOfRange
	}
	s.total += v
}

// Sub subtracts v (which must itself be an amount); going below zero is
// out of range too.
func (s *Sum) Sub(v int64) {
	if s.err == nil && (!Valid(v) || v > s.total) {
		s.err = ErrOutOfRange
	}
	s.total -= v
}

// AddResult adds the result of Times or Tax, keeping its error.
func (s *Sum) AddResult(v int64, err error) {
	if err != nil && s.err == nil {
		s.err = err
	}
	s.Add(v)
}

// Total is the sum, or ErrOutOfRange if it ever left 0..Max.
func (s Sum) Total() (int64, error) {
	if s.err != nil {
		return 0, s.err
	}
	return s.total, nil
}

// Bill totals priced lines the way an order charges them: each line's
// subtotal (qty × unit) and its tax rounded half up on the line, not per
// unit, so a partial refund of a line is reproducible from the line. The
// zero Bill has no lines.
type Bill struct{ sub, tax Sum }

// Line adds qty units of unit taxed at rateBps basis points.
func (b *Bill) Line(qty, unit int64, rateBps int) {
	b.sub.AddResult(Times(qty, unit))
	b.tax.AddResult(Tax(qty, unit, rateBps))
}

// Totals is the subtotal, the tax and what is due after credit (subtotal +
// tax − credit); ErrOutOfRange when any of them is not an amount, credit
// above the sum included.
func (b Bill) Totals(credit int64) (sub, tax, due int64, err error) {
	var d Sum
	d.AddResult(b.sub.Total())
	d.AddResult(b.tax.Total())
	d.Sub(credit)
	sub, tax, due = b.sub.total, b.tax.total, d.total
	_, err = d.Total()
	return sub, tax, due, err
}
