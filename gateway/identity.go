package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/limiter"
	"github.com/spa-engine/spa/actors/providers/recaptcha"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Identity is what the sign-in endpoints need from the process. Without it
// (Deps.Identity nil) they answer 503: a gateway in a test that only
// serves the catalogue.
type Identity struct {
	// Sessions reaches the session actors (one per phone).
	Sessions OTPSessions
	// Limiter caps code requests per client IP and in total.
	Limiter OTPLimiter
	// VerifyLimiter, when set, caps code checks per client IP and in
	// total: the per-number lockout stops guessing one number, this stops
	// one client spreading guesses over many numbers.
	VerifyLimiter OTPLimiter
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
	// code request carry a reCAPTCHA token (recaptcha_token) that Google
	// scores as human; nil checks nothing.
	Recaptcha *recaptcha.Verifier
	// AccessTTL is the access-token lifetime (15m); RefreshTTL a refresh
	// token's (30 days, renewed on every refresh); SessionMaxAge the
	// absolute end of a session however often it refreshes (90 days).
	AccessTTL, RefreshTTL, SessionMaxAge time.Duration
}

// OTPSessions is the gateway's door to the session actors.
type OTPSessions interface {
	RequestCode(ctx context.Context, key string, m *session.RequestCode) *session.RequestCodeReply
	VerifyCode(ctx context.Context, key string, m *session.VerifyCode) *session.VerifyReply
}

// OTPLimiter is the per-IP and global cap on code requests.
type OTPLimiter interface {
	Allow(ctx context.Context, ip string) error
}

func (id *Identity) withDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&id.AccessTTL, 15*time.Minute)
	def(&id.RefreshTTL, 30*24*time.Hour)
	def(&id.SessionMaxAge, 90*24*time.Hour)
}

// Revocation reasons, as stored and published.
const (
	revokeLogout       = "logout"
	revokeLogoutAll    = "logout_all"
	revokeRefreshReuse = "refresh_reuse"
	revokeAdmin        = "admin"
	revokeDemoted      = "roles_removed"
	revokeBlocked      = "blocked"
)

// Limits on client-supplied session labels: enough to tell devices apart,
// too little to store a payload.
const (
	maxDeviceLen    = 64
	maxUserAgentLen = 200
	maxReasonLen    = 200
)

// registerIdentity adds the sign-in, session and user-administration routes.
func (s *server) registerIdentity(app *fiber.App) {
	if s.deps.Identity != nil {
		id := *s.deps.Identity
		id.withDefaults()
		s.deps.Identity = &id
		if err := newIdentityMetrics(s.deps.Registerer, s.deps.Store, s.deps.Now); err != nil {
			s.log.Warn("identity metrics not registered", "err", err)
		}
	}
	anyone := RequireRole(personRoles...)
	admin := RequireRole(auth.RoleAdmin)
	// A retried code request must not send a second message; logouts
	// replay harmlessly. Sign-in and refresh answers hold credentials,
	// which are never stored, so those two are not wrapped.
	app.Post("/v1/auth/otp", s.external(s.requestOTP))
	app.Post("/v1/auth/otp/verify", s.verifyOTP)
	app.Post("/v1/auth/refresh", s.refresh)
	app.Post("/v1/auth/logout", anyone, s.external(s.logout))
	app.Post("/v1/auth/logout-all", anyone, s.external(s.logoutAll))
	app.Get("/v1/me/sessions", anyone, s.mySessions)
	app.Delete("/v1/me/sessions/:id", anyone, s.external(s.deleteMySession))
	app.Post("/v1/admin/users/:id/revoke", admin, s.mutate(s.adminRevokeUser))
	app.Put("/v1/admin/users/:id/roles", admin, s.mutate(s.adminSetRoles))
}

// identity returns the configuration, or the 503 a gateway without one
// answers.
func (s *server) identity() (*Identity, error) {
	if s.deps.Identity == nil {
		return nil, fault.Unavailable("sign-in is not configured on this node")
	}
	return s.deps.Identity, nil
}

