package sessionwire

import (
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/route"
)

// Codec is the session router's codec: actors placed by
// "session/<phone key>". No request carries an idempotency key: a
// timed-out login-code request is not resent, since it may have sent a
// code.
func Codec() route.Codec {
	return route.CodecOf(session.PlacementKey, Encode, Decode, EncodeReply, DecodeReply, nil)
}
