package wire

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var (
	errA = errors.New("a")
	errB = errors.New("b")
)

var table = Sentinels[int]{{Code: 1, Err: errA}, {Code: 2, Err: errB}}

// An error wrapping several sentinels travels as all their codes and
// comes back matching each of them, with its text; unknown codes are
// dropped.
func TestErrorsRoundTripThroughCodes(t *testing.T) {
	err := fmt.Errorf("both: %w", errors.Join(errA, errB))
	codes := table.Codes(err)
	if len(codes) != 2 || codes[0] != 1 || codes[1] != 2 {
		t.Fatalf("codes %v", codes)
	}
	got := Error(err.Error(), table.Errs(append(codes, 9)...))
	if !errors.Is(got, errA) || !errors.Is(got, errB) || got.Error() != err.Error() {
		t.Fatalf("decoded %v", got)
	}
	if plain := Error("x", table.Errs(table.Codes(errors.New("x"))...)); errors.Is(plain, errA) || errors.Is(plain, errB) {
		t.Fatalf("an error without sentinels decoded as one: %v", plain)
	}
}

func TestTimestampsKeepZeroAbsent(t *testing.T) {
	if TS(time.Time{}) != nil || !TM(nil).IsZero() {
		t.Fatal("the zero time must travel as absent")
	}
	now := time.Now().UTC()
	if got := TM(TS(now)); !got.Equal(now) {
		t.Fatalf("round trip %v, want %v", got, now)
	}
}
