// Package gemini calls Google Gemini's generateContent (external-apis.md
// §4) with function calling: a small net/http client behind the
// resilience wrapper (timeouts, retries on 429/5xx honouring
// RetryInfo.retryDelay, gobreaker) with its own metrics (tokens in and
// out, errors by class). The WhatsApp bot (actors/service/bot) is its
// only caller; geminifake stands in for Google in tests.
//
// The official SDK (google.golang.org/genai) would pull cloud auth, gRPC
// and websockets for one endpoint; this client keeps the base URL
// injectable and maps every error explicitly.
package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// Defaults.
const (
	DefaultBaseURL = "https://generativelanguage.googleapis.com"
	DefaultModel   = "gemini-2.5-flash"
)

// Environment variables (docs/bot.md).
const (
	EnvAPIKey  = "SPA_GEMINI_API_KEY"
	EnvModel   = "SPA_GEMINI_MODEL"
	EnvBaseURL = "SPA_GEMINI_BASE_URL"
)

// Errors.
var (
	// ErrBlocked: Gemini refused the prompt (promptFeedback.blockReason)
	// or stopped the answer for safety; nothing usable came back.
	ErrBlocked = errors.New("gemini: blocked")
	// ErrEmpty: a 200 without a candidate.
	ErrEmpty = errors.New("gemini: no candidate")
)

