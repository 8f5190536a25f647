package jsretry

import (
	"context"
	"errors"
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
