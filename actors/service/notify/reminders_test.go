package notify

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// fakeScheduler keeps the schedules as the JetStream one would: one per
// appointment and kind.
type fakeScheduler struct {
	mu    sync.Mutex
	at    map[string]time.Time // "<appointment>/<kind>"
	due   map[string]*messages.ReminderDue
	calls int
}

func newFakeScheduler() *fakeScheduler {
	return &fakeScheduler{at: map[string]time.Time{}, due: map[string]*messages.ReminderDue{}}
}

func (s *fakeScheduler) Set(_ context.Context, due *messages.ReminderDue, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	k := due.AppointmentId + "/" + due.Kind
	s.at[k], s.due[k] = at, due
	return nil
}

func (s *fakeScheduler) Clear(_ context.Context, appointmentID string, kind Kind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	k := appointmentID + "/" + string(kind)
	delete(s.at, k)
	delete(s.due, k)
	return nil
}

func (s *fakeScheduler) schedules() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range s.at {
		out[k] = v
	}
	return out
}

// hoursFunc is a ReminderHours.
type hoursFunc func(time.Time) time.Time

func (h hoursFunc) Previous(t time.Time) time.Time { return h(t) }

// store writes appointment a1 of the fixture's client in status at start
// (inserted, or updated to it).
func (f *fixture) storeAppointment(status persistence.AppointmentStatus, start time.Time) {
	f.t.Helper()
	ctx := f.t.Context()
	err := f.store.InTx(ctx, func(tx persistence.Tx) error {
		a, err := tx.AppointmentGet(ctx, "a1")
		if err != nil {
			return tx.AppointmentInsert(ctx, persistence.Appointment{ID: "a1", StaffID: "ana", ServiceID: "massage-60",
				ClientID: f.client, Start: start, End: start.Add(time.Hour), Status: status, CreatedAt: f.now, UpdatedAt: f.now})
		}
		a.Status, a.Start, a.End, a.UpdatedAt = status, start, start.Add(time.Hour), f.now
		_, err = tx.AppointmentUpdate(ctx, a)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// TestRemindersFollowTheAppointment: a confirmation schedules the two
// reminders at T−24 h and T−2 h; a reschedule moves them; a fired
// reminder of the old start sends nothing, one of the current start sends
// once however often it fires; a cancellation removes the schedules, and
// a reminder fired anyway sends nothing.
func TestRemindersFollowTheAppointment(t *testing.T) {
	for name, open := range drivers() {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, open, Config{})
			sched := newFakeScheduler()
			f.svc.deps.Reminders = sched
			ctx := t.Context()

			ev := f.confirmed()
			start := ev.Start.AsTime()
			f.storeAppointment(persistence.StatusConfirmed, start)
			if err := f.svc.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
			want := map[string]time.Time{"a1/appointment_reminder_24h": start.Add(-24 * time.Hour), "a1/appointment_reminder_2h": start.Add(-2 * time.Hour)}
			if got := sched.schedules(); !equalTimes(got, want) {
				t.Fatalf("schedules after the confirmation %v, want %v", got, want)
			}
			old := sched.due["a1/appointment_reminder_2h"]

			moved := start.Add(26 * time.Hour)
			f.storeAppointment(persistence.StatusConfirmed, moved)
			if err := f.svc.Handle(ctx, &messages.AppointmentChanged{AppointmentId: "a1", StaffId: "ana", ServiceId: "massage-60",
				ClientId: f.client, Start: timestamppb.New(moved), PreviousStart: ev.Start, FromStatus: "confirmed", ToStatus: "confirmed", Version: 3}); err != nil {
				t.Fatal(err)
			}
			want = map[string]time.Time{"a1/appointment_reminder_24h": moved.Add(-24 * time.Hour), "a1/appointment_reminder_2h": moved.Add(-2 * time.Hour)}
			if got := sched.schedules(); !equalTimes(got, want) {
				t.Fatalf("schedules after the move %v, want %v", got, want)
			}
			// The old schedule fires anyway (it was in flight): nothing.
			if err := f.svc.HandleReminder(ctx, old); err != nil {
				t.Fatal(err)
			}
			before := len(f.sender.messages())
			if before != 2 { // the confirmation and the move
				t.Fatalf("%d messages before the reminders, want 2: %+v", before, f.sender.messages())
			}
			due := sched.due["a1/appointment_reminder_2h"]
			for range 2 {
				if err := f.svc.HandleReminder(ctx, due); err != nil {
					t.Fatal(err)
				}
			}
			sent := f.sender.messages()[before:]
			wantBody := "Tu cita es pronto, el miércoles 9 de diciembre, 5:00 p. m.: Masaje relajante con Ana. ¡Nos vemos!"
			if len(sent) != 1 || sent[0].Purpose != string(KindReminder2h) || sent[0].Body != wantBody {
				t.Fatalf("reminder sends %+v; want one with %q", sent, wantBody)
			}
			id := "appointment:a1:reminder_2h:" + strconv.FormatInt(moved.Unix(), 10) + ":whatsapp"
			if n := f.find(id); n.Status != persistence.NotificationSent || n.Kind != string(KindReminder2h) {
				t.Fatalf("stored reminder %+v (want %s sent)", n, id)
			}

			f.storeAppointment(persistence.StatusCancelled, moved)
			if err := f.svc.Handle(ctx, &messages.AppointmentChanged{AppointmentId: "a1", StaffId: "ana", ServiceId: "massage-60",
				ClientId: f.client, Start: timestamppb.New(moved), FromStatus: "confirmed", ToStatus: "cancelled", Version: 4}); err != nil {
				t.Fatal(err)
			}
			if got := sched.schedules(); len(got) != 0 {
				t.Fatalf("schedules after the cancellation %v, want none", got)
			}
			n := len(f.sender.messages())
			if err := f.svc.HandleReminder(ctx, sched.dueOr(due, "a1/appointment_reminder_24h")); err != nil {
				t.Fatal(err)
			}
			if got := f.sender.messages()[n:]; len(got) != 0 {
				t.Fatalf("a cancelled appointment's reminder was sent: %+v", got)
			}
		})
	}
}

