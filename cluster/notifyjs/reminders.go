// Package notifyjs keeps the notification service's JetStream state
// (docs/notifications.md): reminder schedules (one message schedule per
// appointment and reminder kind, nats-server 2.12+) and the dead-letter
// stream. The service (actors/service/notify) sees them through its
// ReminderScheduler and DeadLetterQueue interfaces; cmd/spa consumes what
// they publish.
package notifyjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/messages"
)

// The reminders stream: schedules on spa.reminders.schedule.<appointment>.<kind>,
// each firing once onto spa.reminders.due.<appointment>.<kind>, which the
// reminders consumer reads.
const (
	RemindersStream = "SPA_REMINDERS"
	scheduleSubject = "spa.reminders.schedule."
	DueSubject      = "spa.reminders.due."
	// DueTTL is how long a fired reminder stays in the stream: long after
	// it was handled, short enough that the stream does not grow with
	// every appointment ever reminded.
	DueTTL = 7 * 24 * time.Hour
)

// Reminders is a notify.ReminderScheduler on JetStream message schedules:
// a schedule is a message with `Nats-Schedule: @at <time>` on the
// appointment and kind's subject; the server rolls up the subject, so
// setting it again replaces it, and purging the subject removes it.
type Reminders struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

var _ notify.ReminderScheduler = (*Reminders)(nil)

// NewReminders creates (or updates) the reminders stream with replicas
// copies.
func NewReminders(ctx context.Context, js jetstream.JetStream, replicas int) (*Reminders, error) {
	s, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        RemindersStream,
			Description: "Appointment reminder schedules and the reminders they fire",
			Subjects:    []string{"spa.reminders.>"},
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
			// Schedules need roll-ups (a new schedule replaces the old)
			// and TTLs (fired reminders expire).
			AllowMsgSchedules: true,
			AllowRollup:       true,
			AllowMsgTTL:       true,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("notifyjs: reminders stream: %w", err)
	}
	return &Reminders{js: js, stream: s}, nil
}

func subjectOf(prefix, appointmentID string, kind notify.Kind) string {
	return prefix + appointmentID + "." + string(kind)
}

// Set replaces the schedule of due's appointment and kind with one that
// publishes due at at.
func (r *Reminders) Set(ctx context.Context, due *messages.ReminderDue, at time.Time) error {
	data, err := proto.Marshal(due)
	if err != nil {
		return err
	}
	kind := notify.Kind(due.Kind)
	m := nats.NewMsg(subjectOf(scheduleSubject, due.AppointmentId, kind))
	m.Data = data
	m.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	m.Header.Set("Nats-Schedule-Target", subjectOf(DueSubject, due.AppointmentId, kind))
	m.Header.Set("Nats-Schedule-TTL", DueTTL.String())
	_, err = r.js.PublishMsg(ctx, m)
	return err
}

// Clear removes the schedule of the appointment and kind, if any.
func (r *Reminders) Clear(ctx context.Context, appointmentID string, kind notify.Kind) error {
	err := r.stream.Purge(ctx, jetstream.WithPurgeSubject(subjectOf(scheduleSubject, appointmentID, kind)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	return err
}

// Scheduled reports when the appointment's kind reminder is scheduled to
// fire (false: not scheduled), as the stream holds it.
func (r *Reminders) Scheduled(ctx context.Context, appointmentID string, kind notify.Kind) (time.Time, bool, error) {
	m, err := r.stream.GetLastMsgForSubject(ctx, subjectOf(scheduleSubject, appointmentID, kind))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	v := m.Header.Get("Nats-Schedule")
	if len(v) < 4 || v[:4] != "@at " {
		return time.Time{}, false, nil
	}
	at, err := time.Parse(time.RFC3339Nano, v[4:])
	return at, err == nil, err
}
