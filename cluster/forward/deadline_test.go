package forward

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/messages"
)

// The receiver counts the time left on its own clock: a sender whose
// clock runs 10 s ahead (its absolute deadline already past here) still
// gets its 5 s; an older sender's absolute deadline is honoured as sent.
func TestRequestDeadlineCountsTheTimeLeftOnThisClock(t *testing.T) {
	now := time.Now()
	skewed := &messages.ForwardRequest{Deadline: timestamppb.New(now.Add(-5 * time.Second)), Timeout: durationpb.New(5 * time.Second)}
	if d, ok := requestDeadline(skewed); !ok || d.Before(now.Add(4*time.Second)) || d.After(time.Now().Add(5*time.Second)) {
		t.Fatalf("time left 5s from a skewed sender: deadline in %v (ok %v)", time.Until(d), ok)
	}
	abs := now.Add(3 * time.Second)
	if d, ok := requestDeadline(&messages.ForwardRequest{Deadline: timestamppb.New(abs)}); !ok || !d.Equal(abs) {
		t.Fatalf("absolute deadline only: %v %v", d, ok)
	}
	if _, ok := requestDeadline(&messages.ForwardRequest{}); ok {
		t.Fatal("a request without deadline or time left has a deadline")
	}
}
