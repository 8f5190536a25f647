// Package sessionwire encodes the session actors' requests and replies
// (actors/session, one actor per phone key) as the protobuf messages of
// messages/session.proto, so they can travel to the node that owns the
// phone key (part of cluster/: cluster/route sends them through
// cluster/forward).
//
// Errors travel as the codes of every sentinel the error matches, its full
// text and, for a rate limit or lockout, the wait: decoding rebuilds an
// error that matches the same sentinels with errors.Is and, when the
// original held an *otp.RetryError, holds one with the same Err and
// RetryAfter for errors.As, so the gateway answers a remote refusal
// (Retry-After included) exactly as a local one. A request carries the
// E.164 number; no error or log line of this package contains it.
package sessionwire

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/wire"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// ErrUnsupported: the value is not a session message this package knows.
var ErrUnsupported = errors.New("sessionwire: unsupported message")

var sentinels = wire.Sentinels[messages.SessionError_Code]{
	{Code: messages.SessionError_CODE_UNAVAILABLE, Err: session.ErrUnavailable},
	{Code: messages.SessionError_CODE_DELIVERY, Err: session.ErrDelivery},
	{Code: messages.SessionError_CODE_LOCKED_OUT, Err: otp.ErrLockedOut},
	{Code: messages.SessionError_CODE_SEND_RATE_LIMITED, Err: otp.ErrSendRateLimited},
	{Code: messages.SessionError_CODE_CAPTCHA_REQUIRED, Err: otp.ErrCaptchaRequired},
	{Code: messages.SessionError_CODE_NO_BOT, Err: session.ErrNoBot},
	{Code: messages.SessionError_CODE_NOT_FOUND, Err: persistence.ErrNotFound},
}

func encodeErr(err error) *messages.SessionError {
	if err == nil {
		return nil
	}
	e := &messages.SessionError{Message: err.Error(), Codes: sentinels.Codes(err)}
	var f *fault.Error
	if errors.As(err, &f) {
		e.FaultCode, e.Message = f.Code, f.Message
	}
	var re *otp.RetryError
	if errors.As(err, &re) {
		e.RetryAfterNs = int64(re.RetryAfter)
	}
	return e
}

func decodeErr(e *messages.SessionError) error {
	if e == nil {
		return nil
	}
	if e.GetFaultCode() != "" {
		// A use case's refusal, answered as the owner's would be.
		return fault.New(e.GetFaultCode(), e.GetMessage())
	}
	causes := sentinels.Errs(e.GetCodes()...)
	if wait := time.Duration(e.GetRetryAfterNs()); wait != 0 {
		// The limit's wait goes with it, as the actor answered it.
		for i, c := range causes {
			if c == otp.ErrLockedOut || c == otp.ErrSendRateLimited {
				causes[i] = &otp.RetryError{Err: c, RetryAfter: wait}
				break
			}
		}
	}
	return wire.Error(e.GetMessage(), causes)
}

// Encode encodes a request to the session actor of phone key key.
func Encode(key string, msg any) (*messages.SessionRequest, error) {
	r := &messages.SessionRequest{Key: key}
	switch m := msg.(type) {
	case *session.RequestCode:
		r.Request = &messages.SessionRequest_RequestCode{RequestCode: &messages.SessionRequestCode{Phone: m.Phone, Channel: string(m.Channel),
			Network: m.Network, Captcha: m.Captcha}}
	case *session.VerifyCode:
		r.Request = &messages.SessionRequest_VerifyCode{VerifyCode: &messages.SessionVerifyCode{Phone: m.Phone, Code: m.Code,
			Network: m.Network, Captcha: m.Captcha}}
	case *session.Converse:
		c := &messages.SessionConverse{Phone: m.Phone, Id: m.Msg.ID, Text: m.Msg.Text, Payload: m.Msg.Payload}
		if !m.Msg.Time.IsZero() {
			c.Time = timestamppb.New(m.Msg.Time)
		}
		r.Request = &messages.SessionRequest_Converse{Converse: c}
	case *session.StaffAct:
		r.Request = &messages.SessionRequest_StaffAct{StaffAct: &messages.SessionStaffAct{Action: m.Action, StaffId: m.StaffID, Text: m.Text}}
	default:
		return nil, fmt.Errorf("%w: %T for a session actor", ErrUnsupported, msg)
	}
	return r, nil
}

