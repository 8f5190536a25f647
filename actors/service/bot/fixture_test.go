package bot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/whatsapp"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var (
	quiet     = slog.New(slog.NewTextHandler(io.Discard, nil))
	bogota, _ = time.LoadLocation("America/Bogota")
	// now is Tuesday 1 December 2026, 07:00 in Bogota; staff work 08-18.
	now = time.Date(2026, 12, 1, 7, 0, 0, 0, bogota)
)

// sent is one message the fake sender took.
type sent struct {
	To, Text string
	Buttons  []whatsapp.Button
}

type fakeSender struct {
	mu   sync.Mutex
	msgs []sent
	fail error
}

func (s *fakeSender) SendText(_ context.Context, to, body string) (string, error) {
	return s.add(sent{To: to, Text: body})
}

func (s *fakeSender) SendButtons(_ context.Context, to, body string, bs []whatsapp.Button) (string, error) {
	return s.add(sent{To: to, Text: body, Buttons: bs})
}

func (s *fakeSender) add(m sent) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", s.fail
	}
	s.msgs = append(s.msgs, m)
	return fmt.Sprintf("wamid.%d", len(s.msgs)), nil
}

func (s *fakeSender) last(t *testing.T) sent {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		t.Fatal("nothing sent")
	}
	return s.msgs[len(s.msgs)-1]
}

func (s *fakeSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// clients gives each phone a stable client id, as identity does.
type clients struct{}

func (*clients) ClientByPhone(_ context.Context, e164 string) (string, error) {
	return "client-" + strings.TrimPrefix(e164, "+"), nil
}

// fixture is the bot over a real SQLite store, real schedule actors and
// the real booking service: carl gives massages, ana facials.
type fixture struct {
	t     *testing.T
	store persistence.Store
	book  *booking.Service
	out   *fakeSender
	bot   *Service
	mem   Memory
	seq   int
	phone string
	reg   *prometheus.Registry
	clock func() time.Time
}

func newFixture(t *testing.T, model Model) *fixture {
	t.Helper()
	f := &fixture{t: t, store: sqlitetest.Open(t, persistence.Options{}), out: &fakeSender{}, phone: "+573001234567",
		reg: prometheus.NewRegistry(), clock: func() time.Time { return now }}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	sm, err := schedule.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.NewDirectory(sys.Root, schedule.Deps{Store: f.store, Now: f.clock, Metrics: sm,
		Config: schedule.Config{Step: 30 * time.Minute}, Log: quiet}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sched.Stop(5 * time.Second); sys.Shutdown() })
	seedCatalogue(t, f.store)
	cat := catalogue.NewCache(f.store, 0)
	f.book = booking.New(booking.Deps{Store: f.store, Calendars: schedule.NewClient(sched), Catalogue: cat, Logger: quiet, Now: f.clock})
	m, err := NewMetrics(f.reg)
	if err != nil {
		t.Fatal(err)
	}
	f.bot, err = New(Deps{Booking: f.book, Catalogue: cat, Store: f.store, Clients: &clients{}, Sender: f.out,
		Model: model, Metrics: m, Log: quiet, Now: f.clock, Canary: "CANARY-test-7f3a",
		Products: func(context.Context) ([]ProductInfo, error) {
			return []ProductInfo{{Name: "Aceite de masaje", PriceMinor: 4_500_000, Available: true}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// seedCatalogue stores staff working 08-18 every day and two services.
func seedCatalogue(t *testing.T, store persistence.Store) {
	t.Helper()
	var week [7][]persistence.ClockRange
	for d := range week {
		week[d] = []persistence.ClockRange{{StartMinute: 8 * 60, EndMinute: 18 * 60}}
	}
	err := store.InTx(context.Background(), func(tx persistence.Tx) error {
		for id, skills := range map[string][]string{"ana": {"facial"}, "carl": {"massage"}} {
			if _, err := tx.StaffPut(context.Background(), persistence.StaffMember{ID: id, Name: strings.ToUpper(id[:1]) + id[1:], Skills: skills, TimeZone: "America/Bogota", Weekly: week, Active: true}); err != nil {
				return err
			}
		}
		for _, sv := range []persistence.Service{
			{ID: "masaje", Name: "Masaje relajante", Category: "body", Duration: 60 * time.Minute, PriceMinor: 12_000_000, RequiredSkills: []string{"massage"},
				CancelCutoff: 2 * time.Hour, DepositPolicy: persistence.DepositNone, Active: true},
			{ID: "facial", Name: "Facial", Category: "face", Duration: 30 * time.Minute, PriceMinor: 8_000_000, RequiredSkills: []string{"facial"},
				DepositPolicy: persistence.DepositNone, Active: true},
		} {
			if _, err := tx.ServicePut(context.Background(), sv); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// say sends the bot a text message and returns what it answered (the
// last message sent).
func (f *fixture) say(text string) sent {
	f.t.Helper()
	return f.send(text, "")
}

// tap taps a button.
func (f *fixture) tap(b whatsapp.Button) sent {
	f.t.Helper()
	return f.send(b.Title, b.ID)
}

func (f *fixture) send(text, payload string) sent {
	f.t.Helper()
	f.seq++
	before := f.out.count()
	mem, err := f.bot.Handle(context.Background(), Inbound{ID: fmt.Sprintf("wamid.in%d", f.seq), Phone: f.phone, Time: now, Text: text, Payload: payload}, f.mem)
	if err != nil {
		f.t.Fatalf("Handle(%q): %v", text, err)
	}
	f.mem = mem
	if f.out.count() == before {
		return sent{}
	}
	return f.out.last(f.t)
}

// agenda is carl's day of 2 December.
func (f *fixture) appointments() []persistence.Appointment {
	f.t.Helper()
	var list []persistence.Appointment
	err := f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		list, err = tx.AppointmentListByClient(context.Background(), "client-573001234567", now, now.AddDate(0, 1, 0), 50)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return list
}
