// Package routetest checks a route.Codec the way the router uses it: the
// wire packages (calwire, shopwire) share it so each proves
// its codecs place and carry their kind's messages alike.
package routetest

import (
	"errors"
	"testing"

	"github.com/spa-engine/spa/cluster/route"
)

// Carries checks that c places id under key, carries msg to the owner and
// reply back, and keeps the reply's refusal: refusalOf reads it from the
// decoded reply and it must be refusal. A reply must not decode as a
// request.
func Carries(t *testing.T, c route.Codec, id, key string, msg, reply any, refusal error, refusalOf func(any) error) {
	t.Helper()
	if got := c.Key(id); got != key {
		t.Fatalf("placement key %q, want %q", got, key)
	}
	req, err := c.Request(id, msg)
	if err != nil {
		t.Fatal(err)
	}
	if req.ProtoReflect().Descriptor() != c.Example.ProtoReflect().Descriptor() {
		t.Fatalf("request %T, example %T", req, c.Example)
	}
	if gotID, got, err := c.DecodeRequest(req); err != nil || gotID != id || got == nil {
		t.Fatalf("decoded %q %T %v", gotID, got, err)
	}
	rep, err := c.Reply(reply)
	if err != nil {
		t.Fatal(err)
	}
	back, err := c.DecodeReply(rep)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(refusalOf(back), refusal) {
		t.Fatalf("reply decoded as %#v, want its refusal kept", back)
	}
	// The other kind's messages are not this codec's.
	if _, _, err := c.DecodeRequest(rep); err == nil {
		t.Fatal("a reply decoded as a request")
	}
}
