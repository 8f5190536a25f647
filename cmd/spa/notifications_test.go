package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// countingSender counts the messages per channel and fails them all
// with err when it is set.
type countingSender struct {
	mu   sync.Mutex
	sent map[sender.Channel]int
	err  error
}

func (c *countingSender) Send(_ context.Context, m sender.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[m.Channel]++
	return c.err
}

func (c *countingSender) count(ch sender.Channel) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent[ch]
}

// consumerFixture is an embedded JetStream with the events stream, a store
// with a client who has a phone, and the consumer over a notify service.
func consumerFixture(t *testing.T, out sender.Sender, backoff []time.Duration) (jetstream.JetStream, persistence.Store, string) {
	t.Helper()
	ctx := t.Context()
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: -1, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Stop)
	js, err := ns.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: outbox.StreamName,
		Subjects: []string{messages.SubjectPrefix + ">"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	keyring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{9}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	st := sqlitetest.Open(t, persistence.Options{Personal: pii.ClientKeys{Keys: keyring}})
	const client = "01JCLIENT0000000000000000B"
	sealed, err := keyring.Encrypt([]byte("+573001234567"), pii.PhoneContext(client))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		return tx.UserCreate(ctx, persistence.User{ID: client, PhoneIndex: []byte("index-of-the-phone"), PhoneCipher: sealed,
			Roles: []string{"client"}, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	svc, err := notify.New(notify.Deps{Store: st, Sender: out, Phones: keyring}, notify.Config{Backoff: backoff})
	if err != nil {
		t.Fatal(err)
	}
	nn := newNotificationsNode()
	t.Cleanup(nn.stop)
	if err := nn.followNotifications(ctx, js, slog.New(slog.DiscardHandler), svc); err != nil {
		t.Fatal(err)
	}
	return js, st, client
}

// publishConfirmed publishes appointment a1's confirmation as a new
// event (its own Nats-Msg-Id: what a second relay or a replay would do).
func publishConfirmed(t *testing.T, js jetstream.JetStream, client string) {
	t.Helper()
	start := time.Now().Add(48 * time.Hour)
	ev, err := messages.NewEvent("appointment/a1", "", "test", &messages.AppointmentChanged{AppointmentId: "a1", StaffId: "ana",
		ServiceId: "massage-60", ClientId: client, Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)),
		FromStatus: "held", ToStatus: "confirmed", Version: 2}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), messages.Subject(&messages.AppointmentChanged{}), data, jetstream.WithMsgID(ev.Id)); err != nil {
		t.Fatal(err)
	}
}

func storedNotifications(t *testing.T, st persistence.Store) []persistence.Notification {
	t.Helper()
	var ns []persistence.Notification
	if err := st.InTx(t.Context(), func(tx persistence.Tx) (err error) {
		ns, err = tx.NotificationList(t.Context(), persistence.NotificationListParams{Limit: 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ns
}

// waitAcknowledged waits until the consumer has nothing pending or
// unacknowledged: every delivery was settled.
func waitAcknowledged(t *testing.T, js jetstream.JetStream, delivered uint64) {
	t.Helper()
	testwait.Until(t, 20*time.Second, "the consumer to settle every event", func() error {
		cons, err := js.Consumer(t.Context(), outbox.StreamName, notificationsConsumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream < delivered {
			return fmt.Errorf("pending %d, awaiting ack %d, acknowledged up to %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream)
		}
		return nil
	})
}

// TestNotificationConsumerSendsOnce: the same confirmation published
// twice reaches the client once; both events are acknowledged.
func TestNotificationConsumerSendsOnce(t *testing.T) {
	out := &countingSender{sent: map[sender.Channel]int{}}
	js, st, client := consumerFixture(t, out, nil)
	publishConfirmed(t, js, client)
	publishConfirmed(t, js, client)
	waitAcknowledged(t, js, 2)
	if n := out.count(sender.ChannelWhatsApp) + out.count(sender.ChannelSMS); n != 1 {
		t.Fatalf("%d messages sent; want 1", n)
	}
	if ns := storedNotifications(t, st); len(ns) != 1 || ns[0].Status != persistence.NotificationSent {
		t.Fatalf("%+v", ns)
	}
}

// TestNotificationConsumerRetriesThenDeadLetters: with the provider down,
// the consumer redelivers the event after each step of the backoff (Nak
// with delay) until the notification is dead, then acknowledges it.
func TestNotificationConsumerRetriesThenDeadLetters(t *testing.T) {
	out := &countingSender{sent: map[sender.Channel]int{}, err: fmt.Errorf("%w: 503", sender.ErrUnavailable)}
	backoff := []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}
	js, st, client := consumerFixture(t, out, backoff)
	publishConfirmed(t, js, client)
	testwait.Until(t, 20*time.Second, "the dead letter", func() error {
		if ns := storedNotifications(t, st); len(ns) != 1 || ns[0].Status != persistence.NotificationDead {
			return fmt.Errorf("%+v", ns)
		}
		return nil
	})
	waitAcknowledged(t, js, 1)
	ns := storedNotifications(t, st)
	if ns[0].Attempts != len(backoff)+1 || ns[0].LastError == "" {
		t.Fatalf("dead letter %+v; want %d attempts and the error", ns[0], len(backoff)+1)
	}
	if n := out.count(sender.ChannelWhatsApp); n != len(backoff)+1 || out.count(sender.ChannelSMS) != 0 {
		t.Fatalf("%d WhatsApp calls, %d SMS; want %d and none", n, out.count(sender.ChannelSMS), len(backoff)+1)
	}
}

// TestNotificationSettings: on unless SPA_NOTIFICATIONS says false; any
// other value stops the start naming the variable.
func TestNotificationSettings(t *testing.T) {
	for _, tc := range []struct {
		value string
		on    bool
		err   bool
	}{{"", true, false}, {"auto", true, false}, {"true", true, false}, {" FALSE ", false, false}, {"false", false, false}, {"sometimes", false, true}} {
		c, err := parseConfig("serve", nil, env(map[string]string{"SPA_NOTIFICATIONS": tc.value}), io.Discard)
		switch {
		case tc.err && (err == nil || !strings.Contains(err.Error(), "SPA_NOTIFICATIONS: must be")):
			t.Errorf("%q: err %v, want one naming SPA_NOTIFICATIONS", tc.value, err)
		case !tc.err && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case !tc.err && c.Notifications != tc.on:
			t.Errorf("%q: notifications %v, want %v", tc.value, c.Notifications, tc.on)
		}
	}
}
