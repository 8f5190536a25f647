package caps

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/door"
	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/actors/service/fault"
)

// fakeQuota answers takes under refuse with a refusal (a wait of a
// minute) and others with a grant whose lease held prev before; it
// records every request.
type fakeQuota struct {
	mu     sync.Mutex
	refuse map[string]bool
	prev   int64
	asked  []string
}

func (f *fakeQuota) door() door.Door {
	return door.Func(func(_ context.Context, key string, msg any) (any, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		// Caps are counted in memory: a grant must not wait for a write.
		if !strings.HasPrefix(key, quota.MemoryPrefix) {
			return nil, errors.New("a cap's key outside quota.MemoryPrefix: " + key)
		}
		key = strings.TrimPrefix(key, quota.MemoryPrefix)
		switch m := msg.(type) {
		case *quota.Take:
			f.asked = append(f.asked, "take "+key+" "+m.Lease)
			if f.refuse[key] {
				return &quota.Reply{Used: m.Limit, RetryAfter: time.Minute}, nil
			}
			return &quota.Reply{OK: true, Prev: f.prev}, nil
		case *quota.Release:
			f.asked = append(f.asked, "release "+key+" "+m.Leases[0])
			return &quota.Reply{OK: true}, nil
		}
		return nil, errors.New("unexpected")
	})
}

// TestARefusalSetsBackTheOtherCaps: a take refused by one cap is a 429 of
// the caller's code with the wait, and the caps it had taken are set
// back before it returns (released when the lease was new, set to what
// it held otherwise); an Undo does the same after a grant.
func TestARefusalSetsBackTheOtherCaps(t *testing.T) {
	f := &fakeQuota{refuse: map[string]bool{"ip": true}}
	g, err := New(quota.NewClient(f.door()), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Take(context.Background(), fault.CodeHoldLimit, "ap1", 1, time.Minute,
		Check{Name: "holds_per_client", Key: "client", Limit: 2}, Check{Name: "holds_per_ip", Key: "ip", Limit: 2},
		Check{Name: "off", Key: "off", Limit: 0})
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != fault.CodeHoldLimit || fe.RetryAfter != time.Minute || fe.Details.(map[string]any)["cap"] != "holds_per_ip" {
		t.Fatalf("refusal: %#v", err)
	}
	if want := "release client ap1"; f.asked[len(f.asked)-1] != want || len(f.asked) != 3 {
		t.Fatalf("asked %v, want the client's cap released last", f.asked)
	}

	f.refuse, f.prev, f.asked = nil, 3, nil
	undo, err := g.Take(context.Background(), fault.CodeReservationLimit, "", 5, time.Minute,
		Check{Name: "units_per_cart", Key: "cart", Limit: 20, Lease: "oil"})
	if err != nil || undo == nil {
		t.Fatal(err)
	}
	undo()
	if len(f.asked) != 2 || f.asked[1] != "take cart oil" {
		t.Fatalf("undo asked %v, want the line set back to its 3 units", f.asked)
	}
}

func TestIPKeyCountsAnIPv6SubscriberOnce(t *testing.T) {
	for in, want := range map[string]string{"": "", "198.51.100.7": "198.51.100.7", "2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64"} {
		if got := IPKey(in); got != want {
			t.Errorf("IPKey(%q) = %q, want %q", in, got, want)
		}
	}
}
