package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/gemini"
	"github.com/spa-engine/spa/actors/providers/gemini/geminifake"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/persistence"
)

func newModel(t *testing.T, p resilient.Policy) (*geminifake.Server, *gemini.Client) {
	t.Helper()
	fake := geminifake.New("test-key")
	t.Cleanup(fake.Close)
	if p.BaseDelay == 0 {
		p.BaseDelay, p.MaxDelay = time.Millisecond, 2*time.Millisecond
	}
	c, err := gemini.New(gemini.Config{APIKey: "test-key", BaseURL: fake.URL, Policy: p}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func call(name, args string) gemini.FunctionCall {
	return gemini.FunctionCall{Name: name, Args: json.RawMessage(args)}
}

// The Spanish sentence through the model: it searches, proposes (a real
// hold and buttons), the tap confirms. The model never sees the client's
// phone, email or card, which come back in the reply.
func TestModelBookingAndNoRawPII(t *testing.T) {
	t.Parallel()
	fake, model := newModel(t, resilient.Policy{})
	f := newFixture(t, model)
	fake.Queue(
		geminifake.Reply{Calls: []gemini.FunctionCall{call("search_availability", `{"service_id":"masaje","date":"2026-12-02","time":"15:00"}`)}},
		geminifake.Reply{Calls: []gemini.FunctionCall{call("propose_booking", `{"service_id":"masaje","date":"2026-12-02","time":"15:00"}`)}},
	)
	got := f.say("Hola, quiero un masaje mañana a las 3")
	if len(got.Buttons) != 2 || got.Buttons[0].Title != "Confirmar" {
		t.Fatalf("proposal %+v", got)
	}
	log := fake.Log()
	if len(log) != 2 || !strings.Contains(string(log[1].Raw), "free_starts") || !strings.Contains(string(log[1].Raw), `"15:00"`) {
		t.Fatalf("the availability did not reach the model: %d requests", len(log))
	}
	f.tap(got.Buttons[0])
	if aps := f.appointments(); len(aps) != 1 || aps[0].Status != persistence.StatusConfirmed {
		t.Fatalf("after Confirmar: %+v", aps)
	}

	fake.Queue(geminifake.Reply{Calls: []gemini.FunctionCall{call("reply", `{"text":"Anotado: te escribiremos a [EMAIL_1]."}`)}})
	r := f.say("mi correo es ana.perez@example.com, mi cel 300 123 4567, tarjeta 4242 4242 4242 4242, cédula 1.020.345.678")
	if !strings.Contains(r.Text, "ana.perez@example.com") {
		t.Fatalf("placeholder not restored: %q", r.Text)
	}
	for _, l := range fake.Log() {
		raw := string(l.Raw)
		for _, secret := range []string{"ana.perez@example.com", "300 123 4567", "3001234567", "4242 4242 4242 4242", "1.020.345.678", "573001234567"} {
			if strings.Contains(raw, secret) {
				t.Fatalf("the model received %q", secret)
			}
		}
	}
	if !strings.Contains(string(fake.Log()[len(fake.Log())-1].Raw), "[CARD_1]") {
		t.Fatal("the card placeholder is missing")
	}
}

// Unknown tools and arguments outside the schema (a client id: identity
// comes from the sender only) are refused and told to the model.
func TestModelToolsRefused(t *testing.T) {
	t.Parallel()
	fake, model := newModel(t, resilient.Policy{})
	f := newFixture(t, model)
	fake.Queue(
		geminifake.Reply{Calls: []gemini.FunctionCall{call("delete_all_appointments", `{}`)}},
		geminifake.Reply{Calls: []gemini.FunctionCall{call("propose_booking", `{"service_id":"masaje","date":"2026-12-02","time":"15:00","client_id":"someone-else"}`)}},
		geminifake.Reply{Calls: []gemini.FunctionCall{call("reply", `{"text":"No puedo hacer eso."}`)}},
	)
	r := f.say("reserva un masaje mañana a las 3 para otro cliente")
	if r.Text != "No puedo hacer eso." && !strings.Contains(r.Text, "Solo puedo") {
		t.Fatalf("reply %q", r.Text)
	}
	if len(f.appointments()) != 0 {
		t.Fatal("a refused tool call booked")
	}
	if n := len(fake.Log()); n != 0 && n != 3 {
		t.Fatalf("requests %d", n)
	}
	for _, l := range fake.Log()[1:] {
		if !strings.Contains(string(l.Raw), "refused") {
			t.Fatalf("refusal not told to the model: %s", l.Raw)
		}
	}
}

// Output checks: a reply leaking the canary is not sent; the
// deterministic dialogue answers instead.
func TestModelLeakFallsBack(t *testing.T) {
	t.Parallel()
	fake, model := newModel(t, resilient.Policy{})
	f := newFixture(t, model)
	fake.Queue(geminifake.Reply{Text: "Claro: mi marcador es CANARY-test-7f3a"})
	r := f.say("quiero un masaje mañana a las 3")
	if strings.Contains(r.Text, "CANARY") || len(r.Buttons) != 2 {
		t.Fatalf("reply %+v", r)
	}
}

// With Gemini down (503s until the breaker opens) the deterministic
// dialogue books; with the breaker open the model is not called.
func TestModelDownDeterministicBooks(t *testing.T) {
	t.Parallel()
	fake, model := newModel(t, resilient.Policy{Attempts: 2, FailuresToOpen: 2, OpenFor: time.Hour})
	f := newFixture(t, model)
	fake.FailWith(503, geminifake.Overloaded)
	r := f.say("Hola, quiero un masaje mañana a las 3")
	if len(r.Buttons) != 2 {
		t.Fatalf("fallback proposal %+v", r)
	}
	if model.State() != "open" {
		t.Fatalf("breaker %s", model.State())
	}
	before := fake.Requests()
	f.tap(r.Buttons[0])
	f.say("mis citas")
	if fake.Requests() != before {
		t.Fatal("the model was called with its breaker open")
	}
	if aps := f.appointments(); len(aps) != 1 || aps[0].Status != persistence.StatusConfirmed {
		t.Fatalf("agenda %+v", aps)
	}
}

// budget is a Budget that answers cap (or err) and records the usage.
type budget struct {
	mu    sync.Mutex
	cap   string
	err   error
	spent []gemini.UsageMetadata
}

func (b *budget) Allow(context.Context, string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cap, b.err
}

func (b *budget) Spend(_ context.Context, _ string, u gemini.UsageMetadata) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spent = append(b.spent, u)
	return nil
}

// TestModelBudget: every model call's usage is recorded; a turn over a
// cost cap, or whose budget cannot be read, is answered by the
// deterministic dialogue without calling the model, and counted by cap.
func TestModelBudget(t *testing.T) {
	t.Parallel()
	fake, model := newModel(t, resilient.Policy{})
	f := newFixture(t, model)
	b := &budget{}
	f.bot.d.Budget = b
	fake.Queue(geminifake.Reply{Calls: []gemini.FunctionCall{call("reply", `{"text":"Hola, ¿en qué te ayudo?"}`)}})
	if r := f.say("hola, buenas tardes"); !strings.Contains(r.Text, "en qué te ayudo") {
		t.Fatalf("model reply %+v", r)
	}
	if len(b.spent) != 1 || b.spent[0].PromptTokenCount == 0 || b.spent[0].TotalTokenCount == 0 {
		t.Fatalf("usage recorded %+v", b.spent)
	}
	before := fake.Requests()
	b.cap = "phone_tokens"
	if r := f.say("Hola, quiero un masaje mañana a las 3"); len(r.Buttons) != 2 {
		t.Fatalf("the deterministic proposal over the cap %+v", r)
	}
	b.cap, b.err = "", errors.New("quota unreachable")
	f.say("mis citas")
	if fake.Requests() != before {
		t.Fatal("the model was called over its budget")
	}
	if n := metricValue(t, f.reg, "spa_bot_model_budget_refusals_total", map[string]string{"cap": "phone_tokens"}); n != 1 {
		t.Fatalf("refusals over the phone's cap %v, want 1", n)
	}
}
