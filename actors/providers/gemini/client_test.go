package gemini_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spa-engine/spa/actors/providers/gemini"
	"github.com/spa-engine/spa/actors/providers/gemini/geminifake"
	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
	"github.com/spa-engine/spa/actors/providers/resilient"
)

func newClient(t *testing.T, fake *geminifake.Server, p resilient.Policy) (*gemini.Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := gemini.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if p.BaseDelay == 0 {
		p.BaseDelay, p.MaxDelay = time.Millisecond, 2*time.Millisecond
	}
	c, err := gemini.New(gemini.Config{APIKey: "k", BaseURL: fake.URL, Model: "gemini-test", Policy: p}, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func userText(s string) *gemini.Request {
	return &gemini.Request{Contents: []gemini.Content{{Role: "user", Parts: []gemini.Part{{Text: s}}}}}
}

func TestTextAndTokens(t *testing.T) {
	fake := geminifake.New("k")
	defer fake.Close()
	fake.Queue(geminifake.Reply{Text: "hola"})
	c, m := newClient(t, fake, resilient.Policy{})
	r, err := c.Generate(context.Background(), userText("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Text() != "hola" {
		t.Fatalf("text %q", r.Text())
	}
	if got := fake.Log(); len(got) != 1 || !strings.Contains(string(got[0].Raw), `"text":"hi"`) {
		t.Fatalf("log %+v", got)
	}
	mfs, err := m.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].Metric) != 2 || mfs[0].Metric[0].Counter.GetValue() <= 0 {
		t.Fatalf("token series: %v %v", err, mfs)
	}
}

// A function call's thoughtSignature must travel back unchanged: the fake,
// like Gemini 3, answers 400 otherwise, and 400 is not retried.
func TestFunctionCallSignatureEcho(t *testing.T) {
	fake := geminifake.New("k")
	defer fake.Close()
	fake.Queue(geminifake.Reply{Calls: []gemini.FunctionCall{{Name: "list_services", Args: json.RawMessage(`{"q":"masaje"}`)}}},
		geminifake.Reply{Text: "listo"})
	c, _ := newClient(t, fake, resilient.Policy{})
	req := userText("servicios?")
	req.Tools = []gemini.Tool{{FunctionDeclarations: []gemini.FunctionDeclaration{{Name: "list_services", Description: "x"}}}}
	r, err := c.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	calls := r.Calls()
	if len(calls) != 1 || calls[0].Name != "list_services" || r.Candidates[0].Content.Parts[0].ThoughtSignature == "" {
		t.Fatalf("calls %+v", r.Candidates)
	}
	answer := gemini.Content{Role: "user", Parts: []gemini.Part{{FunctionResponse: &gemini.FunctionResponse{Name: "list_services", Response: json.RawMessage(`{"services":[]}`)}}}}

	stripped := r.Candidates[0].Content
	stripped.Parts = []gemini.Part{{FunctionCall: stripped.Parts[0].FunctionCall}}
	bad := *req
	bad.Contents = append(append([]gemini.Content(nil), req.Contents...), stripped, answer)
	_, err = c.Generate(context.Background(), &bad)
	var ae *gemini.APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusBadRequest || resilient.IsTransient(err) {
		t.Fatalf("signature dropped: err %v", err)
	}

	req.Contents = append(req.Contents, r.Candidates[0].Content, answer)
	r, err = c.Generate(context.Background(), req)
	if err != nil || r.Text() != "listo" {
		t.Fatalf("echoed: %v %+v", err, r)
	}
}

func TestRetriesRateLimitThenSucceeds(t *testing.T) {
	fake := geminifake.New("k")
	defer fake.Close()
	fake.Faults.Next(fakefault.Fault{Status: 429, Body: strings.Replace(geminifake.RateLimited, `"1s"`, `"5ms"`, 1)},
		fakefault.Fault{Status: 503, Body: geminifake.Overloaded})
	fake.Queue(geminifake.Reply{Text: "ok"})
	c, _ := newClient(t, fake, resilient.Policy{Attempts: 3})
	if _, err := c.Generate(context.Background(), userText("x")); err != nil {
		t.Fatal(err)
	}
	if fake.Requests() != 3 {
		t.Fatalf("requests %d, want 3", fake.Requests())
	}
}

func TestErrorsClassifiedAndBreakerOpens(t *testing.T) {
	fake := geminifake.New("k")
	defer fake.Close()
	fake.Faults.Always(fakefault.Fault{Status: 503, Body: geminifake.Overloaded})
	reg := prometheus.NewRegistry()
	m, _ := gemini.NewMetrics(reg)
	c, err := gemini.New(gemini.Config{APIKey: "k", BaseURL: fake.URL,
		Policy: resilient.Policy{Attempts: 1, FailuresToOpen: 2, OpenFor: time.Hour}}, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.Generate(context.Background(), userText("x")); gemini.Class(err) != "server" || !resilient.IsTransient(err) {
			t.Fatalf("503: %v class %s", err, gemini.Class(err))
		}
	}
	if c.State() != "open" {
		t.Fatalf("breaker %s", c.State())
	}
	before := fake.Requests()
	if _, err := c.Generate(context.Background(), userText("x")); gemini.Class(err) != "breaker_open" {
		t.Fatalf("open: %v", err)
	}
	if fake.Requests() != before {
		t.Fatal("an open breaker still called the provider")
	}
	if n := testutil.CollectAndCount(reg, "spa_gemini_errors_total"); n != 2 {
		t.Fatalf("error series %d", n)
	}
}

func TestBlockedAndBadKey(t *testing.T) {
	fake := geminifake.New("k")
	defer fake.Close()
	fake.Queue(geminifake.Reply{Block: "SAFETY"})
	c, _ := newClient(t, fake, resilient.Policy{})
	if _, err := c.Generate(context.Background(), userText("x")); !errors.Is(err, gemini.ErrBlocked) {
		t.Fatalf("blocked: %v", err)
	}
	bad, _ := gemini.New(gemini.Config{APIKey: "wrong", BaseURL: fake.URL}, nil, nil)
	if _, err := bad.Generate(context.Background(), userText("x")); gemini.Class(err) != "auth" || resilient.IsTransient(err) {
		t.Fatalf("bad key: %v (%s)", err, gemini.Class(err))
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if _, ok, err := gemini.FromEnv(get); ok || err != nil {
		t.Fatalf("unset: %v %v", ok, err)
	}
	env[gemini.EnvModel] = "m"
	if _, _, err := gemini.FromEnv(get); err == nil || !strings.Contains(err.Error(), gemini.EnvAPIKey) {
		t.Fatalf("model without key: %v", err)
	}
	env[gemini.EnvAPIKey] = "secret"
	env[gemini.EnvBaseURL] = "ftp://x"
	if _, _, err := gemini.FromEnv(get); err == nil || !strings.Contains(err.Error(), gemini.EnvBaseURL) {
		t.Fatalf("bad url: %v", err)
	}
}
