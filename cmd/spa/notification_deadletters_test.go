package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// outageSender is a provider that is down (every call unavailable) until
// the test brings it up, and counts what it carried per message body.
type outageSender struct {
	down      atomic.Bool
	mu        sync.Mutex
	delivered map[string]int
	calls     int
}

func (o *outageSender) Send(_ context.Context, m sender.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.down.Load() {
		return fmt.Errorf("%w: 503 for %s", sender.ErrUnavailable, m.To)
	}
	o.delivered[m.Body]++
	return nil
}

func (o *outageSender) deliveredTimes() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]int, len(o.delivered))
	for k, v := range o.delivered {
		out[k] = v
	}
	return out
}

// outageDrivers are the stores the outage test runs on: SQLite always,
// PostgreSQL when TEST_DATABASE_URL is set.
func outageDrivers() map[string]func(*testing.T, persistence.Options) persistence.Store {
	d := map[string]func(*testing.T, persistence.Options) persistence.Store{
		"sqlite": func(t *testing.T, o persistence.Options) persistence.Store { return sqlitetest.Open(t, o) },
	}
	if pgtest.Wanted() {
		d["postgres"] = func(t *testing.T, o persistence.Options) persistence.Store { return pgtest.Open(t, "dlq", o) }
	}
	return d
}

// TestProviderOutageEndsDeliveredOrDeadLettered: the provider is down
// while ten confirmations are handled by the node's consumers (the
// events', the retries'), with a short backoff (SPA_NOTIFY_BACKOFF). The
// first five outlast their attempts while it is down and are parked; the
// next five are failing when it comes back. When every event is settled,
// each of the ten is delivered or parked as a dead letter, none lost and
// none both. The admin then retries the parked ones by class: each is
// delivered, every message reached the client exactly once, and the
// dead-letter queue is empty.
func TestProviderOutageEndsDeliveredOrDeadLettered(t *testing.T) {
	for name, open := range outageDrivers() {
		t.Run(name, func(t *testing.T) { testProviderOutage(t, open) })
	}
}

