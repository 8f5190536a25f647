// Package recaptcha checks reCAPTCHA v3 tokens with Google's siteverify
// endpoint before risky actions (requesting an OTP, signing in). Each
// context (the action name the page used) has its own score threshold; the
// check is optional per context: only contexts in Config.Rules are enforced
// (Enabled). recaptchafake stands in for Google in tests.
//
// Wire format (https://developers.google.com/recaptcha/docs/verify): POST
// application/x-www-form-urlencoded secret, response, remoteip; reply 200
// JSON {"success", "score", "action", "challenge_ts", "hostname",
// "error-codes"}.
package recaptcha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
)

// DefaultVerifyURL is Google's endpoint; tests point it at recaptchafake.
const DefaultVerifyURL = "https://www.google.com/recaptcha/api/siteverify"

// DefaultMinScore is the threshold for a context without its own.
const DefaultMinScore = 0.5

// Environment variable names (documented in docs/providers.md).
const (
	EnvSecret    = "SPA_RECAPTCHA_SECRET"
	EnvVerifyURL = "SPA_RECAPTCHA_VERIFY_URL"
	EnvMinScore  = "SPA_RECAPTCHA_MIN_SCORE"
	EnvContexts  = "SPA_RECAPTCHA_CONTEXTS"
	EnvHostname  = "SPA_RECAPTCHA_HOSTNAME"
)

// Verification outcomes. A caller answers the first three with a 4xx (the
// client must retry the challenge) and decides for itself whether
// ErrUnavailable fails open or closed (OTP sending fails closed).
var (
	// ErrInvalidToken: missing, malformed, expired or already used token.
	ErrInvalidToken = errors.New("recaptcha: invalid token")
	// ErrMismatch: the token was made for another action or hostname.
	ErrMismatch = errors.New("recaptcha: token action or hostname mismatch")
	// ErrLowScore: Google thinks the caller is likely a bot.
	ErrLowScore = errors.New("recaptcha: score below threshold")
	// ErrUnavailable: Google could not be asked (timeout, 5xx, open breaker)
	// or refused our secret (a configuration problem).
	ErrUnavailable = errors.New("recaptcha: verification unavailable")
)

// Rule is the check for one context.
type Rule struct {
	// MinScore in [0, 1]; zero means the Config's MinScore.
	MinScore float64
	// Action the token must carry; empty means the context name.
	Action string
}

// Config configures a Verifier.
type Config struct {
	Secret    string
	VerifyURL string
	// MinScore applies to contexts whose Rule has none (default 0.5).
	MinScore float64
	// Hostname, if set, must match the token's hostname.
	Hostname string
	// Rules lists the contexts that are checked.
	Rules map[string]Rule

	HTTPClient *http.Client
	Policy     resilient.Policy
}

// FromEnv reads the configuration; ok is false when no secret is set (no
// context is checked). SPA_RECAPTCHA_CONTEXTS is a comma-separated list of
// context[:min_score], e.g. "otp_request:0.7,login".
func FromEnv(getenv func(string) string) (cfg Config, ok bool, err error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg = Config{Secret: get(EnvSecret), VerifyURL: get(EnvVerifyURL), Hostname: get(EnvHostname)}
	if cfg.Secret == "" {
		return cfg, false, nil
	}
	if s := get(EnvMinScore); s != "" {
		if cfg.MinScore, err = parseScore(s); err != nil {
			return cfg, true, fmt.Errorf("%s: %w", EnvMinScore, err)
		}
	}
	cfg.Rules = map[string]Rule{}
	for item := range strings.SplitSeq(get(EnvContexts), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, score, hasScore := strings.Cut(item, ":")
		r := Rule{}
		if hasScore {
			if r.MinScore, err = parseScore(score); err != nil {
				return cfg, true, fmt.Errorf("%s: context %q: %w", EnvContexts, name, err)
			}
		}
		cfg.Rules[name] = r
	}
	if len(cfg.Rules) == 0 {
		return cfg, true, fmt.Errorf("%s is set but %s lists no context to check", EnvSecret, EnvContexts)
	}
	return cfg, true, nil
}

func parseScore(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1 {
		return 0, fmt.Errorf("score %q is not a number in [0, 1]", s)
	}
	return f, nil
}

