package notifyjs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// The delivery checks' stream: one schedule per notification on
// spa.delivery.schedule.<token>, firing once onto spa.delivery.due.<token>,
// which the delivery consumer reads (cmd/spa). The token is a hash of the
// notification id: ids hold characters a subject token may not.
const (
	DeliveryStream       = "SPA_DELIVERY_CHECKS"
	checkScheduleSubject = "spa.delivery.schedule."
	CheckDueSubject      = "spa.delivery.due."
	// CheckDueTTL is how long a fired check stays in the stream.
	CheckDueTTL = 24 * time.Hour
)

// DeliveryChecks is a notify.DeliveryChecks on JetStream message
// schedules, as Reminders: setting a notification's schedule again
// replaces it (the subject rolls up).
type DeliveryChecks struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

var _ notify.DeliveryChecks = (*DeliveryChecks)(nil)

// NewDeliveryChecks creates (or updates) the stream with replicas copies.
func NewDeliveryChecks(ctx context.Context, js jetstream.JetStream, replicas int) (*DeliveryChecks, error) {
	s, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:              DeliveryStream,
			Description:       "Delivery checks of notifications: fall back when no status says a message arrived",
			Subjects:          []string{"spa.delivery.>"},
			Storage:           jetstream.FileStorage,
			Replicas:          max(replicas, 1),
			AllowMsgSchedules: true,
			AllowRollup:       true,
			AllowMsgTTL:       true,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("notifyjs: delivery checks stream: %w", err)
	}
	return &DeliveryChecks{js: js, stream: s}, nil
}

func checkToken(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:16])
}

// Schedule replaces the check of notification id with one that publishes
// a DeliveryCheck carrying cause at at.
func (d *DeliveryChecks) Schedule(ctx context.Context, id string, cause notify.Cause, at time.Time) error {
	data, err := proto.Marshal(&messages.DeliveryCheck{NotificationId: id, Subject: cause.Subject, Data: cause.Data})
	if err != nil {
		return err
	}
	tok := checkToken(id)
	m := nats.NewMsg(checkScheduleSubject + tok)
	m.Data = data
	m.Header.Set("Nats-Schedule", "@at "+at.UTC().Format(time.RFC3339Nano))
	m.Header.Set("Nats-Schedule-Target", CheckDueSubject+tok)
	m.Header.Set("Nats-Schedule-TTL", CheckDueTTL.String())
	_, err = d.js.PublishMsg(ctx, m)
	return err
}

// Fire publishes the waiting check of id now and removes its schedule;
// nothing when none waits (it fired already, or none was set). Should the
// schedule fire too in between, the check is handled twice, which finds
// the fallback done the second time.
func (d *DeliveryChecks) Fire(ctx context.Context, id string) error {
	tok := checkToken(id)
	sched, err := d.stream.GetLastMsgForSubject(ctx, checkScheduleSubject+tok)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	m := nats.NewMsg(CheckDueSubject + tok)
	m.Data = sched.Data
	m.Header.Set("Nats-TTL", CheckDueTTL.String())
	// One firing per schedule, however often its failure is reported.
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("delivery-check:%s:%d", tok, sched.Sequence))
	if _, err := d.js.PublishMsg(ctx, m); err != nil {
		return err
	}
	err = d.stream.Purge(ctx, jetstream.WithPurgeSubject(checkScheduleSubject+tok))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	return err
}

// CheckScheduled reports when the check of id is set to fire (false: none
// waits), as the stream holds it.
func (d *DeliveryChecks) CheckScheduled(ctx context.Context, id string) (time.Time, bool, error) {
	m, err := d.stream.GetLastMsgForSubject(ctx, checkScheduleSubject+checkToken(id))
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
