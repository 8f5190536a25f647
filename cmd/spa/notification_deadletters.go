package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/notifyjs"
	"github.com/spa-engine/spa/messages"
)

// Dead letters (docs/notifications.md, Retries and dead letters): the
// consumers park a message whose notification died in the dead-letter
// stream (follow); a third consumer reads the messages an admin retried.

// retriesConsumer reads the dead letters an admin retried.
const retriesConsumer = "notification-retries"

// startDeadLetters opens the dead-letter queue (sealed with the node's
// keyring), registers its metrics and follows the retried messages.
func (nn *notificationsNode) startDeadLetters(ctx context.Context, n *node, js jetstream.JetStream, reg prometheus.Registerer, replicas int, svc *notify.Service) error {
	var seal notifyjs.Sealer
	if n.keyring != nil {
		seal = n.keyring
	}
	dl, err := notifyjs.NewDeadLetters(ctx, js, replicas, seal)
	if err != nil {
		return err
	}
	if reg != nil {
		if err := actors.Register(reg, notifyjs.NewDeadLetterMetrics(dl, n.log)); err != nil {
			return fmt.Errorf("dead-letter metrics: %w", err)
		}
	}
	nn.dead = dl
	nn.admin = notify.NewDeadLetters(n.store, dl, nil)
	return nn.followRetries(ctx, js, n.log, svc)
}

// deadLetterAdmin is the admin's use case over the queue; nil when
// notifications are off.
func (nn *notificationsNode) deadLetterAdmin() *notify.DeadLetters {
	if nn == nil {
		return nil
	}
	return nn.admin
}

// park parks msg as a dead letter; nil when the node parks nothing (no
// queue).
func (nn *notificationsNode) park(ctx context.Context, msg jetstream.Msg, dead *notify.DeadError) error {
	if nn.dead == nil {
		return nil
	}
	return nn.dead.Park(ctx, msg, dead)
}

// followRetries hands each retried message to svc as it first came: an
// event, or a due reminder (see follow).
func (nn *notificationsNode) followRetries(ctx context.Context, js jetstream.JetStream, log *slog.Logger, svc *notify.Service) error {
	return nn.follow(ctx, js, log, notifyjs.RetryStream, jetstream.ConsumerConfig{
		Durable:       retriesConsumer,
		FilterSubject: notifyjs.RetrySubject + ">",
	}, func(ctx context.Context, msg jetstream.Msg) error {
		subject := ""
		if h := msg.Headers(); h != nil {
			subject = h.Get(notifyjs.HeaderSubject)
		}
		if strings.HasPrefix(subject, notifyjs.DueSubject) {
			return handleReminderData(ctx, svc, msg.Data())
		}
		return handleEventData(ctx, svc, msg.Data())
	})
}

// handleEventData hands an event's bytes to svc.
func handleEventData(ctx context.Context, svc *notify.Service, data []byte) error {
	var ev messages.Event
	if err := proto.Unmarshal(data, &ev); err != nil || ev.Payload == nil {
		return errUndecodable
	}
	payload, err := ev.Payload.UnmarshalNew()
	if err != nil {
		return errUndecodable
	}
	return svc.Handle(ctx, payload)
}

// handleReminderData hands a fired reminder's bytes to svc.
func handleReminderData(ctx context.Context, svc *notify.Service, data []byte) error {
	var due messages.ReminderDue
	if err := proto.Unmarshal(data, &due); err != nil {
		return errUndecodable
	}
	return svc.HandleReminder(ctx, &due)
}
