// Package identity holds the use cases of who a caller is: sign-in with a
// code sent to a phone, refresh tokens (rotation, and a reused token
// revoking its session), logout and the session list, an admin's role
// changes and revocations, the TOTP second factor of staff roles, and
// kiosk tokens with the kiosk's check-in (docs/identity.md,
// docs/identity-2fa-kiosk.md).
//
// They are not in the gateway because none of it is HTTP: what a sign-in
// creates, the one answer every wrong code gets, when a role change
// revokes sessions, the TOTP replay guard and lockout must be the same for
// every channel that signs a person in, and they are tested here without
// Fiber. The gateway decodes a request, calls one method and encodes the
// answer; the only HTTP it adds is the headers a refusal asks for
// (Retry-After for a Wait, WWW-Authenticate for a 401).
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/auth/totp"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/providers/recaptcha"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/persistence"
)

// Node is what sign-in needs from the process: the session actors, the
// limiters, the keys, the node's revoked-session set, reCAPTCHA and the
// token lifetimes (cmd/spa/identity.go builds it). Without one
// (Deps.Node nil) sign-in and the second factor answer 503: a gateway in a
// test that only serves the catalogue.
type Node struct {
	// Sessions reaches the session actors (one per phone).
	Sessions Sessions
	// Limiter caps code requests per client IP and in total.
	Limiter Limiter
	// VerifyLimiter, when set, caps code checks per client IP and in
	// total: the per-number lockout stops guessing one number, this stops
	// one client spreading guesses over many numbers.
	VerifyLimiter Limiter
	// Phones parses numbers (default region CO when zero).
	Phones phone.Parser
	// Index is the keyed blind index phones are found by; Keyring
	// encrypts the stored number.
	Index   *pii.BlindIndex
	Keyring *pii.Keyring
	// Revoked is the node's set of revoked sessions, the one Tokens was
	// given with SetRevocations.
	Revoked *auth.RevokedSessions
	// Recaptcha, when it checks the RecaptchaOTPContext context, makes a
	// code request carry a reCAPTCHA token that Google scores as human;
	// nil checks nothing.
	Recaptcha *recaptcha.Verifier
	// AccessTTL is the access-token lifetime (15m); RefreshTTL a refresh
	// token's (30 days, renewed on every refresh); SessionMaxAge the
	// absolute end of a session however often it refreshes (90 days).
	AccessTTL, RefreshTTL, SessionMaxAge time.Duration
}

// Sessions is the door to the session actors: the node's directory, or in
// a cluster the session router.
type Sessions interface {
	RequestCode(ctx context.Context, key string, m *session.RequestCode) *session.RequestCodeReply
	VerifyCode(ctx context.Context, key string, m *session.VerifyCode) *session.VerifyReply
}

// Limiter is the per-IP and global cap on code requests or checks.
type Limiter interface {
	Allow(ctx context.Context, ip string) error
}

func (n Node) withDefaults() Node {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&n.AccessTTL, 15*time.Minute)
	def(&n.RefreshTTL, 30*24*time.Hour)
	def(&n.SessionMaxAge, 90*24*time.Hour)
	return n
}

// Deps is what the service needs.
type Deps struct {
	// Store and Tokens are required.
	Store  persistence.Store
	Tokens *auth.Tokens
	// Node serves sign-in; nil: sign-in, sessions and the second factor
	// answer 503 (kiosk administration still works).
	Node *Node
	// TOTP configures the second factor and KioskTTL the default lifetime
	// of a kiosk token; zero values take the defaults.
	TOTP     TOTPConfig
	KioskTTL time.Duration
	// PhoneBlocked reports whether a number (E.164) is on the person
	// blocklist (docs/legal.md); nil blocks nobody.
	PhoneBlocked func(ctx context.Context, e164 string) (bool, error)
	// CheckIn checks one appointment in through its staff member's
	// calendar, as the staff check-in does, and returns it checked in. A
	// calendar's refusal (outside the check-in window) is a *Refused
	// carrying the client's answer; any other error means the calendar
	// could not be asked. Nil: kiosk check-in answers 503.
	CheckIn func(ctx context.Context, ap persistence.Appointment, actorID string) (persistence.Appointment, error)
	// Registerer receives the identity metrics (nil: a private registry).
	Registerer prometheus.Registerer
	Logger     *slog.Logger     // nil: slog.Default()
	Now        func() time.Time // nil: time.Now
}

// Service runs the identity use cases.
type Service struct {
	store        persistence.Store
	tokens       *auth.Tokens
	node         *Node // with defaults; nil: not configured
	totp         TOTPConfig
	authn        *totp.Authenticator
	kioskTTL     time.Duration
	phoneBlocked func(context.Context, string) (bool, error)
	checkIn      func(context.Context, persistence.Appointment, string) (persistence.Appointment, error)
	log          *slog.Logger
	now          func() time.Time

	totpOutcomes *prometheus.CounterVec
	checkIns     *prometheus.CounterVec
	kioskCodes   *prometheus.CounterVec
}

