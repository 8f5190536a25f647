package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service/notify"
	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/outbox"
	"github.com/spa-engine/spa/cmd/spa/loadgen"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/pgtest"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

// eventNumber finds the event a message answers in its text (the bench
// names each event's service svc<i>x).
var eventNumber = regexp.MustCompile(`svc(\d+)x`)

// timedSender is a provider that answers at once and notes when each
// event's message reached it, and how often.
type timedSender struct {
	mu    sync.Mutex
	at    map[int]time.Time
	calls map[int]int
	done  chan struct{}
	want  int
}

func (s *timedSender) Send(_ context.Context, m sender.Message) error {
	now := time.Now()
	sub := eventNumber.FindStringSubmatch(m.Body)
	if sub == nil {
		return fmt.Errorf("%w: no event number in %q", sender.ErrRejected, m.Body)
	}
	i, _ := strconv.Atoi(sub[1])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[i]++
	if s.calls[i] == 1 {
		s.at[i] = now
		if len(s.at) == s.want {
			close(s.done)
		}
	}
	return nil
}

// BenchmarkNotificationFanOut: b.N appointment confirmations published to
// the event stream are turned into WhatsApp messages by the node's
// notification consumer (the store records each one: PostgreSQL with
// TEST_DATABASE_URL, else SQLite) and handed to a provider that answers at
// once. It reports messages/s, the p50 and p99 from an event's publication
// to its provider call, and the duplicates (it fails on any). make bench
// runs it with -benchtime 10000x and SPA_BENCH_RESULTS, where it writes
// its result for the report.
func BenchmarkNotificationFanOut(b *testing.B) {
	ctx := b.Context()
	ns, err := natsserver.Start(ctx, natsserver.Config{Port: -1, StoreDir: b.TempDir()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Stop)
	js, err := ns.JetStream()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: outbox.StreamName,
		Subjects: []string{messages.SubjectPrefix + ">"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	keyring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{7}, pii.KeyLen)}})
	if err != nil {
		b.Fatal(err)
	}
	opts := persistence.Options{Personal: pii.ClientKeys{Keys: keyring}}
	var st persistence.Store
	driver := "sqlite"
	if pgtest.Wanted() {
		st, driver = pgtest.Open(b, "notifybench", opts), "postgres"
	} else {
		st = sqlitetest.Open(b, opts)
	}
	// A hundred clients, each with a phone.
	const clients = 100
	clientOf := func(i int) string { return fmt.Sprintf("01JBENCHCLIENT%012d", i%clients) }
	for c := range clients {
		id := clientOf(c)
		sealed, err := keyring.Encrypt(fmt.Appendf(nil, "+5730012%05d", c), pii.PhoneContext(id))
		if err != nil {
			b.Fatal(err)
		}
		if err := st.InTx(ctx, func(tx persistence.Tx) error {
			return tx.UserCreate(ctx, persistence.User{ID: id, PhoneIndex: fmt.Appendf(nil, "bench-index-%d", c), PhoneCipher: sealed,
				Roles: []string{"client"}, CreatedAt: time.Now(), UpdatedAt: time.Now()})
		}); err != nil {
			b.Fatal(err)
		}
	}
	provider := &timedSender{at: map[int]time.Time{}, calls: map[int]int{}, done: make(chan struct{}), want: b.N}
	svc, err := notify.New(notify.Deps{Store: st, Sender: provider, Phones: keyring},
		notify.Config{Channels: map[notify.Kind][]sender.Channel{notify.KindAppointmentConfirmed: {sender.ChannelWhatsApp}}})
	if err != nil {
		b.Fatal(err)
	}
	nn := newNotificationsNode()
	b.Cleanup(nn.stop)
	if err := nn.followNotifications(ctx, js, slog.New(slog.DiscardHandler), svc); err != nil {
		b.Fatal(err)
	}

	// The events, made before the clock starts.
	start := time.Now().Add(72 * time.Hour)
	payloads := make([][]byte, b.N)
	ids := make([]string, b.N)
	for i := range b.N {
		ev, err := messages.NewEvent(fmt.Sprintf("appointment/b%d", i), "", "bench", &messages.AppointmentChanged{
			AppointmentId: fmt.Sprintf("b%d", i), StaffId: "ana", ServiceId: fmt.Sprintf("svc%dx", i), ClientId: clientOf(i),
			Start: timestamppb.New(start), End: timestamppb.New(start.Add(time.Hour)), FromStatus: "held", ToStatus: "confirmed", Version: 2},
			time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if payloads[i], err = proto.Marshal(ev); err != nil {
			b.Fatal(err)
		}
		ids[i] = ev.Id
	}
	published := make([]time.Time, b.N)
	subject := messages.Subject(&messages.AppointmentChanged{})
	b.ResetTimer()
	t0 := time.Now()
	for i := range b.N {
		published[i] = time.Now()
		if _, err := js.PublishAsync(subject, payloads[i], jetstream.WithMsgID(ids[i])); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing did not complete")
	}
	select {
	case <-provider.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d messages reached the provider", len(provider.at), b.N)
	}
	elapsed := time.Since(t0)
	b.StopTimer()
	// Redeliveries would come now, if any: give them a moment.
	time.Sleep(500 * time.Millisecond)

	provider.mu.Lock()
	defer provider.mu.Unlock()
	lat := make([]float64, 0, b.N)
	dups := 0
	for i := range b.N {
		lat = append(lat, float64(provider.at[i].Sub(published[i]))/float64(time.Millisecond))
		dups += provider.calls[i] - 1
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	perSec := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(perSec, "msgs/s")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(float64(dups), "duplicates")
	if dups != 0 {
		b.Fatalf("%d duplicate messages", dups)
	}
	if dir := os.Getenv("SPA_BENCH_RESULTS"); dir != "" {
		res := loadgen.Result{Name: "notifications", Label: loadgen.EngineLabel, Scenario: "notifications", Mode: "burst",
			Started: t0.UTC(), Elapsed: elapsed.Seconds(), Params: map[string]string{"driver": driver},
			Correct:       loadgen.Correctness{OK: true, Unchecked: "duplicates counted at the provider", Violations: []string{}},
			Notifications: &loadgen.Notifications{Events: b.N, PerSec: perSec, P50Ms: p50, P99Ms: p99, Duplicates: dups, Driver: driver}}
		out, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "actors-notifications.json"), out, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
