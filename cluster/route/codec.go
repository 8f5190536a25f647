package route

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// CodecOf builds a kind's Codec from its wire package's functions
// (cluster/calwire, cluster/shopwire, cluster/sessionwire): key maps an
// actor id to its placement key, enc/dec convert requests, encReply/
// decReply replies, and idem names a request across retries (nil: none
// is resent after a timed-out try). A protobuf message of another type
// than Req or Rep is refused with an error, never a panic.
func CodecOf[Req, Rep proto.Message](key func(string) string, enc func(string, any) (Req, error), dec func(Req) (string, any, error),
	encReply func(any) (Rep, error), decReply func(Rep) (any, error), idem func(any) string) Codec {
	var example Req
	return Codec{
		Key:     key,
		Example: example.ProtoReflect().Type().New().Interface(),
		Request: func(id string, msg any) (proto.Message, error) { return enc(id, msg) },
		DecodeRequest: func(m proto.Message) (string, any, error) {
			r, ok := m.(Req)
			if !ok {
				return "", nil, fmt.Errorf("request %T, want %T", m, example)
			}
			return dec(r)
		},
		Reply: func(r any) (proto.Message, error) { return encReply(r) },
		DecodeReply: func(m proto.Message) (any, error) {
			r, ok := m.(Rep)
			if !ok {
				var want Rep
				return nil, fmt.Errorf("reply %T, want %T", m, want)
			}
			return decReply(r)
		},
		IdempotencyKey: idem,
	}
}
