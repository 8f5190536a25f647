package privacy_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// TestAnonymiseShredsPublishedEvents is crypto-shredding: an event
// published before a client's anonymisation carries its free-text reason
// sealed under the client's data key, so the copy in the JetStream stream
// (which the scrub cannot reach) shows no plaintext and, once the
// anonymisation destroyed the key, cannot be opened by anyone; another
// client's event still opens.
func TestAnonymiseShredsPublishedEvents(t *testing.T) {
	f := newFixture(t)
	uid, other := f.user("+573001234567"), f.user("+573109876543")
	const reason = "Zoraida se fue de viaje a Cartagena"
	published := map[string][]byte{} // client -> the event as it went to the stream
	for _, c := range []string{uid, other} {
		f.tx(func(ctx context.Context, tx persistence.Tx) error {
			ev := persistence.AppointmentChangedEvent(nil, persistence.Appointment{ID: "appt-" + c, ClientID: c,
				Status: persistence.StatusCancelled, Start: clock, End: clock, UpdatedAt: clock}, reason)
			if err := persistence.SealAppointmentReason(ctx, tx, ev); err != nil {
				return err
			}
			out, err := persistence.NewOutboxEvent("appointment/appt-"+c, "", c, ev, clock)
			published[c] = out.Payload
			return err
		})
	}
	decode := func(payload []byte) *messages.AppointmentChanged {
		var env messages.Event
		if err := proto.Unmarshal(payload, &env); err != nil {
			t.Fatal(err)
		}
		var ev messages.AppointmentChanged
		if err := env.GetPayload().UnmarshalTo(&ev); err != nil {
			t.Fatal(err)
		}
		return &ev
	}
	for c, p := range published {
		if bytes.Contains(p, []byte("Cartagena")) || bytes.Contains(p, []byte("Zoraida")) {
			t.Fatalf("the event of %s carries the reason in the clear", c)
		}
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		got, err := persistence.AppointmentReason(ctx, tx, decode(published[uid]))
		if err != nil || got != reason {
			t.Errorf("a consumer reads the reason before anonymisation: %q, %v", got, err)
		}
		return nil
	})

	if _, err := f.anonymise(func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error) {
		return f.svc.AnonymiseUser(ctx, tx, as(auth.RoleAdmin, "owner"), uid, privacy.AnonymiseInput{Confirm: true})
	}); err != nil {
		t.Fatal(err)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		got, err := persistence.AppointmentReason(ctx, tx, decode(published[uid]))
		if !errors.Is(err, persistence.ErrShredded) || got != "" {
			t.Errorf("the anonymised client's event after anonymisation: %q, %v; want ErrShredded", got, err)
		}
		if got, err := persistence.AppointmentReason(ctx, tx, decode(published[other])); err != nil || got != reason {
			t.Errorf("another client's event: %q, %v", got, err)
		}
		return nil
	})
}