// New builds the service and registers its metrics (a registration that
// fails is logged: metrics never stop sign-in).
func New(d Deps) *Service {
	s := &Service{store: d.Store, tokens: d.Tokens, kioskTTL: d.KioskTTL, phoneBlocked: d.PhoneBlocked,
		checkIn: d.CheckIn, log: d.Logger, now: d.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.kioskTTL <= 0 {
		s.kioskTTL = DefaultKioskTTL
	}
	reg := d.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if d.Node != nil {
		n := d.Node.withDefaults()
		s.node = &n
		if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "spa_sessions_active",
			Help: "Sign-in sessions (refresh-token families) neither revoked nor expired.",
		}, s.storeCount(func(ctx context.Context, tx persistence.Tx) (int, error) {
			return tx.SessionCountLive(ctx, s.now())
		}))); err != nil {
			s.log.Warn("identity metrics not registered", "err", err)
		}
	}
	s.newTOTP(d.TOTP, reg)
	s.newKiosk(reg)
	return s
}

// storeCount is the value function of a gauge that counts rows when
// scraped (a cheap indexed count); NaN when the store does not answer
// within a second.
func (s *Service) storeCount(count func(context.Context, persistence.Tx) (int, error)) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var n int
		if err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
			n, err = count(ctx, tx)
			return err
		}); err != nil {
			return math.NaN()
		}
		return float64(n)
	}
}

// Ready is nil when sign-in is configured on this node, else the 503
// every sign-in use case answers. The gateway asks it before reading a
// request body, so an unconfigured node answers 503 whatever was sent.
func (s *Service) Ready() error {
	if s.node == nil {
		return fault.Unavailable("sign-in is not configured on this node")
	}
	return nil
}

// Wait is a refusal the caller may retry after a wait (a limit, a
// lockout); the gateway sends After as Retry-After.
type Wait struct {
	Err   *fault.Error
	After time.Duration
}

func (w *Wait) Error() string { return w.Err.Error() }
func (w *Wait) Unwrap() error { return w.Err }

func wait(d time.Duration, e *fault.Error) error { return &Wait{Err: e, After: d} }

// Refused is a calendar's refusal of one kiosk check-in (Deps.CheckIn);
// Err is what the client is answered when no appointment could be checked
// in.
type Refused struct{ Err error }

func (r *Refused) Error() string { return "check-in refused: " + r.Err.Error() }
func (r *Refused) Unwrap() error { return r.Err }

// ---- Rules shared by the use cases ------------------------------------

// Limits on client-supplied labels: enough to tell devices apart, too
// little to store a payload.
const (
	MaxReasonLen    = 200
	maxDeviceLen    = 64
	maxUserAgentLen = 200
)

// Messages of a per-IP or global limit.
const (
	tooManyRequested = "too many codes requested; retry later"
	tooManyChecked   = "too many codes checked; retry later"
)

// CleanLabel trims a free-text field and refuses one too long or not text.
func CleanLabel(field, v string, maxLen int) (string, error) {
	v = strings.TrimSpace(v)
	if !utf8.ValidString(v) || utf8.RuneCountInString(v) > maxLen || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fault.Invalid("", fault.FieldError{Field: field, Message: fmt.Sprintf("at most %d characters of text", maxLen)})
	}
	return v, nil
}

// trimUserAgent keeps enough of a User-Agent to recognise the device and
// drops the rest (and anything that is not printable ASCII).
func trimUserAgent(ua string) string {
	ua = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, ua)
	ua = strings.TrimSpace(ua)
	if len(ua) > maxUserAgentLen {
		ua = ua[:maxUserAgentLen]
	}
	return ua
}

// LimitKey is the key an address is counted under by the per-IP limiters:
// the address itself for IPv4, its /64 for IPv6, since one subscriber is
// routinely given a whole /64 and could otherwise take a fresh address,
// and a fresh budget, for every request.
func LimitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Unmap().Is6() {
		return ip
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// parsePhone validates a phone field; the message names the problem (a
// number's format is no secret) but never echoes the input.
func (s *Service) parsePhone(raw string) (phone.Number, error) {
	n, err := s.node.Phones.Parse(raw)
	if err != nil {
		var pe *phone.Error
		msg := "not a valid mobile number"
		if errors.As(err, &pe) {
			msg = strings.TrimPrefix(pe.Error(), "phone: ")
		}
		return n, fault.Invalid("", fault.FieldError{Field: "phone", Message: msg})
	}
	return n, nil
}

func (s *Service) phoneKey(n phone.Number) string {
	return session.Key(s.node.Index.Sum(pii.FieldPhone, n.E164))
}

// refuseBlockedPhone answers 403 blocked for a number on the "persona non
// grata" list (docs/legal.md), and 503 when the list cannot be read: a
// blocked caller must not get in because the store hiccupped.
func (s *Service) refuseBlockedPhone(ctx context.Context, num phone.Number) error {
	if s.phoneBlocked == nil {
		return nil
	}
	blocked, err := s.phoneBlocked(ctx, num.E164)
	switch {
	case err != nil:
		s.log.Warn("blocklist check failed", "phone", num.Masked(), "err", err)
		return fault.Unavailable("")
	case blocked:
		return fault.New(fault.CodeBlocked, "")
	}
	return nil
}

// allowIP asks lim about the caller's address (a nil lim caps nothing):
// 429 with a wait over the limit, 503 when the limiter cannot answer
// (fail closed).
func allowIP(ctx context.Context, lim Limiter, ip, tooMany string) error {
	if lim == nil {
		return nil
	}
	err := lim.Allow(ctx, LimitKey(ip))
	var le *limiter.LimitedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		return wait(le.RetryAfter, fault.New(fault.CodeRateLimited, tooMany))
	}
	return fault.Unavailable("")
}