// newIdentityMetrics registers the active-sessions gauge: it counts live
// sessions in the store when scraped (a cheap indexed count).
func newIdentityMetrics(reg prometheus.Registerer, st persistence.Store, now func() time.Time) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_sessions_active",
		Help: "Sign-in sessions (refresh-token families) neither revoked nor expired.",
	}, storeCount(st, func(ctx context.Context, tx persistence.Tx) (int, error) {
		return tx.SessionCountLive(ctx, now())
	})))
}

// storeCount is the value function of a gauge that counts rows when
// scraped; NaN when the store does not answer within a second.
func storeCount(st persistence.Store, count func(context.Context, persistence.Tx) (int, error)) func() float64 {
	return func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var n int
		if err := st.InTx(ctx, func(tx persistence.Tx) (err error) {
			n, err = count(ctx, tx)
			return err
		}); err != nil {
			return math.NaN()
		}
		return float64(n)
	}
}

// ---- Codes ----------------------------------------------------------------

type otpRequestInput struct {
	Phone     string `json:"phone"`
	Channel   string `json:"channel"`
	Recaptcha string `json:"recaptcha_token"`
}

// RecaptchaOTPContext is the reCAPTCHA context (the action the page
// executes) of a code request: list it in SPA_RECAPTCHA_CONTEXTS to check
// it.
const RecaptchaOTPContext = "otp_request"

// checkRecaptcha refuses a code request whose reCAPTCHA token does not pass
// when the context is checked. It runs after the per-IP limiter, so a bot
// cannot make us call Google without bound; when Google cannot be asked
// the request fails closed (503), as every other OTP dependency does.
func (s *server) checkRecaptcha(c *fiber.Ctx, id *Identity, token string) error {
	if !id.Recaptcha.Enabled(RecaptchaOTPContext) {
		return nil
	}
	_, err := id.Recaptcha.Verify(c.UserContext(), token, s.clientIP(c), RecaptchaOTPContext)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, recaptcha.ErrUnavailable):
		s.log.Warn("recaptcha check unavailable", "request_id", RequestID(c), "err", err)
		return fault.Unavailable("")
	}
	return fault.New(fault.CodeForbidden, "the anti-bot check failed; reload the page and try again")
}

type otpVerifyInput struct {
	Phone  string `json:"phone"`
	Code   string `json:"code"`
	Device string `json:"device"`
}

// parsePhone validates a phone field; the message names the problem (a
// number's format is no secret) but never echoes the input.
func (id *Identity) parsePhone(raw string) (phone.Number, error) {
	n, err := id.Phones.Parse(raw)
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

func (id *Identity) phoneKey(n phone.Number) string {
	return session.Key(id.Index.Sum(pii.FieldPhone, n.E164))
}

// retryAfter sets the Retry-After header (whole seconds, at least 1) and
// returns e.
func retryAfter(c *fiber.Ctx, d time.Duration, e *fault.Error) error {
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
	return e
}

// requestOTP sends a login code. The answer is the same whether or not the
// number belongs to a user: only limits and outages change it.
func (s *server) requestOTP(c *fiber.Ctx) error {
	id, err := s.identity()
	if err != nil {
		return err
	}
	var in otpRequestInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	ch := sender.Channel(in.Channel)
	if ch != "" && ch != sender.ChannelSMS && ch != sender.ChannelWhatsApp {
		return fault.Invalid("", fault.FieldError{Field: "channel", Message: "must be sms or whatsapp"})
	}
	num, err := id.parsePhone(in.Phone)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return err
	}
	if err := s.allowIP(c, id.Limiter, tooManyRequested); err != nil {
		return err
	}
	if err := s.checkRecaptcha(c, id, in.Recaptcha); err != nil {
		return err
	}
	r := id.Sessions.RequestCode(ctx, id.phoneKey(num), &session.RequestCode{Phone: num.E164, Channel: ch})
	if err := otpError(c, r.Err); err != nil {
		if _, safe := apierr.From(err); !safe || errors.Is(r.Err, session.ErrUnavailable) || errors.Is(r.Err, session.ErrDelivery) {
			s.log.Warn("otp request failed", "request_id", RequestID(c), "phone", num.Masked(), "err", r.Err)
		}
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{
		"status":             "sent",
		"expires_in_seconds": int(r.ExpiresIn.Seconds()),
	})
}