func testProviderOutage(t *testing.T, open func(*testing.T, persistence.Options) persistence.Store) {
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
	st := open(t, persistence.Options{Personal: pii.ClientKeys{Keys: keyring}})
	const client = "01JCLIENT0000000000000000D"
	sealed, err := keyring.Encrypt([]byte("+573001234567"), pii.PhoneContext(client))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.InTx(ctx, func(tx persistence.Tx) error {
		return tx.UserCreate(ctx, persistence.User{ID: client, PhoneIndex: []byte("index-of-the-phone-d"), PhoneCipher: sealed,
			Roles: []string{"client"}, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}

	out := &outageSender{delivered: map[string]int{}}
	out.down.Store(true)
	// Five attempts over 1.5 s: a message dies well within the outage.
	backoff := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	svc, err := notify.New(notify.Deps{Store: st, Sender: out, Phones: keyring},
		notify.Config{Backoff: backoff, Channels: map[notify.Kind][]sender.Channel{notify.KindAppointmentConfirmed: {sender.ChannelWhatsApp}}})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{log: slog.New(slog.DiscardHandler), store: st, keyring: keyring}
	nn := newNotificationsNode()
	t.Cleanup(nn.stop)
	reg := prometheus.NewPedanticRegistry()
	if err := nn.startDeadLetters(ctx, n, js, reg, 1, svc); err != nil {
		t.Fatal(err)
	}
	if err := nn.followNotifications(ctx, js, n.log, svc); err != nil {
		t.Fatal(err)
	}

	publish := func(i int) {
		start := time.Now().Add(48 * time.Hour)
		ev, err := messages.NewEvent(fmt.Sprintf("appointment/a%d", i), "", "test", &messages.AppointmentChanged{
			AppointmentId: fmt.Sprintf("a%d", i), StaffId: "ana", ServiceId: fmt.Sprintf("service-%d", i), ClientId: client,
			Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)), FromStatus: "held", ToStatus: "confirmed", Version: 2},
			time.Now())
		if err != nil {
			t.Fatal(err)
		}
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, messages.Subject(&messages.AppointmentChanged{}), data, jetstream.WithMsgID(ev.Id)); err != nil {
			t.Fatal(err)
		}
	}
	idOf := func(i int) string { return fmt.Sprintf("appointment:a%d:confirmed:v2:whatsapp", i) }
	rows := func() map[string]persistence.Notification {
		got := map[string]persistence.Notification{}
		if err := st.InTx(ctx, func(tx persistence.Tx) error {
			ns, err := tx.NotificationList(ctx, persistence.NotificationListParams{Limit: 100})
			for _, n := range ns {
				got[n.ID] = n
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	parked := func() map[string]int {
		letters, _, err := nn.dead.List(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, l := range letters {
			got[l.NotificationID]++
		}
		return got
	}

	// The outage: five die and are parked.
	for i := range 5 {
		publish(i)
	}
	testwait.Until(t, 30*time.Second, "the first five parked", func() error {
		if p := parked(); len(p) != 5 {
			return fmt.Errorf("parked %v", p)
		}
		return nil
	})
	// The node's metrics say so, labelled by kind and channel only.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	depth := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "spa_notification_dead_letters" {
			continue
		}
		for _, m := range mf.GetMetric() {
			depth += m.GetGauge().GetValue()
			for _, l := range m.GetLabel() {
				if l.GetName() != "kind" && l.GetName() != "channel" {
					t.Fatalf("dead-letter label %s", l.GetName())
				}
			}
		}
	}
	if depth != 5 {
		t.Fatalf("spa_notification_dead_letters sums to %v, want 5", depth)
	}
	// Five more fail at least once, then the provider comes back.
	for i := 5; i < 10; i++ {
		publish(i)
	}
	testwait.Until(t, 30*time.Second, "the next five to fail once", func() error {
		r := rows()
		for i := 5; i < 10; i++ {
			if r[idOf(i)].Attempts == 0 {
				return fmt.Errorf("%s: %+v", idOf(i), r[idOf(i)])
			}
		}
		return nil
	})
	out.down.Store(false)

	// Every event settled: each message delivered or parked, not both.
	testwait.Until(t, 30*time.Second, "every event settled", func() error {
		cons, err := js.Consumer(ctx, outbox.StreamName, notificationsConsumer)
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 || info.AckFloor.Stream < 10 {
			return fmt.Errorf("pending %d, awaiting ack %d, acknowledged up to %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream)
		}
		return nil
	})
	r, p := rows(), parked()
	for i := range 10 {
		row := r[idOf(i)]
		sent, dead := row.Status == persistence.NotificationSent, row.Status == persistence.NotificationDead && p[row.ID] == 1
		if sent == dead || (i < 5 && !dead) {
			t.Fatalf("%s: %+v, parked %d times; want delivered or parked once (the first five parked)", row.ID, row, p[row.ID])
		}
		if strings.Contains(row.LastError, "3001234567") {
			t.Fatalf("the stored error names the number: %q", row.LastError)
		}
	}

	// The admin retries what was parked; everything ends delivered once.
	dl := nn.deadLetterAdmin()
	admin := service.Caller{Claims: auth.Claims{Subject: "boss", Role: auth.RoleAdmin}}
	sum, err := dl.Summary(ctx, admin, 10)
	if err != nil || len(sum.Groups) != 1 || sum.Groups[0].ErrorClass != notify.ClassProviderUnavailable || sum.Groups[0].Count != len(p) {
		t.Fatalf("summary %+v, %v; want one provider_unavailable group of %d", sum, err, len(p))
	}
	if strings.Contains(sum.Groups[0].Example, "3001234567") {
		t.Fatalf("the parked error names the number: %q", sum.Groups[0].Example)
	}
	if res, err := dl.Retry(ctx, admin, notify.DeadLetterSelector{ErrorClass: notify.ClassProviderUnavailable}); err != nil || res.Done != len(p) {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	testwait.Until(t, 30*time.Second, "every message delivered", func() error {
		r := rows()
		for i := range 10 {
			if r[idOf(i)].Status != persistence.NotificationSent {
				return fmt.Errorf("%+v", r[idOf(i)])
			}
		}
		if p := parked(); len(p) != 0 {
			return fmt.Errorf("still parked %v", p)
		}
		return nil
	})
	delivered := out.deliveredTimes()
	if len(delivered) != 10 {
		t.Fatalf("%d distinct messages delivered, want 10: %v", len(delivered), delivered)
	}
	for body, times := range delivered {
		if times != 1 {
			t.Fatalf("delivered %d times: %q", times, body)
		}
	}
}
