package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/door/doortest"
)

// TestClientFoldsUnreachedIntoTheReply: the actor's reply comes back as it
// is, a refusal included; a door that fails, or a reply of another type,
// comes back as a reply whose Err wraps ErrUnavailable (nothing was sent).
func TestClientFoldsUnreachedIntoTheReply(t *testing.T) {
	ctx := context.Background()
	d := &doortest.Recorder{}
	c := NewClient(d)

	limited := &RequestCodeReply{Err: &otp.RetryError{Err: otp.ErrSendRateLimited, RetryAfter: time.Minute}}
	d.Reply = limited
	req := &RequestCode{Phone: phone}
	if r := c.RequestCode(ctx, "k", req); r != limited || d.ID != "k" || d.Msg != req {
		t.Fatalf("request = %+v after sending %#v to %q; want the actor's reply", r, d.Msg, d.ID)
	}
	verified := &VerifyReply{Result: otp.ResultOK}
	d.Reply = verified
	ver := &VerifyCode{Phone: phone, Code: "123456"}
	if r := c.VerifyCode(ctx, "k", ver); r != verified || d.Msg != ver {
		t.Fatalf("verify = %+v after sending %#v; want the actor's reply", r, d.Msg)
	}

	d.Reply = &RequestCodeReply{} // the wrong reply for a VerifyCode
	if r := c.VerifyCode(ctx, "k", ver); r == nil || !errors.Is(r.Err, ErrUnavailable) || !strings.Contains(r.Err.Error(), "answered") {
		t.Fatalf("wrong reply type: %+v; want ErrUnavailable naming it", r)
	}
	d.Reply = verified
	if r := c.RequestCode(ctx, "k", req); r == nil || !errors.Is(r.Err, ErrUnavailable) {
		t.Fatalf("wrong reply type: %+v; want ErrUnavailable", r)
	}
	d.Reply, d.Err = nil, errors.New("directory stopped")
	if r := c.RequestCode(ctx, "k", req); r == nil || !errors.Is(r.Err, ErrUnavailable) || !errors.Is(r.Err, d.Err) {
		t.Fatalf("failing door: %+v; want ErrUnavailable wrapping its error", r)
	}
	if r := c.VerifyCode(ctx, "k", ver); r == nil || !errors.Is(r.Err, ErrUnavailable) || !errors.Is(r.Err, d.Err) {
		t.Fatalf("failing door: %+v; want ErrUnavailable wrapping its error", r)
	}
}

// TestClientOverTheDirectory: a code requested and checked through the
// client reaches a real session actor.
func TestClientOverTheDirectory(t *testing.T) {
	f := newFixture(t)
	c := NewClient(f.dir)
	if r := c.RequestCode(context.Background(), key, &RequestCode{Phone: phone}); r.Err != nil || r.ExpiresIn != 5*time.Minute {
		t.Fatalf("request = %+v", r)
	}
	if r := c.VerifyCode(context.Background(), key, &VerifyCode{Phone: phone, Code: f.out.last(phone)}); r.Err != nil || r.Result != otp.ResultOK {
		t.Fatalf("verify = %+v", r)
	}
}