// Messages of a per-IP or global limit.
const (
	tooManyRequested = "too many codes requested; retry later"
	tooManyChecked   = "too many codes checked; retry later"
)

// allowIP asks lim about the caller's address (a nil lim caps nothing):
// 429 with Retry-After over the limit, 503 when the limiter cannot answer
// (fail closed).
func (s *server) allowIP(c *fiber.Ctx, lim OTPLimiter, tooMany string) error {
	if lim == nil {
		return nil
	}
	err := lim.Allow(c.UserContext(), limitKey(s.clientIP(c)))
	var le *limiter.LimitedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		return retryAfter(c, le.RetryAfter, fault.New(fault.CodeRateLimited, tooMany))
	}
	return fault.Unavailable("")
}

// checkLoginCode refuses a code field that is not CodeLen digits.
func checkLoginCode(code string) error {
	if len(code) != otp.CodeLen || strings.Trim(code, "0123456789") != "" {
		return fault.Invalid("", fault.FieldError{Field: "code", Message: fmt.Sprintf("must be %d digits", otp.CodeLen)})
	}
	return nil
}

// refuseBlockedPhone answers 403 blocked for a number on the "persona non
// grata" list (docs/legal.md), and 503 when the list cannot be read: a
// blocked caller must not get in because the store hiccupped.
func (s *server) refuseBlockedPhone(ctx context.Context, num phone.Number) error {
	if s.blocks == nil {
		return nil
	}
	blocked, err := s.blocks.IsBlocked(ctx, num.E164, "")
	switch {
	case err != nil:
		s.log.Warn("blocklist check failed", "phone", num.Masked(), "err", err)
		return fault.Unavailable("")
	case blocked:
		return errBlocked
	}
	return nil
}

// otpError maps a session actor's error to the answer.
func otpError(c *fiber.Ctx, err error) error {
	if err == nil {
		return nil
	}
	var re *otp.RetryError
	switch {
	case errors.As(err, &re) && errors.Is(err, otp.ErrLockedOut):
		return retryAfter(c, re.RetryAfter, fault.New(fault.CodeOTPLocked, ""))
	case errors.As(err, &re):
		return retryAfter(c, re.RetryAfter, fault.New(fault.CodeRateLimited, tooManyRequested))
	case errors.Is(err, session.ErrDelivery):
		return fault.Unavailable("the code could not be delivered; retry later")
	}
	// The store is down or the node is stopping: fail closed.
	return fault.Unavailable("")
}

