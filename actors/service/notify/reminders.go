package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Reminders (docs/notifications.md): each confirmed appointment has a
// schedule per reminder kind, kept by a ReminderScheduler (JetStream
// message schedules, cmd/spa). Every change of an appointment into, within
// or out of confirmed re-reads the appointment and sets or clears its
// schedules from what is stored now, so events handled out of order still
// leave the schedules of the latest state. When a schedule fires,
// HandleReminder sends the reminder only if the appointment is still
// confirmed at the start it was scheduled for.

// The reminder kinds: a day before and shortly before (lead times in
// Config.Reminders).
const (
	KindReminder24h Kind = "appointment_reminder_24h"
	KindReminder2h  Kind = "appointment_reminder_2h"
)

// Reminder is one reminder kind and how long before the start it goes.
type Reminder struct {
	Kind   Kind
	Before time.Duration
}

// DefaultReminders: T−24 h and T−2 h.
var DefaultReminders = []Reminder{{KindReminder24h, 24 * time.Hour}, {KindReminder2h, 2 * time.Hour}}

// ReminderKinds are the kinds a reminder may have.
func ReminderKinds() []Kind { return []Kind{KindReminder24h, KindReminder2h} }

// ReminderScheduler keeps at most one schedule per appointment and
// reminder kind: Set replaces the kind's schedule (a reschedule moves
// it), Clear removes it (nothing to remove is no error). When a schedule
// fires, due reaches HandleReminder.
type ReminderScheduler interface {
	Set(ctx context.Context, due *messages.ReminderDue, at time.Time) error
	Clear(ctx context.Context, appointmentID string, kind Kind) error
}

// ReminderHours moves a reminder that quiet hours would block earlier:
// Previous is the last moment at or before t a message may go (t when it
// may go then; zero when it never may, and the reminder keeps t).
// quiethours.Policy is one.
type ReminderHours interface {
	Previous(t time.Time) time.Time
}

// zonedHours is ReminderHours that can be read on another clock (the
// client's): quiethours.Policy is one.
type zonedHours interface {
	In(loc *time.Location) quiethours.Policy
}

// reminderHoursIn is the node's ReminderHours on zone's clock (nil: its
// own, the studio's).
func (s *Service) reminderHoursIn(zone *time.Location) ReminderHours {
	if z, ok := s.deps.ReminderHours.(zonedHours); ok && zone != nil {
		return z.In(zone)
	}
	return s.deps.ReminderHours
}

// reminderTimes are when each configured reminder of an appointment
// starting at start goes, as of now: before the start by its lead time,
// moved earlier out of quiet hours. A reminder whose time has passed, or
// that quiet hours would move to before the previous (longer) reminder,
// gets the zero time: it is not scheduled.
func (s *Service) reminderTimes(start, now time.Time, zone *time.Location) []time.Time {
	out := make([]time.Time, len(s.cfg.Reminders))
	var prev time.Time
	hours := s.reminderHoursIn(zone)
	for i, r := range s.cfg.Reminders {
		at := start.Add(-r.Before)
		if hours != nil {
			if p := hours.Previous(at); !p.IsZero() {
				at = p
			}
		}
		if !at.After(now) || (!prev.IsZero() && !at.After(prev)) {
			continue
		}
		out[i], prev = at, at
	}
	return out
}

// syncReminders sets the appointment's reminder schedules from its
// stored state: a confirmed appointment gets one per reminder still ahead
// of it, anything else (cancelled, moved out of confirmed, gone) none.
func (s *Service) syncReminders(ctx context.Context, appointmentID string) error {
	if s.deps.Reminders == nil || len(s.cfg.Reminders) == 0 {
		return nil
	}
	var a persistence.Appointment
	var zone *time.Location // the client's, for quiet hours
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		if a, err = tx.AppointmentGet(ctx, appointmentID); err != nil {
			return err
		}
		zone, err = s.clientZone(ctx, tx, a.ClientID)
		return err
	})
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		return err
	}
	var times []time.Time
	if err == nil && a.Status == persistence.StatusConfirmed {
		times = s.reminderTimes(a.Start, s.deps.Now(), zone)
	}
	for i, r := range s.cfg.Reminders {
		if i < len(times) && !times[i].IsZero() {
			due := &messages.ReminderDue{AppointmentId: a.ID, Kind: string(r.Kind), Start: timestamppb.New(a.Start)}
			if err := s.deps.Reminders.Set(ctx, due, times[i]); err != nil {
				return fmt.Errorf("notify: schedule %s of %s: %w", r.Kind, appointmentID, err)
			}
			continue
		}
		if err := s.deps.Reminders.Clear(ctx, appointmentID, r.Kind); err != nil {
			return fmt.Errorf("notify: clear %s of %s: %w", r.Kind, appointmentID, err)
		}
	}
	return nil
}

// HandleReminder sends a fired reminder if its appointment is still
// confirmed at the start it was scheduled for and has not begun: a
// cancelled or moved appointment's reminder is dropped (the move set
// schedules of its own). Results as Handle.
func (s *Service) HandleReminder(ctx context.Context, due *messages.ReminderDue) error {
	kind := Kind(due.GetKind())
	if due.GetAppointmentId() == "" || due.GetStart() == nil || !isReminder(kind) {
		s.deps.Log.Warn("malformed reminder dropped", "appointment", due.GetAppointmentId(), "kind", kind)
		return nil
	}
	start := due.Start.AsTime()
	var a persistence.Appointment
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) (err error) {
		a, err = tx.AppointmentGet(ctx, due.AppointmentId)
		return err
	})
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil
	case err != nil:
		return err
	case a.Status != persistence.StatusConfirmed || !a.Start.Equal(start) || !s.deps.Now().Before(start):
		s.deps.Log.Info("reminder not sent: the appointment is no longer confirmed at that start",
			"appointment", a.ID, "kind", kind, "status", a.Status)
		return nil
	}
	in := intent{kind: kind, userID: a.ClientID, staffID: a.StaffID, serviceID: a.ServiceID, start: a.Start,
		// One reminder of a kind per appointment and start: a fired
		// schedule handed in twice finds its row.
		cause: fmt.Sprintf("appointment:%s:%s:%d", a.ID, strings.TrimPrefix(string(kind), "appointment_"), a.Start.Unix())}
	if in.userID == "" {
		return nil
	}
	return s.deliver(ctx, in)
}

func isReminder(k Kind) bool { return k == KindReminder24h || k == KindReminder2h }
