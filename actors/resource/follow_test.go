package resource

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// oneAppointmentStore serves AppointmentGet for one appointment and counts
// the transactions it runs.
type oneAppointmentStore struct {
	persistence.Store
	ap  persistence.Appointment
	txs int
}

type oneAppointmentTx struct {
	persistence.Tx
	ap persistence.Appointment
}

func (s *oneAppointmentStore) InTx(_ context.Context, fn func(persistence.Tx) error) error {
	s.txs++
	return fn(oneAppointmentTx{ap: s.ap})
}

func (t oneAppointmentTx) AppointmentGet(_ context.Context, id string) (persistence.Appointment, error) {
	if id != t.ap.ID {
		return persistence.Appointment{}, persistence.ErrNotFound
	}
	return t.ap, nil
}

type recordingAsker struct{ asked []string }

func (a *recordingAsker) Ask(_ context.Context, resourceID string, msg any) (any, error) {
	a.asked = append(a.asked, resourceID)
	return &TrackReply{}, nil
}

// TestFollowerReadsBackOnlyWhatMayUseAResource: an event that says its
// appointment uses no resource costs nothing; one that names a resource,
// or predates the field, is read back and tracked.
func TestFollowerReadsBackOnlyWhatMayUseAResource(t *testing.T) {
	ap := persistence.Appointment{ID: "a1", ResourceID: "room-1"}
	for _, tc := range []struct {
		name     string
		resource *string
		txs      int
		asked    int
	}{
		{"uses none", proto.String(""), 0, 0},
		{"names one", proto.String("room-1"), 1, 1},
		{"predates the field", nil, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, asker := &oneAppointmentStore{ap: ap}, &recordingAsker{}
			f := Follower{Store: st, Resources: NewClient(asker)}
			if err := f.Handle(context.Background(), &messages.AppointmentChanged{AppointmentId: "a1", ResourceId: tc.resource}); err != nil {
				t.Fatal(err)
			}
			if st.txs != tc.txs || len(asker.asked) != tc.asked || (tc.asked > 0 && asker.asked[0] != "room-1") {
				t.Fatalf("read %d times and asked %v; want %d reads and %d asks of room-1", st.txs, asker.asked, tc.txs, tc.asked)
			}
		})
	}
}
