package jsretry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDoRetriesUntilSuccess(t *testing.T) {
	calls := 0
	err := Do(context.Background(), func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Fatal("a try has no deadline")
		}
		if calls++; calls < 3 {
			return errors.New("no responders")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want success on the third", err, calls)
	}
}

func TestDoStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	want := errors.New("still failing")
	if err := Do(ctx, func(context.Context) error { return want }); !errors.Is(err, want) {
		t.Fatalf("err %v, want the last try's error", err)
	}
}

func TestWhileElectingRetriesOnlyTimeouts(t *testing.T) {
	tries := 0
	v, err := WhileElecting(t.Context(), func(ctx context.Context) (int, error) {
		// Each try has its own short deadline, not the client's default.
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > Try {
			t.Fatalf("try %d: deadline %v (set: %v), want within %v", tries, d, ok, Try)
		}
		if tries++; tries < 3 {
			return 0, fmt.Errorf("create consumer: %w", context.DeadlineExceeded)
		}
		return 7, nil
	})
	if v != 7 || err != nil || tries != 3 {
		t.Fatalf("got %d %v after %d tries", v, err, tries)
	}
	tries = 0
	boom := errors.New("stream not found")
	if _, err := WhileElecting(t.Context(), func(context.Context) (int, error) { tries++; return 0, boom }); !errors.Is(err, boom) || tries != 1 {
		t.Fatalf("a permanent error: %v after %d tries", err, tries)
	}
}
