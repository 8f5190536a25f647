// Package wire holds what every actor kind's codec (cluster/calwire,
// shopwire, sessionwire) needs to carry Go values across nodes: instants
// as protobuf timestamps, and errors as the codes of the sentinels they
// match, decoded into errors that match the same sentinels.
package wire

import (
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/messages"
)

// TS encodes t; the zero time is absent.
func TS(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// TM decodes ts; absent is the zero time.
func TM(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// Key and FromKey carry a change's idempotency key (nil: none).
func Key(k *keyed.Key) *messages.IdempotencyKey {
	if k == nil {
		return nil
	}
	return &messages.IdempotencyKey{Scope: k.Scope, Name: k.Name, Hash: k.Fingerprint()}
}

func FromKey(k *messages.IdempotencyKey) *keyed.Key {
	if k == nil {
		return nil
	}
	key := &keyed.Key{Scope: k.GetScope(), Name: k.GetName(), Hash: k.GetHash()}
	key.Fingerprint() // settled: a decoded key's fingerprint is the one it carries
	return key
}

// Sentinel pairs an error code of the wire with the error it stands for.
type Sentinel[C comparable] struct {
	Code C
	Err  error
}

// Sentinels is a codec's table of error codes.
type Sentinels[C comparable] []Sentinel[C]

// Codes returns the code of every sentinel err matches, in table order.
func (t Sentinels[C]) Codes(err error) []C {
	var out []C
	for _, s := range t {
		if errors.Is(err, s.Err) {
			out = append(out, s.Code)
		}
	}
	return out
}

// Errs returns the sentinels of codes; unknown codes are skipped.
func (t Sentinels[C]) Errs(codes ...C) []error {
	var out []error
	for _, c := range codes {
		for _, s := range t {
			if s.Code == c {
				out = append(out, s.Err)
			}
		}
	}
	return out
}

// Error is a decoded refusal: the original's text, matching (errors.Is,
// errors.As) every one of causes.
func Error(msg string, causes []error) error { return &decoded{msg: msg, causes: causes} }

type decoded struct {
	msg    string
	causes []error
}

func (e *decoded) Error() string   { return e.msg }
func (e *decoded) Unwrap() []error { return e.causes }