// verifyOTP checks a code and signs the caller in, creating the user the
// first time the number proves itself.
func (s *server) verifyOTP(c *fiber.Ctx) error {
	id, err := s.identity()
	if err != nil {
		return err
	}
	var in otpVerifyInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	num, err := id.parsePhone(in.Phone)
	if err != nil {
		return err
	}
	if err := checkLoginCode(in.Code); err != nil {
		return err
	}
	device, err := cleanLabel("device", in.Device, maxDeviceLen)
	if err != nil {
		return err
	}
	if err := s.refuseBlockedPhone(c.UserContext(), num); err != nil {
		return err
	}
	if err := s.allowIP(c, id.VerifyLimiter, tooManyChecked); err != nil {
		return err
	}
	r := id.Sessions.VerifyCode(c.UserContext(), id.phoneKey(num), &session.VerifyCode{Phone: num.E164, Code: in.Code})
	switch {
	case r.Err != nil:
		s.log.Warn("otp verification failed", "request_id", RequestID(c), "phone", num.Masked(), "err", r.Err)
		return fault.Unavailable("")
	case r.Result == otp.ResultLocked:
		return retryAfter(c, r.RetryAfter, fault.New(fault.CodeOTPLocked, ""))
	case r.Result != otp.ResultOK:
		// Wrong, expired, used or never sent: one answer, so the
		// response is no oracle.
		return fault.New(fault.CodeInvalidCode, "")
	}

	now := s.deps.Now().UTC()
	index := id.Index.Sum(pii.FieldPhone, num.E164)
	var out tokenPair
	var mfa *fault.Error // set when a TOTP code must follow (gateway/totp.go)
	err = s.deps.Store.InTx(c.UserContext(), func(tx persistence.Tx) error {
		ctx := c.UserContext()
		u, err := tx.UserGetByPhoneIndex(ctx, index)
		if errors.Is(err, persistence.ErrNotFound) {
			u, err = s.createUser(ctx, tx, id, index, num, now)
		}
		if err != nil {
			return err
		}
		if mfa, err = s.secondFactorChallenge(c, tx, u, device, now); mfa != nil || err != nil {
			return err
		}
		if err := adoptDeviceConsents(c, tx, u.ID); err != nil {
			return err
		}
		sess := persistence.Session{ID: ulid.Make().String(), UserID: u.ID, Device: device,
			UserAgent: trimUserAgent(c.Get(fiber.HeaderUserAgent)), IP: s.clientIP(c),
			CreatedAt: now, ExpiresAt: now.Add(id.SessionMaxAge)}
		if err := tx.SessionCreate(ctx, sess); err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, id, u, sess, nil, now)
		return err
	})
	if err != nil {
		return err
	}
	if mfa != nil {
		return mfa
	}
	return c.JSON(out)
}

// adoptDeviceConsents gives the user who just signed in the legal consents
// the device (X-Device-ID) gave before, so a visitor who accepted the terms
// is not asked again. A missing or malformed device id adopts nothing:
// the header is optional on sign-in.
func adoptDeviceConsents(c *fiber.Ctx, tx persistence.Tx, userID string) error {
	dev := c.Get(HeaderDeviceID)
	if !deviceIDRE.MatchString(dev) {
		return nil
	}
	_, err := persistence.LegalConsentAdopt(c.UserContext(), tx, dev, userID, func() string { return ulid.Make().String() })
	return err
}

func (s *server) createUser(ctx context.Context, tx persistence.Tx, id *Identity, index []byte, num phone.Number, now time.Time) (persistence.User, error) {
	uid := ulid.Make().String()
	sealed, err := id.Keyring.Encrypt([]byte(num.E164), phoneAAD(uid))
	if err != nil {
		return persistence.User{}, err
	}
	u := persistence.User{ID: uid, PhoneIndex: index, PhoneCipher: sealed,
		Roles: []string{string(auth.RoleClient)}, CreatedAt: now, UpdatedAt: now}
	return u, tx.UserCreate(ctx, u)
}

// phoneAAD binds a phone ciphertext to its user, so it cannot be moved to
// another row.
func phoneAAD(userID string) []byte { return []byte("users.phone/" + userID) }

// tokenPair is what a sign-in or refresh answers.
type tokenPair struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	SessionID        string `json:"session_id"`
	UserID           string `json:"user_id"`
	Role             string `json:"role"`
}

// issue stores a new refresh token of sess (replacing parent, if any) and
// mints the access token that goes with it.
func (s *server) issue(ctx context.Context, tx persistence.Tx, id *Identity, u persistence.User, sess persistence.Session, parent []byte, now time.Time) (tokenPair, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return tokenPair{}, err
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	expires := now.Add(id.RefreshTTL)
	if sess.ExpiresAt.Before(expires) {
		expires = sess.ExpiresAt
	}
	if err := tx.RefreshTokenPut(ctx, persistence.RefreshToken{Hash: hashRefresh(refresh), SessionID: sess.ID,
		ParentHash: parent, IssuedAt: now, ExpiresAt: expires}); err != nil {
		return tokenPair{}, err
	}
	role := primaryRole(u.Roles)
	access, _, err := s.deps.Tokens.MintSession(u.ID, role, sess.ID, id.AccessTTL)
	if err != nil {
		return tokenPair{}, err
	}
	return tokenPair{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(id.AccessTTL.Seconds()),
		RefreshToken: refresh, RefreshExpiresIn: int(expires.Sub(now).Seconds()),
		SessionID: sess.ID, UserID: u.ID, Role: string(role)}, nil
}