// dueOr is the schedule's payload, or fallback once it was cleared.
func (s *fakeScheduler) dueOr(fallback *messages.ReminderDue, key string) *messages.ReminderDue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.due[key]; d != nil {
		return d
	}
	return &messages.ReminderDue{AppointmentId: fallback.AppointmentId, Kind: string(KindReminder24h), Start: fallback.Start}
}

func (f *fixture) find(id string) persistence.Notification {
	f.t.Helper()
	for _, n := range f.list() {
		if n.ID == id {
			return n
		}
	}
	return persistence.Notification{}
}

func equalTimes(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !b[k].Equal(v) {
			return false
		}
	}
	return true
}

// TestReminderTimes: a reminder whose time has passed is not scheduled;
// one that quiet hours block moves earlier, to the end of the last
// allowed moment, and is dropped when that is not after the longer
// reminder.
func TestReminderTimes(t *testing.T) {
	now := time.Date(2026, 12, 7, 14, 0, 0, 0, bogota)
	// Quiet from 20:00 to 8:00.
	quiet := hoursFunc(func(t time.Time) time.Time {
		l := t.In(bogota)
		switch {
		case l.Hour() >= 20:
			return time.Date(l.Year(), l.Month(), l.Day(), 20, 0, 0, 0, bogota)
		case l.Hour() < 8:
			return time.Date(l.Year(), l.Month(), l.Day()-1, 20, 0, 0, 0, bogota)
		}
		return t
	})
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, bogota) }
	// December 9 closed: the last moment before it is December 8, 10:00.
	closed9 := hoursFunc(func(t time.Time) time.Time {
		if t.In(bogota).Day() == 9 {
			return at(8, 10, 0)
		}
		return t
	})
	for _, tc := range []struct {
		name  string
		hours ReminderHours
		start time.Time
		want  []time.Time
	}{
		{"both ahead", nil, at(8, 15, 0), []time.Time{at(7, 15, 0), at(8, 13, 0)}},
		{"the day-before one passed", nil, at(8, 10, 0), []time.Time{{}, at(8, 8, 0)}},
		{"both passed", nil, at(7, 15, 0), []time.Time{{}, {}}},
		{"quiet hours move the early one", quiet, at(9, 9, 0), []time.Time{at(8, 9, 0), at(8, 20, 0)}},
		{"both moved", quiet, at(9, 6, 0), []time.Time{at(7, 20, 0), at(8, 20, 0)}},
		{"moved before the longer one: dropped", closed9, at(9, 12, 0), []time.Time{at(8, 12, 0), {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Service{deps: Deps{ReminderHours: tc.hours}, cfg: Config{Reminders: DefaultReminders}}
			got := s.reminderTimes(tc.start, now, nil)
			for i := range tc.want {
				if !got[i].Equal(tc.want[i]) {
					t.Fatalf("reminder %d at %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestParseReminders: lead times longest first, or off.
func TestParseReminders(t *testing.T) {
	if r, err := ParseReminders(""); err != nil || len(r) != 2 || r[0].Before != 24*time.Hour || r[1].Kind != KindReminder2h {
		t.Fatalf("default: %v %v", r, err)
	}
	if r, err := ParseReminders("off"); err != nil || len(r) != 0 || r == nil {
		t.Fatalf("off: %v %v", r, err)
	}
	if r, err := ParseReminders("20s, 10s"); err != nil || r[0].Before != 20*time.Second || r[1].Before != 10*time.Second {
		t.Fatalf("short: %v %v", r, err)
	}
	for _, bad := range []string{"2h,24h", "24h", "24h,2h,1h", "1d,2h", "24h,-2h"} {
		if _, err := ParseReminders(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if b, err := ParseBackoff("1s, 2s"); err != nil || len(b) != 2 || b[1] != 2*time.Second {
		t.Fatalf("backoff: %v %v", b, err)
	}
	if _, err := ParseBackoff("1s,,2s"); err == nil {
		t.Fatal("an empty wait was accepted")
	}
}
