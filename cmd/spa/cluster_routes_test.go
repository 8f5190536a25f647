package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/cart"
	"github.com/spa-engine/spa/actors/inventory"
	"github.com/spa-engine/spa/actors/resource"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/forward"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/sessionwire"
	"github.com/spa-engine/spa/cluster/shopwire"
)

// recordingLocal is a directory that answers with a fixed reply or error
// and records what it was asked.
type recordingLocal struct {
	mu    sync.Mutex
	asked []any
	reply any
	err   error
}

func (l *recordingLocal) Ask(_ context.Context, _ string, msg any) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, msg)
	return l.reply, l.err
}

func (l *recordingLocal) Invalidate(string)                    {}
func (l *recordingLocal) InvalidateWhere(func(id string) bool) {}
func (l *recordingLocal) Live() int                            { return 0 }

func (l *recordingLocal) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.asked)
}

// servingRouter serves every partition locally (the split-brain hook), so
// the doors are tested without a cluster.
func servingRouter(kind string, local route.Local, codec route.Codec) *route.Router {
	return route.New(route.Config{Kind: kind, Local: local, Placement: &lazyPlacement{}, Codec: codec, ServeAll: true})
}

func TestSessionsBeforeTheirDirectoryAreRetryable(t *testing.T) {
	var l lateSessions
	if _, err := l.Ask(context.Background(), "k", &session.RequestCode{}); !errors.Is(err, forward.ErrUnavailable) {
		t.Fatalf("before start: %v, want a retryable UNAVAILABLE", err)
	}
	l.Invalidate("k") // nothing to retire, and no panic
}

func TestRoutedSessionsAnswerLikeTheDirectory(t *testing.T) {
	codec := codecOf(session.PlacementKey, sessionwire.Encode, sessionwire.Decode, sessionwire.EncodeReply, sessionwire.DecodeReply, nil)
	limited := &otp.RetryError{Err: otp.ErrSendRateLimited, RetryAfter: time.Minute}
	local := &recordingLocal{reply: &session.RequestCodeReply{Err: limited}}
	s := routedSessions{servingRouter("session", local, codec)}
	r := s.RequestCode(context.Background(), "k", &session.RequestCode{Phone: "+573001234567"})
	if !errors.Is(r.Err, otp.ErrSendRateLimited) || local.count() != 1 {
		t.Fatalf("reply %v after %d asks", r.Err, local.count())
	}
	// An actor that cannot be reached, or answers the wrong type, is
	// ErrUnavailable: nothing was sent.
	local.reply, local.err = nil, errors.New("directory stopped")
	if r := s.RequestCode(context.Background(), "k", &session.RequestCode{}); !errors.Is(r.Err, session.ErrUnavailable) {
		t.Fatalf("unreachable: %v", r.Err)
	}
	local.reply, local.err = &session.RequestCodeReply{}, nil
	if v := s.VerifyCode(context.Background(), "k", &session.VerifyCode{}); !errors.Is(v.Err, session.ErrUnavailable) {
		t.Fatalf("wrong reply type: %v", v.Err)
	}
}

func TestRoutedInventoryTellDeliversWithoutWaiting(t *testing.T) {
	codec := codecOf(inventory.PlacementKey, shopwire.EncodeInventory, shopwire.DecodeInventory, shopwire.EncodeInventoryReply,
		shopwire.DecodeInventoryReply, inventoryKey)
	local := &recordingLocal{reply: &inventory.Reply{}}
	inv := &routedInventory{log: slog.New(slog.NewTextHandler(io.Discard, nil)), timeout: time.Second}
	inv.r.Store(servingRouter("inventory", local, codec))
	inv.Tell("lav-50", &inventory.Consumed{ReservationIDs: []string{"r1"}})
	testwait.For(t, 5*time.Second, "the notice to reach the inventory actor", func() bool { return local.count() > 0 })
	if c, ok := local.asked[0].(*inventory.Consumed); !ok || c.ReservationIDs[0] != "r1" {
		t.Fatalf("delivered %#v", local.asked[0])
	}
}

// TestOnlyRepeatableRequestsCarryAnIdempotencyKey: a forwarded try that
// times out is resent only with a key (forward.Request), so requests that
// must not be applied twice have none and the others do.
func TestOnlyRepeatableRequestsCarryAnIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(any) string
		msg  any
		want bool
	}{
		{"schedule hold", scheduleKey, &schedule.Hold{AppointmentID: "a"}, true},
		{"schedule slots", scheduleKey, &schedule.SlotsQuery{}, true},
		{"resource full", resourceKey, &resource.FullQuery{}, true},
		{"inventory reserve", inventoryKey, &inventory.Reserve{ReservationID: "r", Qty: 1}, true},
		{"inventory level", inventoryKey, &inventory.LevelQuery{}, true},
		{"cart checkout", cartKey, &cart.Checkout{OrderID: "o"}, true},
		{"cart get", cartKey, &cart.Get{}, true},
		{"cart set line", cartKey, &cart.SetLine{VariantID: "v", Qty: 2}, true},
		{"cart create", cartKey, &cart.Create{}, false},
		{"cart surrender", cartKey, &cart.Surrender{IntoCartID: "c"}, false},
	} {
		if got := tc.key(tc.msg) != ""; got != tc.want {
			t.Errorf("%s: keyed %v, want %v", tc.name, got, tc.want)
		}
	}
}