func hashRefresh(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// rolePrecedence orders roles from most to least privileged: an access
// token carries one role, the user's highest.
var rolePrecedence = []auth.Role{auth.RoleAdmin, auth.RoleReceptionist, auth.RoleStaff, auth.RoleClient}

// demoted reports whether the highest role of to is below that of from.
func demoted(from, to []string) bool {
	return slices.Index(rolePrecedence, primaryRole(to)) > slices.Index(rolePrecedence, primaryRole(from))
}

func primaryRole(roles []string) auth.Role {
	for _, r := range rolePrecedence {
		if slices.Contains(roles, string(r)) {
			return r
		}
	}
	return auth.RoleClient
}

// ---- Refresh and logout ------------------------------------------------------

type refreshInput struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh rotates a refresh token. A token used a second time means it was
// stolen (or the client is broken): the whole session is revoked, so the
// thief's copy and the owner's both stop working and the owner signs in
// again.
func (s *server) refresh(c *fiber.Ctx) error {
	id, err := s.identity()
	if err != nil {
		return err
	}
	var in refreshInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.RefreshToken == "" || len(in.RefreshToken) > 128 {
		return fault.Invalid("", fault.FieldError{Field: "refresh_token", Message: "required"})
	}
	ctx := c.UserContext()
	now := s.deps.Now().UTC()
	hash := hashRefresh(in.RefreshToken)
	var (
		out    tokenPair
		reused *persistence.Session
	)
	err = s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		reused = nil
		rt, err := tx.RefreshTokenGet(ctx, hash)
		if errors.Is(err, persistence.ErrNotFound) {
			return fault.New(fault.CodeRefreshTokenInvalid, "")
		}
		if err != nil {
			return err
		}
		sess, err := tx.SessionGet(ctx, rt.SessionID)
		if err != nil {
			return err
		}
		if !sess.Live(now) {
			return fault.New(fault.CodeRefreshTokenInvalid, "")
		}
		err = tx.RefreshTokenUse(ctx, hash, now)
		if errors.Is(err, persistence.ErrConflict) {
			// Commit the revocation; the 401 is given after.
			if _, err := s.revokeSessions(ctx, tx, sess.UserID, []string{sess.ID}, revokeRefreshReuse, "system", RequestID(c), now); err != nil {
				return err
			}
			reused = &sess
			return nil
		}
		if err != nil {
			return err
		}
		if !now.Before(rt.ExpiresAt) {
			return fault.New(fault.CodeRefreshTokenInvalid, "")
		}
		if err := tx.SessionTouch(ctx, sess.ID, now, s.clientIP(c), trimUserAgent(c.Get(fiber.HeaderUserAgent))); err != nil {
			return err
		}
		u, err := tx.UserGet(ctx, sess.UserID)
		if err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, id, u, sess, hash, now)
		return err
	})
	if err != nil {
		return err
	}
	if reused != nil {
		s.forget(now, reused.ID)
		s.log.Warn("refresh token reused: session revoked", "request_id", RequestID(c), "session", reused.ID, "user", reused.UserID)
		return fault.New(fault.CodeRefreshTokenInvalid, "")
	}
	return c.JSON(out)
}

// revokeSessions marks ids revoked (all of the user's sessions when ids is
// nil) and appends the SessionsRevoked event every node follows, in tx.
// It returns the ids it revoked.
func (s *server) revokeSessions(ctx context.Context, tx persistence.Tx, userID string, ids []string, reason, actor, requestID string, now time.Time) ([]string, error) {
	var revoked []string
	if ids == nil {
		var err error
		if revoked, err = tx.SessionRevokeByUser(ctx, userID, now, reason); err != nil {
			return nil, err
		}
	} else {
		for _, sid := range ids {
			ok, err := tx.SessionRevoke(ctx, sid, now, reason)
			if err != nil {
				return nil, err
			}
			if ok {
				revoked = append(revoked, sid)
			}
		}
	}
	if len(revoked) == 0 {
		return revoked, nil
	}
	ev, err := persistence.NewOutboxEvent("user/"+userID, requestID, actor, &messages.SessionsRevoked{
		UserId: userID, SessionIds: revoked, Reason: reason, RevokedAt: timestamppb.New(now),
	}, now)
	if err != nil {
		return nil, err
	}
	return revoked, tx.OutboxAppend(ctx, ev)
}