// LogValue redacts the secret if a Config is ever logged.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("verify_url", c.VerifyURL), slog.Bool("secret_set", c.Secret != ""),
		slog.Int("contexts", len(c.Rules)))
}

// Result is what Google said about a token.
type Result struct {
	Score       float64
	Action      string
	Hostname    string
	ChallengeTS time.Time
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	http   *http.Client
	caller *resilient.Caller
}

// New returns a Verifier; m may be nil.
func New(cfg Config, m *resilient.Metrics) (*Verifier, error) {
	if cfg.Secret == "" {
		return nil, fmt.Errorf("%s is required", EnvSecret)
	}
	if cfg.VerifyURL == "" {
		cfg.VerifyURL = DefaultVerifyURL
	}
	if cfg.MinScore == 0 {
		cfg.MinScore = DefaultMinScore
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Verifier{cfg: cfg, http: hc, caller: resilient.New("recaptcha", cfg.Policy, m)}, nil
}

// Enabled reports whether checkContext is checked. A nil Verifier checks nothing,
// so callers can hold one unconditionally.
func (v *Verifier) Enabled(checkContext string) bool {
	if v == nil {
		return false
	}
	_, ok := v.cfg.Rules[checkContext]
	return ok
}

// siteverify reply.
type reply struct {
	Success     bool     `json:"success"`
	Score       float64  `json:"score"`
	Action      string   `json:"action"`
	ChallengeTS string   `json:"challenge_ts"`
	Hostname    string   `json:"hostname"`
	ErrorCodes  []string `json:"error-codes"`
}

// Verify checks token for checkContext (the action name the page executed) from
// remoteIP (may be empty). Errors wrap one of ErrInvalidToken, ErrMismatch,
// ErrLowScore, ErrUnavailable; the Result is filled whenever Google
// answered.
func (v *Verifier) Verify(ctx context.Context, token, remoteIP, checkContext string) (Result, error) {
	rule := v.cfg.Rules[checkContext]
	if rule.Action == "" {
		rule.Action = checkContext
	}
	if rule.MinScore == 0 {
		rule.MinScore = v.cfg.MinScore
	}
	if token == "" || len(token) > 4096 {
		return Result{}, fmt.Errorf("%w: empty or oversized token", ErrInvalidToken)
	}
	form := url.Values{"secret": {v.cfg.Secret}, "response": {token}}
	if remoteIP != "" {
		form.Set("remoteip", remoteIP)
	}
	body := form.Encode()
	var rep reply
	err := v.caller.Do(ctx, func(ctx context.Context) error {
		r, err := resilient.HTTP(ctx, v.http, func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.VerifyURL, strings.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req, nil
		})
		if err != nil {
			return err
		}
		if r.Status != http.StatusOK {
			return fmt.Errorf("recaptcha: siteverify replied HTTP %d", r.Status)
		}
		if err := json.Unmarshal(r.Body, &rep); err != nil {
			return fmt.Errorf("recaptcha: decoding reply: %w", err)
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res := Result{Score: rep.Score, Action: rep.Action, Hostname: rep.Hostname}
	res.ChallengeTS, _ = time.Parse(time.RFC3339, rep.ChallengeTS)
	switch {
	case slices.Contains(rep.ErrorCodes, "invalid-input-secret"), slices.Contains(rep.ErrorCodes, "missing-input-secret"):
		return res, fmt.Errorf("%w: Google refused the secret (%s)", ErrUnavailable, EnvSecret)
	case !rep.Success:
		return res, fmt.Errorf("%w: %s", ErrInvalidToken, strings.Join(rep.ErrorCodes, ","))
	case rep.Action != rule.Action:
		return res, fmt.Errorf("%w: action %q, want %q", ErrMismatch, rep.Action, rule.Action)
	case v.cfg.Hostname != "" && !strings.EqualFold(rep.Hostname, v.cfg.Hostname):
		return res, fmt.Errorf("%w: hostname %q", ErrMismatch, rep.Hostname)
	case rep.Score < rule.MinScore:
		return res, fmt.Errorf("%w: %.2f < %.2f", ErrLowScore, rep.Score, rule.MinScore)
	}
	return res, nil
}
