package notify

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// TestHeldForADeposit: a new hold that waits for a deposit tells the
// client until when and how much, once; a hold without a deposit, a
// waitlist offer's hold and a hold already confirmed say nothing.
func TestHeldForADeposit(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			start := time.Date(2026, 12, 8, 15, 0, 0, 0, bogota)
			hold := func(id string, deposit int64, status persistence.AppointmentStatus) *messages.AppointmentChanged {
				t.Helper()
				err := f.store.InTx(t.Context(), func(tx persistence.Tx) error {
					return tx.AppointmentInsert(t.Context(), persistence.Appointment{ID: id, StaffID: "ana", ServiceID: "massage-60",
						ClientID: f.client, Start: start, End: start.Add(time.Hour), Status: status, DepositMinor: deposit,
						HoldExpiresAt: f.now.Add(15 * time.Minute), CreatedAt: f.now, UpdatedAt: f.now})
				})
				if err != nil {
					t.Fatal(err)
				}
				return &messages.AppointmentChanged{AppointmentId: id, StaffId: "ana", ServiceId: "massage-60", ClientId: f.client,
					Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)), ToStatus: "held", Version: 1}
			}
			for _, ev := range []*messages.AppointmentChanged{
				hold("a-deposit", 4000000, persistence.StatusHeld),
				hold("a-free", 0, persistence.StatusHeld),
				hold("wl_e1", 4000000, persistence.StatusHeld),
				hold("a-paid", 4000000, persistence.StatusConfirmed),
			} {
				for range 2 {
					if err := f.svc.Handle(t.Context(), ev); err != nil {
						t.Fatal(err)
					}
				}
			}
			ns, sent := f.list(), f.sender.messages()
			if len(ns) != 1 || len(sent) != 1 || ns[0].ID != "appointment:a-deposit:held:v1:whatsapp" || ns[0].Kind != string(KindAppointmentHeld) {
				t.Fatalf("stored %+v, sent %d; want one held message for a-deposit", ns, len(sent))
			}
			want := "Apartamos Masaje relajante con Ana el martes 8 de diciembre, 3:00 p. m. para ti hasta el lunes 7 de diciembre, 2:15 p. m. (15 minutos). Para confirmar tu cita paga el depósito de $40.000 COP en la app"
			if !strings.HasPrefix(sent[0].Body, want) {
				t.Fatalf("body %q\nwant %q…", sent[0].Body, want)
			}
		})
	}
}

// TestHeldTrustsTheEventsDeposit: an event that carries the deposit
// (every event written since the field exists) decides without reading
// the appointment: a hold the event says asks for no deposit sends
// nothing, whatever the row says, and one it says asks for one is read
// and told. Holds are the most common event: a read each was a
// transaction per hold.
func TestHeldTrustsTheEventsDeposit(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			start := time.Date(2026, 12, 8, 15, 0, 0, 0, bogota)
			for _, id := range []string{"a-said-free", "a-said-deposit"} {
				err := f.store.InTx(t.Context(), func(tx persistence.Tx) error {
					return tx.AppointmentInsert(t.Context(), persistence.Appointment{ID: id, StaffID: "ana", ServiceID: "massage-60",
						ClientID: f.client, Start: start, End: start.Add(time.Hour), Status: persistence.StatusHeld, DepositMinor: 4000000,
						HoldExpiresAt: f.now.Add(15 * time.Minute), CreatedAt: f.now, UpdatedAt: f.now})
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			for id, deposit := range map[string]int64{"a-said-free": 0, "a-said-deposit": 4000000} {
				ev := &messages.AppointmentChanged{AppointmentId: id, StaffId: "ana", ServiceId: "massage-60", ClientId: f.client,
					Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)), ToStatus: "held", Version: 1,
					DepositMinor: proto.Int64(deposit)}
				if err := f.svc.Handle(t.Context(), ev); err != nil {
					t.Fatal(err)
				}
			}
			if ns := f.list(); len(ns) != 1 || ns[0].ID != "appointment:a-said-deposit:held:v1:whatsapp" {
				t.Fatalf("stored %+v; want only a-said-deposit's held message", ns)
			}
		})
	}
}