// APIError is Google's error reply. Error() leaves out Message, which may
// quote the prompt.
type APIError struct {
	HTTPStatus int    `json:"-"`
	Code       int    `json:"code"`
	Message    string `json:"message"`
	Status     string `json:"status"`
	Details    []struct {
		Type       string `json:"@type"`
		RetryDelay string `json:"retryDelay"`
	} `json:"details"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("gemini: HTTP %d %s", e.HTTPStatus, e.Status)
}

// retryDelay is RetryInfo.retryDelay ("30s"), zero if absent.
func (e *APIError) retryDelay() time.Duration {
	for _, d := range e.Details {
		if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
			if v, err := time.ParseDuration(d.RetryDelay); err == nil && v > 0 {
				return v
			}
		}
	}
	return 0
}

// Config configures the client. APIKey comes from the environment and is
// never logged.
type Config struct {
	APIKey  string
	Model   string
	BaseURL string

	// Not from the environment.
	HTTPClient *http.Client
	Policy     resilient.Policy
}

// FromEnv reads the configuration; ok is false without a key (the bot then
// runs its deterministic dialogue).
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg = Config{APIKey: get(EnvAPIKey), Model: get(EnvModel), BaseURL: get(EnvBaseURL)}
	if cfg.APIKey == "" {
		if cfg.Model != "" || cfg.BaseURL != "" {
			return cfg, false, fmt.Errorf("%s is required when %s or %s is set", EnvAPIKey, EnvModel, EnvBaseURL)
		}
		return cfg, false, nil
	}
	return cfg, true, cfg.Validate()
}

// Validate names the first bad setting by its variable.
func (c Config) Validate() error {
	switch {
	case c.APIKey == "":
		return fmt.Errorf("%s is required", EnvAPIKey)
	case c.Model != "" && strings.ContainsAny(c.Model, "/:? "):
		return fmt.Errorf("%s must be a model name such as %s", EnvModel, DefaultModel)
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s must be an http(s) URL", EnvBaseURL)
		}
	}
	return nil
}

// LogValue keeps the key out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("model", c.Model), slog.String("base_url", c.BaseURL),
		slog.Bool("api_key_set", c.APIKey != ""))
}

// Metrics are Gemini's own series beside resilient's latency, outcome and
// breaker state (provider "gemini").
type Metrics struct {
	tokens *prometheus.CounterVec
	errors *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_gemini_tokens_total",
			Help: "Gemini tokens by direction (in: prompt, out: candidates and thoughts).",
		}, []string{"direction"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spa_gemini_errors_total",
			Help: "Failed Gemini calls by class (rate_limited, server, timeout, breaker_open, invalid, auth, blocked, empty, other).",
		}, []string{"class"}),
	}
	for _, c := range []prometheus.Collector{m.tokens, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) usage(u UsageMetadata) {
	if m == nil {
		return
	}
	m.tokens.WithLabelValues("in").Add(float64(u.PromptTokenCount))
	m.tokens.WithLabelValues("out").Add(float64(u.CandidatesTokenCount + u.ThoughtsTokenCount))
}

func (m *Metrics) failed(err error) {
	if m == nil || err == nil {
		return
	}
	m.errors.WithLabelValues(Class(err)).Inc()
}

// Class names an error for metrics and logs.
func Class(err error) string {
	var ae *APIError
	var se *resilient.StatusError
	switch {
	case errors.Is(err, resilient.ErrOpen):
		return "breaker_open"
	case errors.Is(err, ErrBlocked):
		return "blocked"
	case errors.Is(err, ErrEmpty):
		return "empty"
	case errors.As(err, &ae) && ae.HTTPStatus == http.StatusTooManyRequests,
		errors.As(err, &se) && se.Status == http.StatusTooManyRequests:
		return "rate_limited"
	case errors.As(err, &ae) && ae.HTTPStatus >= 500, errors.As(err, &se):
		return "server"
	case errors.Is(err, context.DeadlineExceeded), resilient.IsTransient(err):
		return "timeout"
	case errors.As(err, &ae) && (ae.HTTPStatus == http.StatusForbidden || strings.Contains(ae.Message, "API key")):
		return "auth"
	case errors.As(err, &ae):
		return "invalid"
	}
	return "other"
}

// Client calls generateContent for one model. Safe for concurrent use.
type Client struct {
	cfg     Config
	http    *http.Client
	caller  *resilient.Caller
	metrics *Metrics
	url     string
}

// New returns a client; rm and m may be nil.
func New(cfg Config, rm *resilient.Metrics, m *Metrics) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.Policy.AttemptTimeout == 0 {
		cfg.Policy.AttemptTimeout = 20 * time.Second // answers with thinking take seconds
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, http: hc, caller: resilient.New("gemini", cfg.Policy, rm), metrics: m,
		url: strings.TrimRight(cfg.BaseURL, "/") + "/v1beta/models/" + url.PathEscape(cfg.Model) + ":generateContent"}, nil
}

// State is the breaker's state ("closed", "half-open", "open"): the bot
// answers with its deterministic dialogue while it is open.
func (c *Client) State() string { return c.caller.State() }

// Generate sends req and returns the reply. A blocked prompt or a
// candidate stopped for safety is ErrBlocked; a retryable failure that
// outlasted the retries is transient (resilient.IsTransient).
func (c *Client) Generate(ctx context.Context, req *Request) (*Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out Response
	err = c.caller.Do(ctx, func(ctx context.Context) error {
		r, err := resilient.HTTP(ctx, c.http, func(ctx context.Context) (*http.Request, error) {
			hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			hr.Header.Set("x-goog-api-key", c.cfg.APIKey)
			hr.Header.Set("Content-Type", "application/json")
			return hr, nil
		})
		if r.Status != 0 && r.Status != http.StatusOK {
			ae := &APIError{}
			var env struct {
				Error *APIError `json:"error"`
			}
			if json.Unmarshal(r.Body, &env) == nil && env.Error != nil {
				ae = env.Error
			}
			ae.HTTPStatus = r.Status
			if err != nil { // retryable status: keep RetryInfo's delay
				return resilient.Transient(ae, max(ae.retryDelay(), resilient.RetryAfter(r.Header, time.Now())))
			}
			return ae
		}
		if err != nil {
			return err
		}
		out = Response{}
		if err := json.Unmarshal(r.Body, &out); err != nil {
			return fmt.Errorf("gemini: reply: %w", err)
		}
		return nil
	})
	if err == nil {
		c.metrics.usage(out.UsageMetadata)
		err = check(&out)
	}
	c.metrics.failed(err)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// check turns a 200 without a usable candidate into an error.
func check(r *Response) error {
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		return fmt.Errorf("%w: prompt %s", ErrBlocked, r.PromptFeedback.BlockReason)
	}
	if len(r.Candidates) == 0 {
		return ErrEmpty
	}
	switch fr := r.Candidates[0].FinishReason; fr {
	case "SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION":
		return fmt.Errorf("%w: answer %s", ErrBlocked, fr)
	}
	return nil
}
