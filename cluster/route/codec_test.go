package route

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// stringCodec carries a request as StringValue "id=msg" and a reply as
// Int64Value.
func stringCodec() Codec {
	return CodecOf(func(id string) string { return "k/" + id },
		func(id string, msg any) (*wrapperspb.StringValue, error) {
			s, ok := msg.(string)
			if !ok {
				return nil, errors.New("unsupported")
			}
			return wrapperspb.String(id + "=" + s), nil
		},
		func(m *wrapperspb.StringValue) (string, any, error) {
			id, msg, _ := strings.Cut(m.GetValue(), "=")
			return id, msg, nil
		},
		func(r any) (*wrapperspb.Int64Value, error) { return wrapperspb.Int64(int64(r.(int))), nil },
		func(m *wrapperspb.Int64Value) (any, error) { return int(m.GetValue()), nil },
		func(msg any) string { return "idem/" + msg.(string) })
}

func TestCodecOfRoundTripsAndRefusesOtherTypes(t *testing.T) {
	c := stringCodec()
	if c.Key("ana") != "k/ana" || c.IdempotencyKey("hold") != "idem/hold" {
		t.Fatalf("key %q, idempotency key %q", c.Key("ana"), c.IdempotencyKey("hold"))
	}
	if _, ok := c.Example.(*wrapperspb.StringValue); !ok || c.Example == nil {
		t.Fatalf("example %T, want a fresh *StringValue", c.Example)
	}
	req, err := c.Request("ana", "hold")
	if err != nil {
		t.Fatal(err)
	}
	id, msg, err := c.DecodeRequest(req)
	if err != nil || id != "ana" || msg != "hold" {
		t.Fatalf("decoded %q %v %v", id, msg, err)
	}
	if _, err := c.Request("ana", 42); err == nil {
		t.Fatal("an unsupported request encoded")
	}
	rep, err := c.Reply(7)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.DecodeReply(rep); err != nil || got != 7 {
		t.Fatalf("reply decoded %v %v", got, err)
	}
	// A message of another type is an error, not a panic.
	var other proto.Message = wrapperspb.Bool(true)
	if _, _, err := c.DecodeRequest(other); err == nil || !strings.Contains(err.Error(), "BoolValue") {
		t.Fatalf("request of another type: %v", err)
	}
	if _, err := c.DecodeReply(other); err == nil || !strings.Contains(err.Error(), "BoolValue") {
		t.Fatalf("reply of another type: %v", err)
	}
}
