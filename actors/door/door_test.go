package door

import (
	"context"
	"errors"
	"strings"
	"testing"
)

type ping struct{}
type pong struct{ n int }

func TestAskTypesTheReply(t *testing.T) {
	d := Func(func(_ context.Context, id string, msg any) (any, error) {
		if id == "down" {
			return nil, errors.New("unreachable")
		}
		if _, ok := msg.(*ping); ok {
			return &pong{n: 7}, nil
		}
		return "unexpected", nil
	})
	r, err := Ask[*pong](context.Background(), d, "a", &ping{})
	if err != nil || r.n != 7 {
		t.Fatalf("Ask = %v, %v; want pong 7", r, err)
	}
	if _, err := Ask[*pong](context.Background(), d, "down", &ping{}); err == nil || err.Error() != "unreachable" {
		t.Fatalf("transport error = %v, want it unchanged", err)
	}
	_, err = Ask[*pong](context.Background(), d, "a", 42)
	if err == nil || !strings.Contains(err.Error(), "answered string") {
		t.Fatalf("wrong reply type: err = %v, want one naming the reply type", err)
	}
}
