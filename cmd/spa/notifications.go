package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/service/notify/quiethours"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/cluster/jsretry"
	"github.com/spa-engine/spa/cluster/notifyjs"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/persistence"
)

// Notifications to clients (docs/notifications.md): a durable JetStream
// consumer hands appointment and waitlist events to the notify service,
// which sends through the same sender the login codes use.

// Notification settings.
const (
	notificationsAuto = "auto"
	notificationsOn   = "true"
	notificationsOff  = "false"
)

var notificationSettings = []setting{
	{"notifications", "SPA_NOTIFICATIONS", notificationsAuto, "messages to clients about their bookings (WhatsApp, then SMS): auto (on; in dev mode without provider keys they go to the log and GET /v1/admin/notifications), true or false", func(c *config, v string) error {
		v = strings.ToLower(strings.TrimSpace(v))
		if v != notificationsAuto && v != notificationsOn && v != notificationsOff {
			return fmt.Errorf("must be %q, %q or %q, got %q", notificationsAuto, notificationsOn, notificationsOff, v)
		}
		c.Notifications = v != notificationsOff
		return nil
	}},
	{"notify-reminders", "SPA_NOTIFY_REMINDERS", "24h,2h", "lead times of the two appointment reminders, longest first (appointment_reminder_24h, appointment_reminder_2h), or off", func(c *config, v string) (err error) {
		c.NotifyReminders, err = notify.ParseReminders(v)
		return err
	}},
	{"notify-quiet-hours", "SPA_NOTIFY_QUIET_HOURS", quiethours.DefaultSpec, "when marketing messages may go, in the studio's time zone (Colombian contact windows and public holidays by default); \"off\" for none; reminders move earlier into them", func(c *config, v string) (err error) {
		c.NotifyQuietHours, err = quiethours.Parse(v, nil)
		return err
	}},
	{"notify-ack-wait", "SPA_NOTIFY_ACK_WAIT", notificationsAckWait.String(), "how long a message a node was handling when it died waits before it is handed out again (to another node or the restarted one); one handling is bounded at three quarters of it", durationIn(5*time.Second, time.Hour, func(c *config, d time.Duration) { c.NotifyAckWait = d })},
	{"notify-backoff", "SPA_NOTIFY_BACKOFF", "10s,1m,5m,15m,30m", "waits before each retry of a message a provider failed for now; after the last one it is a dead letter", func(c *config, v string) (err error) {
		c.NotifyBackoff, err = notify.ParseBackoff(v)
		return err
	}},
}

func init() { settings = append(settings, notificationSettings...) }

// notificationsConsumer is the durable consumer's name: what it has not
// acknowledged is redelivered after a restart, so no message is lost.
const notificationsConsumer = "notifications"

// remindersConsumer reads the reminders their schedules fired.
const remindersConsumer = "reminders"

// notificationsNode is the running consumers (events, reminders).
type notificationsNode struct {
	consumes []jetstream.ConsumeContext
	svc      *notify.Service
	// ctx is the handlings'; cancel ends the handling in flight and wait
	// waits for it, so the store is not closed under a send being
	// recorded.
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	stopped bool
	wait    sync.WaitGroup
	lanes   []*lanes // every consumer's (lanes.go), closed once wait is done
	ackWait time.Duration
	// dead parks dead messages and admin serves the admin's routes over
	// it (notification_deadletters.go); nil in tests that park nothing.
	dead  *notifyjs.DeadLetters
	admin *notify.DeadLetters
}

// begin registers a handling in flight; false once stopping.
func (nn *notificationsNode) begin() bool {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	if nn.stopped {
		return false
	}
	nn.wait.Add(1)
	return true
}

// stop ends the consumer and waits for the handling in flight; safe on
// a node that never started it.
func (nn *notificationsNode) stop() {
	if nn == nil {
		return
	}
	for _, c := range nn.consumes {
		c.Stop()
	}
	nn.mu.Lock()
	nn.stopped = true
	nn.mu.Unlock()
	nn.cancel()
	nn.wait.Wait()
	nn.closeLanes()
}