// Decode decodes a request to a session actor: the phone key and the
// message the actor answers.
func Decode(r *messages.SessionRequest) (string, any, error) {
	var msg any
	switch m := r.GetRequest().(type) {
	case *messages.SessionRequest_RequestCode:
		msg = &session.RequestCode{Phone: m.RequestCode.GetPhone(), Channel: sender.Channel(m.RequestCode.GetChannel()),
			Network: m.RequestCode.GetNetwork(), Captcha: m.RequestCode.GetCaptcha()}
	case *messages.SessionRequest_VerifyCode:
		msg = &session.VerifyCode{Phone: m.VerifyCode.GetPhone(), Code: m.VerifyCode.GetCode(),
			Network: m.VerifyCode.GetNetwork(), Captcha: m.VerifyCode.GetCaptcha()}
	case *messages.SessionRequest_Converse:
		c := m.Converse
		in := session.Inbound{ID: c.GetId(), Text: c.GetText(), Payload: c.GetPayload()}
		if c.GetTime() != nil {
			in.Time = c.GetTime().AsTime()
		}
		msg = &session.Converse{Phone: c.GetPhone(), Msg: in}
	case *messages.SessionRequest_StaffAct:
		msg = &session.StaffAct{Action: m.StaffAct.GetAction(), StaffID: m.StaffAct.GetStaffId(), Text: m.StaffAct.GetText()}
	default:
		return "", nil, fmt.Errorf("%w: session request without a known body", ErrUnsupported)
	}
	if r.GetKey() == "" {
		return "", nil, fmt.Errorf("%w: session request without a phone key", ErrUnsupported)
	}
	return r.GetKey(), msg, nil
}

// EncodeReply encodes a session actor's reply.
func EncodeReply(reply any) (*messages.SessionReply, error) {
	switch r := reply.(type) {
	case *session.RequestCodeReply:
		return &messages.SessionReply{Kind: messages.SessionReply_KIND_REQUEST_CODE, ExpiresInNs: int64(r.ExpiresIn),
			Error: encodeErr(r.Err)}, nil
	case *session.VerifyReply:
		return &messages.SessionReply{Kind: messages.SessionReply_KIND_VERIFY, Result: int32(r.Result),
			RetryAfterNs: int64(r.RetryAfter), Error: encodeErr(r.Err)}, nil
	case *session.ConverseReply:
		return &messages.SessionReply{Kind: messages.SessionReply_KIND_CONVERSE, Error: encodeErr(r.Err)}, nil
	case *session.StaffActReply:
		v := r.Conversation
		c := &messages.SessionConversation{ClientId: v.ClientID, Owner: v.Owner, StaffId: v.StaffID}
		if !v.WaitingSince.IsZero() {
			c.WaitingSince = timestamppb.New(v.WaitingSince)
		}
		if !v.Updated.IsZero() {
			c.Updated = timestamppb.New(v.Updated)
		}
		return &messages.SessionReply{Kind: messages.SessionReply_KIND_STAFF_ACT, Conversation: c, Error: encodeErr(r.Err)}, nil
	}
	return nil, fmt.Errorf("%w: %T as a session reply", ErrUnsupported, reply)
}

// DecodeReply decodes a session actor's reply into the type the request
// expects.
func DecodeReply(r *messages.SessionReply) (any, error) {
	switch r.GetKind() {
	case messages.SessionReply_KIND_REQUEST_CODE:
		return &session.RequestCodeReply{ExpiresIn: time.Duration(r.GetExpiresInNs()), Err: decodeErr(r.GetError())}, nil
	case messages.SessionReply_KIND_VERIFY:
		return &session.VerifyReply{Result: otp.Result(r.GetResult()), RetryAfter: time.Duration(r.GetRetryAfterNs()),
			Err: decodeErr(r.GetError())}, nil
	case messages.SessionReply_KIND_CONVERSE:
		return &session.ConverseReply{Err: decodeErr(r.GetError())}, nil
	case messages.SessionReply_KIND_STAFF_ACT:
		c := r.GetConversation()
		v := session.ConversationView{ClientID: c.GetClientId(), Owner: c.GetOwner(), StaffID: c.GetStaffId()}
		if c.GetWaitingSince() != nil {
			v.WaitingSince = c.GetWaitingSince().AsTime()
		}
		if c.GetUpdated() != nil {
			v.Updated = c.GetUpdated().AsTime()
		}
		return &session.StaffActReply{Conversation: v, Err: decodeErr(r.GetError())}, nil
	}
	return nil, fmt.Errorf("%w: session reply kind %v", ErrUnsupported, r.GetKind())
}
