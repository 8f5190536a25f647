package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/twilio"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/notifyjs"
	"github.com/spa-engine/spa/messages"
)

// Delivery statuses and fallback (docs/notifications.md, Delivery
// statuses): the notification service records each message's provider
// id, applies the statuses the messaging webhooks hand it
// (statusReceiver, webhooks.go), and a durable delivery check per message
// (a JetStream message schedule, cluster/notifyjs) falls back to the
// kind's next channel when the message failed or no status came within
// its window.

var deliverySettings = []setting{
	{"notify-status-window", "SPA_NOTIFY_STATUS_WINDOW", notify.DefaultStatusWindow.String(), "how long a sent message waits for a delivery status before the next channel of its kind (SMS, then email) is tried; waitlist offers and deposit holds wait at most 5m, 2-hour reminders 10m", func(c *config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 15m, got %q", v)
		}
		c.NotifyStatusWindow = d
		return nil
	}},
	{"whatsapp-templates", "SPA_WHATSAPP_TEMPLATES", "", "approved WhatsApp templates per kind for outside the 24-hour window: kind=name:language:category[:ttl];... (category utility, marketing or authentication; with Twilio the name is the ContentSid); a kind without one goes by SMS there", func(c *config, v string) (err error) {
		c.NotifyWhatsAppTemplates, err = notify.ParseWhatsAppTemplates(v)
		return err
	}},
}

func init() { settings = append(settings, deliverySettings...) }

// deliveryChecksConsumer reads the delivery checks as they fire.
const deliveryChecksConsumer = "delivery-checks"

// deliveryDeps adds the delivery checks and the spa_notifications_*
// metrics to deps.
func (n *node) deliveryDeps(ctx context.Context, cfg config, js jetstream.JetStream, reg prometheus.Registerer, deps *notify.Deps) error {
	met, err := notify.NewMetrics(reg)
	if err != nil {
		return err
	}
	checks, err := notifyjs.NewDeliveryChecks(ctx, js, cfg.Cluster.replicas())
	if err != nil {
		return err
	}
	deps.Metrics, deps.Checks = met, checks
	// WhatsApp's 24-hour window binds a real provider only: the dev log
	// sink sends free-form text to anyone.
	if set := n.identity.providers; set != nil && (set.WhatsApp != nil || cfg.getenv(twilio.EnvWhatsAppFrom) != "") {
		keys, err := deriveIdentityKeys(cfg.TokenSecret)
		if err != nil {
			return err
		}
		if deps.PhoneIndex, err = pii.NewBlindIndex(keys.index); err != nil {
			return err
		}
	}
	return nil
}

// followDeliveryChecks hands each fired check to svc (see follow): when
// the message failed or no status came, its cause is handled again and
// goes on to the next channel.
func (nn *notificationsNode) followDeliveryChecks(ctx context.Context, js jetstream.JetStream, log *slog.Logger, svc *notify.Service) error {
	return nn.follow(ctx, js, log, notifyjs.DeliveryStream, jetstream.ConsumerConfig{
		Durable:       deliveryChecksConsumer,
		FilterSubject: notifyjs.CheckDueSubject + ">",
		// A check fired while no node ran still falls back.
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}, func(ctx context.Context, msg jetstream.Msg) error {
		var c messages.DeliveryCheck
		if err := proto.Unmarshal(msg.Data(), &c); err != nil || c.NotificationId == "" {
			return errUndecodable
		}
		back, err := svc.CheckDelivery(ctx, c.NotificationId)
		if err != nil || !back {
			return err
		}
		cause := notify.Cause{Subject: c.Subject, Data: c.Data}
		err = handleCause(notify.WithCause(ctx, cause), svc, c.Subject, c.Data)
		var dead *notify.DeadError
		if errors.As(err, &dead) {
			// The fallback died: parked as its cause, not as this check,
			// so retrying the letter hands the event in again.
			return nn.park(ctx, causedMsg{Msg: msg, cause: cause}, dead)
		}
		return err
	})
}

// causeOf is what msg was made from: itself, or for a retried dead
// letter the subject it first came on (notifyjs.HeaderSubject).
func causeOf(msg jetstream.Msg) notify.Cause {
	c := notify.Cause{Subject: msg.Subject(), Data: msg.Data()}
	if h := msg.Headers(); h != nil && h.Get(notifyjs.HeaderSubject) != "" {
		c.Subject = h.Get(notifyjs.HeaderSubject)
	}
	return c
}

// causedMsg is a delivery check's message seen as the cause it carries.
type causedMsg struct {
	jetstream.Msg
	cause notify.Cause
}

func (m causedMsg) Subject() string      { return m.cause.Subject }
func (m causedMsg) Data() []byte         { return m.cause.Data }
func (m causedMsg) Headers() nats.Header { return nil }

// handleCause hands a notification's cause to svc again: a fired reminder
// or a domain event, as their consumers do.
func handleCause(ctx context.Context, svc *notify.Service, subject string, data []byte) error {
	if strings.HasPrefix(subject, notifyjs.DueSubject) {
		return handleReminderData(ctx, svc, data)
	}
	return handleEventData(ctx, svc, data)
}
