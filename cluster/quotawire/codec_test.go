package quotawire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/cluster/route/routetest"
	"github.com/spa-engine/spa/messages"
)

func viaBytes[M proto.Message](t *testing.T, m M, into M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
	return into
}

func TestCodecCarriesRequestsAndRefusals(t *testing.T) {
	routetest.Carries(t, Codec(), "otp/ip/192.0.2.1", "quota/otp/ip/192.0.2.1", &quota.Take{Units: 1, Limit: 20, TTL: time.Hour},
		&quota.Reply{Err: fmt.Errorf("%w: store down", quota.ErrUnavailable)}, quota.ErrUnavailable,
		func(r any) error { return r.(*quota.Reply).Err })
	for _, msg := range []any{
		&quota.Take{Units: 1, Limit: 20, TTL: time.Hour},
		&quota.Take{Lease: "ap1", Units: 3, Limit: 10, TTL: 10 * time.Minute},
		&quota.Release{Leases: []string{"ap1", "ap2"}},
	} {
		req, err := Encode("k", msg)
		if err != nil {
			t.Fatal(err)
		}
		key, got, err := Decode(viaBytes(t, req, &messages.QuotaRequest{}))
		if err != nil || key != "k" || !reflect.DeepEqual(got, msg) {
			t.Fatalf("%T: got %q %#v %v", msg, key, got, err)
		}
	}
	for _, reply := range []*quota.Reply{{OK: true, Used: 3, Prev: 2}, {Used: 20, RetryAfter: 42 * time.Second}} {
		enc, err := EncodeReply(reply)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeReply(viaBytes(t, enc, &messages.QuotaReply{}))
		if err != nil || !reflect.DeepEqual(got, reply) {
			t.Fatalf("got %#v %v", got, err)
		}
	}
	invalid, _ := EncodeReply(&quota.Reply{Err: fmt.Errorf("%w: limit 0", quota.ErrInvalid)})
	got, _ := DecodeReply(invalid)
	if err := got.(*quota.Reply).Err; !errors.Is(err, quota.ErrInvalid) || errors.Is(err, quota.ErrUnavailable) {
		t.Fatalf("invalid decoded as %v", err)
	}
}

// TestOnlyLeasesAreResent: a named lease or a release sets the same state
// again, so a timed-out try may be resent; an anonymous window event
// would count twice, so it is not.
func TestOnlyLeasesAreResent(t *testing.T) {
	c := Codec()
	if k := c.IdempotencyKey(&quota.Take{Units: 1, Limit: 3, TTL: time.Hour}); k != "" {
		t.Fatalf("window event resendable as %q", k)
	}
	if k := c.IdempotencyKey(&quota.Take{Lease: "ap1", Units: 1, Limit: 3, TTL: time.Hour}); k == "" {
		t.Fatal("a lease is not resent")
	}
	if k := c.IdempotencyKey(&quota.Release{Leases: []string{"ap1"}}); k == "" {
		t.Fatal("a release is not resent")
	}
	if _, err := Encode("k", "hello"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("string: %v", err)
	}
	if _, _, err := Decode(&messages.QuotaRequest{Request: &messages.QuotaRequest_Release{Release: &messages.QuotaRelease{}}}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("no key: %v", err)
	}
}