// startNotifications starts the consumer when SPA_NOTIFICATIONS is on,
// with out, the node's sender (sender.LogSink on channels without a
// provider in dev mode).
func (n *node) startNotifications(ctx context.Context, cfg config, js jetstream.JetStream, reg prometheus.Registerer, out sender.Sender, templates *notify.Catalog) error {
	if !cfg.Notifications {
		n.log.Info("notifications off (SPA_NOTIFICATIONS=false)")
		return nil
	}
	if out == nil {
		return errors.New("notifications: no sender")
	}
	deps := notify.Deps{Store: n.store, Sender: out, Phones: n.keyring, Catalog: templates, Log: n.log}
	if !cfg.NotifyQuietHours.IsOpen() {
		hours := cfg.NotifyQuietHours.In(n.studioZone(ctx))
		deps.QuietHours, deps.ReminderHours = notify.MarketingHours{Policy: hours}, hours
	}
	if len(cfg.NotifyReminders) > 0 {
		r, err := notifyjs.NewReminders(ctx, js, cfg.Cluster.replicas())
		if err != nil {
			return err
		}
		deps.Reminders = r
	}
	if err := n.deliveryDeps(ctx, cfg, js, reg, &deps); err != nil {
		return err
	}
	svc, err := notify.New(deps, notify.Config{Reminders: cfg.NotifyReminders, Backoff: cfg.NotifyBackoff,
		StatusWindow: cfg.NotifyStatusWindow, WhatsAppTemplates: loginCodeTemplate(cfg),
		LoginCodeTTL: session.DefaultCodeTTL})
	if err != nil {
		return fmt.Errorf("SPA_NOTIFICATIONS: %w", err)
	}
	if n.identity != nil && n.identity.codes != nil {
		n.identity.codes.Use(svc) // login codes follow the channel rules from now on
	}
	n.notifications = newNotificationsNode()
	n.notifications.ackWait = cfg.NotifyAckWait
	n.notifications.svc = svc // the delivery statuses' receiver (webhooks.go)
	if err := n.notifications.startDeadLetters(ctx, n, js, reg, cfg.Cluster.replicas(), svc); err != nil {
		return err
	}
	if err := n.notifications.followNotifications(ctx, js, n.log, svc); err != nil {
		return err
	}
	if err := n.notifications.followDeliveryChecks(ctx, js, n.log, svc); err != nil {
		return err
	}
	if deps.Reminders != nil {
		return n.notifications.followReminders(ctx, js, n.log, svc)
	}
	return nil
}

// studioZone is the studio's time zone, read once at start (a change of
// it applies from the next start); Bogotá when none is stored.
func (n *node) studioZone(ctx context.Context) *time.Location {
	var zone string
	_ = n.store.InTx(ctx, func(tx persistence.Tx) error {
		st, err := tx.StudioGet(ctx, catalogue.StudioID)
		zone = st.TimeZone
		return err
	})
	if loc, err := time.LoadLocation(zone); err == nil && zone != "" {
		return loc
	}
	loc, err := time.LoadLocation("America/Bogota")
	if err != nil {
		return time.UTC
	}
	return loc
}

// retryBackoff is the wait before redelivering an event whose handling
// failed before a provider was called (the store unreachable): by the
// delivery count, the last step repeating.
var retryBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute}

// notificationsAckWait is the consumers' AckWait (SPA_NOTIFY_ACK_WAIT):
// a node that died mid-handling leaves its messages to be redelivered
// after it. The handling of one message is bounded at three quarters of
// it (a provider call at 30 s by the service), so a live node always
// answers first.
const notificationsAckWait = 2 * time.Minute

func (nn *notificationsNode) handleTimeout() time.Duration { return nn.ackWait * 3 / 4 }

// notificationsBuffered is how many events a node fetches ahead: two per
// lane. The server counts AckWait from the fetch, so a fetched event must
// wait at most about one handling of its lane (under AckWait), not be
// redelivered to another node while this one still holds it, which could
// send it twice.
const notificationsBuffered = 2 * notificationLanes

// newNotificationsNode is a node with no consumer yet; stop it.
func newNotificationsNode() *notificationsNode {
	hctx, cancel := context.WithCancel(context.Background())
	return &notificationsNode{ctx: hctx, cancel: cancel, ackWait: notificationsAckWait}
}

// followNotifications hands each event of notify.Subjects (appointments,
// waitlist offers, payments, orders, returns) to svc (see follow).
func (nn *notificationsNode) followNotifications(ctx context.Context, js jetstream.JetStream, log *slog.Logger, svc *notify.Service) error {
	return nn.follow(ctx, js, log, outbox.StreamName, jetstream.ConsumerConfig{
		Durable:        notificationsConsumer,
		FilterSubjects: notify.Subjects(),
		// Events from before the consumer first existed are old news.
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}, func(ctx context.Context, msg jetstream.Msg) error {
		return handleEventData(ctx, svc, msg.Data())
	})
}

// errUndecodable: a message no handling will ever read; it is
// terminated, not redelivered.
var errUndecodable = errors.New("undecodable message")

