package sessionwire

import (
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/route"
)

// Codec is the session router's codec: actors placed by
// "session/<phone key>". A timed-out login-code request is not resent,
// since it may have sent a code; a conversation's message is (its
// provider message id is its key: the bot remembers the ids it answered).
func Codec() route.Codec {
	return route.CodecOf(session.PlacementKey, Encode, Decode, EncodeReply, DecodeReply, idempotencyKey)
}

func idempotencyKey(msg any) string {
	if m, ok := msg.(*session.Converse); ok && m.Msg.ID != "" {
		return "converse/" + m.Msg.ID
	}
	return ""
}
