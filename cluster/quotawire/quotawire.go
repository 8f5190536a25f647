// Package quotawire encodes the quota actors' requests and replies
// (actors/quota, one actor per counted key) as the protobuf messages of
// messages/quota.proto, so they can travel to the node that owns the key
// (part of cluster/: cluster/route sends them through cluster/forward).
//
// Errors travel as the codes of every sentinel the error matches and its
// full text; decoding rebuilds an error that matches the same sentinels
// with errors.Is. A refusal over the limit is not an error: it travels as
// ok false with the wait.
package quotawire

import (
	"errors"
	"fmt"
	"time"

	"github.com/spa-engine/spa/actors/quota"
	"github.com/spa-engine/spa/cluster/route"
	"github.com/spa-engine/spa/cluster/wire"
	"github.com/spa-engine/spa/messages"
)

// ErrUnsupported: the value is not a quota message this package knows.
var ErrUnsupported = errors.New("quotawire: unsupported message")

var sentinels = wire.Sentinels[messages.QuotaError_Code]{
	{Code: messages.QuotaError_CODE_UNAVAILABLE, Err: quota.ErrUnavailable},
	{Code: messages.QuotaError_CODE_INVALID, Err: quota.ErrInvalid},
}

// Codec is the quota router's codec: actors placed by "quota/<key>". A
// named lease, or a release, is safe to apply twice (it sets the lease
// again), so a timed-out try is resent; an anonymous window event is not
// (it would count twice).
func Codec() route.Codec {
	return route.CodecOf(quota.PlacementKey, Encode, Decode, EncodeReply, DecodeReply, idempotencyKey)
}

func idempotencyKey(msg any) string {
	switch m := msg.(type) {
	case *quota.Take:
		if m.Lease != "" {
			return fmt.Sprintf("quota-take/%s/%d", m.Lease, m.Units)
		}
	case *quota.Release:
		if len(m.Leases) > 0 {
			return "quota-release/" + m.Leases[0]
		}
	}
	return ""
}

func encodeErr(err error) *messages.QuotaError {
	if err == nil {
		return nil
	}
	return &messages.QuotaError{Message: err.Error(), Codes: sentinels.Codes(err)}
}

func decodeErr(e *messages.QuotaError) error {
	if e == nil {
		return nil
	}
	return wire.Error(e.GetMessage(), sentinels.Errs(e.GetCodes()...))
}

// Encode encodes a request to the quota actor of key.
func Encode(key string, msg any) (*messages.QuotaRequest, error) {
	r := &messages.QuotaRequest{Key: key}
	switch m := msg.(type) {
	case *quota.Take:
		r.Request = &messages.QuotaRequest_Take{Take: &messages.QuotaTake{Lease: m.Lease, Units: m.Units, Limit: m.Limit, TtlNs: int64(m.TTL)}}
	case *quota.Release:
		r.Request = &messages.QuotaRequest_Release{Release: &messages.QuotaRelease{Leases: m.Leases}}
	default:
		return nil, fmt.Errorf("%w: %T for a quota actor", ErrUnsupported, msg)
	}
	return r, nil
}

// Decode decodes a request to a quota actor: the key and the message the
// actor answers.
func Decode(r *messages.QuotaRequest) (string, any, error) {
	var msg any
	switch m := r.GetRequest().(type) {
	case *messages.QuotaRequest_Take:
		t := m.Take
		msg = &quota.Take{Lease: t.GetLease(), Units: t.GetUnits(), Limit: t.GetLimit(), TTL: time.Duration(t.GetTtlNs())}
	case *messages.QuotaRequest_Release:
		msg = &quota.Release{Leases: m.Release.GetLeases()}
	default:
		return "", nil, fmt.Errorf("%w: quota request without a known body", ErrUnsupported)
	}
	if r.GetKey() == "" {
		return "", nil, fmt.Errorf("%w: quota request without a key", ErrUnsupported)
	}
	return r.GetKey(), msg, nil
}

// EncodeReply encodes a quota actor's reply.
func EncodeReply(reply any) (*messages.QuotaReply, error) {
	r, ok := reply.(*quota.Reply)
	if !ok {
		return nil, fmt.Errorf("%w: %T as a quota reply", ErrUnsupported, reply)
	}
	return &messages.QuotaReply{Ok: r.OK, Used: r.Used, RetryAfterNs: int64(r.RetryAfter), Prev: r.Prev, Error: encodeErr(r.Err)}, nil
}

// DecodeReply decodes a quota actor's reply.
func DecodeReply(r *messages.QuotaReply) (any, error) {
	return &quota.Reply{OK: r.GetOk(), Used: r.GetUsed(), RetryAfter: time.Duration(r.GetRetryAfterNs()), Prev: r.GetPrev(), Err: decodeErr(r.GetError())}, nil
}