// follow runs a durable consumer of stream with cc (explicit acks, no
// cap on deliveries, the AckWait and buffering below) and hands each
// message to handle, acknowledging it when handle is done with it (sent,
// refused for good, or dead and parked as a dead letter) and redelivering
// it after the delay handle
// asks for (NakWithDelay: a transient provider failure, quiet hours), or
// after retryBackoff when handle could not get that far. Deliveries are
// not capped: the service decides when a message is dead, by the
// attempts it stored.
//
// The consumer has no BackOff: nats-server (2.15) stamps a NakWithDelay
// as if delivered AckWait ago plus the delay, and with a BackOff the wait
// of the n-th delivery is BackOff[n-1], not AckWait (BackOff[0]), so a
// 40 ms nak on a 5 s, 30 s BackOff waits 25 s. The delays here come from
// the naks alone; AckWait only covers a node that died mid-handling.
func (nn *notificationsNode) follow(ctx context.Context, js jetstream.JetStream, log *slog.Logger, stream string, cc jetstream.ConsumerConfig,
	handle func(context.Context, jetstream.Msg) error) error {
	cc.AckPolicy = jetstream.AckExplicitPolicy
	cc.AckWait = nn.ackWait
	cc.MaxDeliver = -1
	cc.MaxAckPending = 64
	cons, err := jsretry.WhileElecting(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, stream, cc)
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", cc.Durable, err)
	}
	lanes := nn.newLanes(notificationLanes)
	handleOne := func(msg jetstream.Msg) {
		// The ack timer restarts here, not at the fetch.
		_ = msg.InProgress()
		ctx, stop := context.WithTimeout(nn.ctx, nn.handleTimeout())
		defer stop()
		// What a message was made from, for its delivery check (delivery.go).
		ctx = notify.WithCause(ctx, causeOf(msg))
		err := handle(ctx, msg)
		var retry *notify.RetryError
		var dead *notify.DeadError
		switch {
		case err == nil:
			_ = msg.Ack()
		case errors.As(err, &dead):
			// Parked, then acknowledged; a parking that failed is tried
			// again on redelivery (the service answers dead again).
			if err := nn.park(ctx, msg, dead); err != nil {
				log.Warn("dead notification not parked; will retry", "consumer", cc.Durable, "kind", dead.Notification.Kind, "err", err)
				_ = msg.NakWithDelay(retryBackoff[0])
				return
			}
			_ = msg.Ack()
		case errors.Is(err, errUndecodable):
			log.Error("undecodable notification message dropped", "consumer", cc.Durable, "subject", msg.Subject())
			_ = msg.Term()
		case errors.As(err, &retry):
			_ = msg.NakWithDelay(retry.After)
		default:
			delay := retryBackoff[0]
			if md, err := msg.Metadata(); err == nil {
				delay = retryBackoff[min(int(md.NumDelivered), len(retryBackoff))-1]
			}
			log.Warn("notification handling failed; will retry", "consumer", cc.Durable, "subject", msg.Subject(), "err", err, "retry_in", delay.String())
			_ = msg.NakWithDelay(delay)
		}
	}
	consume, err := cons.Consume(func(msg jetstream.Msg) {
		if !nn.begin() {
			return // stopping: redelivered to whoever runs next
		}
		lanes.hand(nn, msg, handleOne)
	}, jetstream.PullMaxMessages(notificationsBuffered))
	if err != nil {
		return fmt.Errorf("follow %s: %w", cc.Durable, err)
	}
	nn.mu.Lock()
	nn.consumes = append(nn.consumes, consume)
	nn.mu.Unlock()
	return nil
}

// followReminders hands each fired reminder to svc (see follow).
func (nn *notificationsNode) followReminders(ctx context.Context, js jetstream.JetStream, log *slog.Logger, svc *notify.Service) error {
	return nn.follow(ctx, js, log, notifyjs.RemindersStream, jetstream.ConsumerConfig{
		Durable:       remindersConsumer,
		FilterSubject: notifyjs.DueSubject + ">",
		// A reminder fired while no node ran is still worth sending
		// (HandleReminder drops it once the appointment began).
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}, func(ctx context.Context, msg jetstream.Msg) error {
		return handleReminderData(ctx, svc, msg.Data())
	})
}

// loginCodeTemplate is SPA_WHATSAPP_TEMPLATES with, when it names none for
// login_code, the sign-in template SPA_WHATSAPP_OTP_TEMPLATE as that
// kind's (category authentication), so a node configured before codes
// went through the notifications still sends them as its template.
func loginCodeTemplate(cfg config) map[notify.Kind]notify.WhatsAppTemplate {
	name := strings.TrimSpace(cfg.getenv(whatsapp.EnvOTPTemplate))
	if _, ok := cfg.NotifyWhatsAppTemplates[notify.KindLoginCode]; ok || name == "" {
		return cfg.NotifyWhatsAppTemplates
	}
	out := maps.Clone(cfg.NotifyWhatsAppTemplates)
	if out == nil {
		out = map[notify.Kind]notify.WhatsAppTemplate{}
	}
	lang := strings.TrimSpace(cfg.getenv(whatsapp.EnvTemplateLanguage))
	if lang == "" {
		lang = whatsapp.DefaultTemplateLanguage
	}
	out[notify.KindLoginCode] = notify.WhatsAppTemplate{Name: name, Language: lang, Category: notify.CategoryAuthentication}
	return out
}
