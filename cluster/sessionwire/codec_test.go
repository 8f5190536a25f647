package sessionwire

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/partition"
	"github.com/spa-engine/spa/cluster/route"
)

func TestCodecPlacesByPhoneKeyAndResendsNothing(t *testing.T) {
	c := Codec()
	if got := c.Key("abc"); got != "session/abc" {
		t.Fatalf("placement key %q", got)
	}
	for _, m := range []any{&session.RequestCode{Phone: "+573001234567"}, &session.VerifyCode{Phone: "+573001234567", Code: "1"}} {
		if k := c.IdempotencyKey(m); k != "" {
			t.Fatalf("%T carries idempotency key %q: a timed-out code request would be resent", m, k)
		}
	}
	req, err := c.Request("abc", &session.RequestCode{Phone: "+573001234567"})
	if err != nil {
		t.Fatal(err)
	}
	if key, msg, err := c.DecodeRequest(req); err != nil || key != "abc" || msg.(*session.RequestCode).Phone != "+573001234567" {
		t.Fatalf("decoded %q %#v %v", key, msg, err)
	}
	limited := &otp.RetryError{Err: otp.ErrSendRateLimited, RetryAfter: time.Minute}
	rep, err := c.Reply(&session.RequestCodeReply{Err: limited})
	if err != nil {
		t.Fatal(err)
	}
	back, err := c.DecodeReply(rep)
	if r, ok := back.(*session.RequestCodeReply); err != nil || !ok || !errors.Is(r.Err, otp.ErrSendRateLimited) {
		t.Fatalf("reply decoded as %#v, %v", back, err)
	}
}

// recordingLocal is a session directory that answers with a fixed reply
// or error and counts what it was asked.
type recordingLocal struct {
	mu    sync.Mutex
	asked int
	reply any
	err   error
}

func (l *recordingLocal) Ask(context.Context, string, any) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked++
	return l.reply, l.err
}

func (l *recordingLocal) Invalidate(string)                    {}
func (l *recordingLocal) InvalidateWhere(func(id string) bool) {}
func (l *recordingLocal) Live() int                            { return 0 }

type everywhere struct{}

func (everywhere) PartitionOf(key string) int {
	return partition.PartitionOf(key, partition.DefaultPartitions)
}
func (everywhere) Holds(int) (uint64, bool) { return 1, true }

// TestClientOverTheRouterAnswersLikeTheDirectory: the gateway's door in a
// cluster (session.Client over the session router) passes the actor's
// refusal on, and turns an actor it cannot reach, or a reply of the wrong
// type, into ErrUnavailable: nothing was sent.
func TestClientOverTheRouterAnswersLikeTheDirectory(t *testing.T) {
	limited := &otp.RetryError{Err: otp.ErrSendRateLimited, RetryAfter: time.Minute}
	local := &recordingLocal{reply: &session.RequestCodeReply{Err: limited}}
	s := session.NewClient(route.New(route.Config{Kind: "session", Local: local, Placement: everywhere{}, Codec: Codec(), ServeAll: true}))
	r := s.RequestCode(context.Background(), "k", &session.RequestCode{Phone: "+573001234567"})
	if !errors.Is(r.Err, otp.ErrSendRateLimited) || local.asked != 1 {
		t.Fatalf("reply %v after %d asks", r.Err, local.asked)
	}
	local.reply, local.err = nil, errors.New("directory stopped")
	if r := s.RequestCode(context.Background(), "k", &session.RequestCode{}); !errors.Is(r.Err, session.ErrUnavailable) {
		t.Fatalf("unreachable: %v", r.Err)
	}
	local.reply, local.err = &session.RequestCodeReply{}, nil
	if v := s.VerifyCode(context.Background(), "k", &session.VerifyCode{}); !errors.Is(v.Err, session.ErrUnavailable) {
		t.Fatalf("wrong reply type: %v", v.Err)
	}
}
