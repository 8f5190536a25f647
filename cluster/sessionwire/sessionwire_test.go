package sessionwire

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/session"
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

func TestRequestsRoundTrip(t *testing.T) {
	for _, msg := range []any{
		&session.RequestCode{Phone: "+573001234567", Channel: sender.ChannelWhatsApp},
		&session.RequestCode{Phone: "+573001234567"},
		&session.VerifyCode{Phone: "+573001234567", Code: "123456"},
		&session.RequestCode{Phone: "+573001234567", Network: "203.0.113.0/24", Captcha: true},
		&session.VerifyCode{Phone: "+573001234567", Code: "123456", Network: "2001:db8:1::/48", Captcha: true},
	} {
		req, err := Encode("ab12", msg)
		if err != nil {
			t.Fatal(err)
		}
		key, got, err := Decode(viaBytes(t, req, &messages.SessionRequest{}))
		if err != nil || key != "ab12" || !reflect.DeepEqual(got, msg) {
			t.Fatalf("%T: got %q %#v %v", msg, key, got, err)
		}
	}
}

func TestRepliesRoundTrip(t *testing.T) {
	for _, reply := range []any{
		&session.RequestCodeReply{ExpiresIn: 5 * time.Minute},
		&session.VerifyReply{Result: otp.ResultOK},
		&session.VerifyReply{Result: otp.ResultLocked, RetryAfter: 15 * time.Minute},
		&session.VerifyReply{Result: otp.ResultWrong},
		&session.VerifyReply{Result: otp.ResultCaptchaRequired},
	} {
		enc, err := EncodeReply(reply)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeReply(viaBytes(t, enc, &messages.SessionReply{}))
		if err != nil || !reflect.DeepEqual(got, reply) {
			t.Fatalf("%T: got %#v %v", reply, got, err)
		}
	}
}

// TestErrorsKeepTheirSentinels covers every sentinel, and the rate limit
// and lockout as the actor answers them: an *otp.RetryError whose wait the
// gateway turns into Retry-After.
func TestErrorsKeepTheirSentinels(t *testing.T) {
	for _, s := range sentinels {
		err := fmt.Errorf("context: %w", s.Err)
		got := decodeErr(viaBytes(t, encodeErr(err), &messages.SessionError{}))
		if !errors.Is(got, s.Err) || got.Error() != err.Error() {
			t.Errorf("%v decoded as %v", err, got)
		}
		for _, other := range sentinels {
			if other.Err != s.Err && errors.Is(got, other.Err) {
				t.Errorf("%v decoded also matches %v", err, other.Err)
			}
		}
	}
	for _, want := range []*otp.RetryError{
		{Err: otp.ErrLockedOut, RetryAfter: 15 * time.Minute},
		{Err: otp.ErrSendRateLimited, RetryAfter: 42 * time.Second},
	} {
		enc, _ := EncodeReply(&session.RequestCodeReply{Err: want})
		r, err := DecodeReply(viaBytes(t, enc, &messages.SessionReply{}))
		if err != nil {
			t.Fatal(err)
		}
		got := r.(*session.RequestCodeReply).Err
		var re *otp.RetryError
		if !errors.As(got, &re) || re.RetryAfter != want.RetryAfter || re.Err != want.Err || got.Error() != want.Error() {
			t.Errorf("%v decoded as %v (%+v)", want, got, re)
		}
	}
	wrapped := fmt.Errorf("%w: %w", session.ErrDelivery, errors.New("twilio 503"))
	got := decodeErr(encodeErr(wrapped))
	var re *otp.RetryError
	if !errors.Is(got, session.ErrDelivery) || errors.As(got, &re) || got.Error() != wrapped.Error() {
		t.Errorf("%v decoded as %v", wrapped, got)
	}
	plain := errors.New("disk on fire")
	if got := decodeErr(encodeErr(plain)); got.Error() != plain.Error() || errors.Is(got, session.ErrUnavailable) {
		t.Errorf("plain error decoded as %v", got)
	}
}

func TestUnknownMessagesAreRefused(t *testing.T) {
	if _, err := Encode("k", "hello"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("encode of a string: %v", err)
	}
	if _, _, err := Decode(&messages.SessionRequest{Key: "k"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("empty request: %v", err)
	}
	if _, _, err := Decode(&messages.SessionRequest{Request: &messages.SessionRequest_VerifyCode{VerifyCode: &messages.SessionVerifyCode{}}}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("request without key: %v", err)
	}
	if _, err := DecodeReply(&messages.SessionReply{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("reply without kind: %v", err)
	}
	if _, err := EncodeReply(&session.RequestCode{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("encode of a request as a reply: %v", err)
	}
}