// forget applies a committed revocation on this node at once; other nodes
// apply it when the event reaches them.
func (s *server) forget(at time.Time, ids ...string) {
	if id := s.deps.Identity; id != nil && id.Revoked != nil {
		id.Revoked.Add(at, ids...)
	}
	for _, sid := range ids {
		s.deps.Tokens.ForgetSession(sid)
	}
}

// caller returns the principal and the session its token belongs to.
func caller(c *fiber.Ctx) (auth.Claims, error) {
	p, _ := Principal(c) // RequireRole ran first
	if p.SessionID == "" {
		return p, fault.Invalid("this token is not bound to a sign-in session")
	}
	return p, nil
}

func (s *server) logout(c *fiber.Ctx) error {
	return s.revokeMine(c, func(p auth.Claims) []string { return []string{p.SessionID} }, revokeLogout)
}

func (s *server) logoutAll(c *fiber.Ctx) error {
	return s.revokeMine(c, func(auth.Claims) []string { return nil }, revokeLogoutAll)
}

// revokeMine revokes sessions of the caller: the ones ids picks, or all.
func (s *server) revokeMine(c *fiber.Ctx, ids func(auth.Claims) []string, reason string) error {
	if _, err := s.identity(); err != nil {
		return err
	}
	p, err := caller(c)
	if err != nil {
		return err
	}
	ctx, now := c.UserContext(), s.deps.Now().UTC()
	var revoked []string
	err = s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		revoked, err = s.revokeSessions(ctx, tx, p.Subject, ids(p), reason, p.Subject, RequestID(c), now)
		return err
	})
	if err != nil {
		return err
	}
	s.forget(now, revoked...)
	return c.SendStatus(fiber.StatusNoContent)
}

// ---- Session list ------------------------------------------------------------

