// Package doortest holds the fake Door the typed clients' tests share: it
// records the request it was sent and answers what the test set, so a test
// can check that a client sends its message unchanged and types the reply.
package doortest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/spa-engine/spa/actors/door"
)

// Recorder is a door.Door that remembers the last request and answers
// with Reply and Err: set those before a call, read ID and Msg after.
type Recorder struct {
	ID    string // the id of the last request
	Msg   any    // the last message sent
	Reply any    // what it answers
	Err   error  // the error it answers with
}

// Ask records id and msg and answers Reply, Err.
func (r *Recorder) Ask(_ context.Context, id string, msg any) (any, error) {
	r.ID, r.Msg = id, msg
	return r.Reply, r.Err
}

// Call is one typed method of a client, as a table row of TypedReplies.
type Call struct {
	Name  string
	Msg   any // the request the method is given
	Reply any // a reply of the type the method returns
	// Do calls the method, with Msg, on a client over d.
	Do func(d door.Door, msg any) (any, error)
}

// TypedReplies checks each call of a typed client: it sends its message
// unchanged to id and returns the reply the actor gave; a reply of another
// type, or a door that fails, is an error and no reply.
func TypedReplies(t *testing.T, id string, calls []Call) {
	t.Helper()
	for _, tc := range calls {
		t.Run(tc.Name, func(t *testing.T) {
			d := &Recorder{Reply: tc.Reply}
			if r, err := tc.Do(d, tc.Msg); err != nil || r != tc.Reply || d.ID != id || d.Msg != tc.Msg {
				t.Fatalf("= %v, %v after sending %#v to %q; want the actor's reply", r, err, d.Msg, d.ID)
			}
			d.Reply = &struct{ Err error }{} // no reply of any actor
			if r, err := tc.Do(d, tc.Msg); err == nil || !isNil(r) || !strings.Contains(err.Error(), "answered") {
				t.Fatalf("wrong reply type: = %v, %v; want an error naming it and no reply", r, err)
			}
			d.Reply, d.Err = nil, errors.New("no answer in time")
			if r, err := tc.Do(d, tc.Msg); !errors.Is(err, d.Err) || !isNil(r) {
				t.Fatalf("failing door: = %v, %v; want its error", r, err)
			}
		})
	}
}

// isNil reports a nil reply, typed or not.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return v == nil || rv.Kind() == reflect.Pointer && rv.IsNil()
}