type sessionJSON struct {
	ID         string    `json:"id"`
	Device     string    `json:"device"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	Current    bool      `json:"current"`
}

func (s *server) mySessions(c *fiber.Ctx) error {
	if _, err := s.identity(); err != nil {
		return err
	}
	p, _ := Principal(c)
	ctx := c.UserContext()
	var list []persistence.Session
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		list, err = tx.SessionListByUser(ctx, p.Subject, s.deps.Now(), persistence.MaxSessionListLimit)
		return err
	})
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionJSON{ID: x.ID, Device: x.Device, UserAgent: x.UserAgent, IP: x.IP,
			CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, Current: x.ID == p.SessionID})
	}
	return c.JSON(fiber.Map{"sessions": out})
}

func (s *server) deleteMySession(c *fiber.Ctx) error {
	if _, err := s.identity(); err != nil {
		return err
	}
	p, _ := Principal(c)
	sid := c.Params("id")
	ctx, now := c.UserContext(), s.deps.Now().UTC()
	var revoked []string
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		sess, err := tx.SessionGet(ctx, sid)
		// Another user's session is as absent as a made-up id.
		if errors.Is(err, persistence.ErrNotFound) || (err == nil && sess.UserID != p.Subject) {
			return fault.NotFound("no such session")
		}
		if err != nil {
			return err
		}
		revoked, err = s.revokeSessions(ctx, tx, p.Subject, []string{sid}, revokeLogout, p.Subject, RequestID(c), now)
		return err
	})
	if err != nil {
		return err
	}
	s.forget(now, revoked...)
	return c.SendStatus(fiber.StatusNoContent)
}

// ---- Administration ------------------------------------------------------------

// adminReason reads the optional {"reason": "..."} body of an admin
// action; an empty body is no reason.
func adminReason(c *fiber.Ctx) (string, error) {
	var in struct {
		Reason string `json:"reason"`
	}
	if len(strings.TrimSpace(string(c.Body()))) > 0 {
		if err := decodeJSON(c, &in); err != nil {
			return "", err
		}
	}
	return cleanLabel("reason", in.Reason, maxReasonLen)
}

func (s *server) adminRevokeUser(c *fiber.Ctx, tx persistence.Tx) error {
	if _, err := s.identity(); err != nil {
		return err
	}
	reason, err := adminReason(c)
	if err != nil {
		return err
	}
	uid := c.Params("id")
	ctx, now := c.UserContext(), s.deps.Now().UTC()
	if _, err := tx.UserGet(ctx, uid); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return fault.NotFound("no such user")
		}
		return err
	}
	p, _ := Principal(c)
	revoked, err := s.revokeSessions(ctx, tx, uid, nil, revokeAdmin, p.Subject, RequestID(c), now)
	if err != nil {
		return err
	}
	if err := s.auditReason(c, tx, "user.revoke_sessions", "user/"+uid, reason, map[string]any{"sessions": revoked}); err != nil {
		return err
	}
	// Applied before the commit: if the transaction then fails, this node
	// refuses some access tokens a few minutes early, which is the safe
	// side of the error.
	s.forget(now, revoked...)
	return c.JSON(fiber.Map{"user_id": uid, "revoked_sessions": len(revoked)})
}

type rolesInput struct {
	Roles  []string `json:"roles"`
	Reason string   `json:"reason"`
}

func (s *server) adminSetRoles(c *fiber.Ctx, tx persistence.Tx) error {
	if _, err := s.identity(); err != nil {
		return err
	}
	var in rolesInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if len(in.Roles) == 0 {
		return fault.Invalid("", fault.FieldError{Field: "roles", Message: "at least one role is required"})
	}
	roles := make([]string, 0, len(in.Roles))
	for _, r := range in.Roles {
		role, err := auth.ParseRole(r)
		if err != nil || role == auth.RoleKiosk { // kiosk is a device's role, never a user's
			return fault.Invalid("", fault.FieldError{Field: "roles", Message: "unknown role; use client, staff, receptionist or admin"})
		}
		if !slices.Contains(roles, string(role)) {
			roles = append(roles, string(role))
		}
	}
	slices.Sort(roles)
	reason, err := cleanLabel("reason", in.Reason, maxReasonLen)
	if err != nil {
		return err
	}
	uid := c.Params("id")
	ctx, now := c.UserContext(), s.deps.Now().UTC()
	u, err := tx.UserGet(ctx, uid)
	if err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return fault.NotFound("no such user")
		}
		return err
	}
	if err := tx.UserSetRoles(ctx, uid, roles, now); err != nil {
		return err
	}
	// An access token carries the user's highest role. When that goes down
	// (admin to staff, staff to client), the old role must stop working at
	// once, not when the tokens carrying it expire: the user's sessions are
	// revoked and they sign in again with what is left. A higher role takes
	// effect at the next refresh.
	var revoked []string
	if demoted(u.Roles, roles) {
		p, _ := Principal(c)
		if revoked, err = s.revokeSessions(ctx, tx, uid, nil, revokeDemoted, p.Subject, RequestID(c), now); err != nil {
			return err
		}
	}
	if err := s.auditReason(c, tx, "user.roles", "user/"+uid, reason,
		map[string]any{"from": u.Roles, "to": roles, "revoked_sessions": len(revoked)}); err != nil {
		return err
	}
	s.forget(now, revoked...) // before the commit, as adminRevokeUser does
	return c.JSON(fiber.Map{"id": uid, "roles": roles})
}

// auditReason is audit with a reason.
func (s *server) auditReason(c *fiber.Ctx, tx persistence.Tx, action, subject, reason string, detail any) error {
	return service.Audit(c.UserContext(), tx, s.deps.Now(), s.caller(c), action, subject, reason, detail)
}

// ---- Helpers ----

// cleanLabel trims a free-text field and refuses one too long or not text.
func cleanLabel(field, v string, maxLen int) (string, error) {
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
