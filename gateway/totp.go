package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/totp"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

// TOTPConfig configures the TOTP second factor of staff, receptionists and
// admins (docs/identity-2fa-kiosk.md). Zero fields take the defaults.
type TOTPConfig struct {
	// Issuer is the name authenticator apps show ("Spa").
	Issuer string
	// MaxFailures wrong codes in a row lock the factor (5); each further
	// wrong code after a lockout doubles it, from Lockout (5m) up to 64×.
	MaxFailures int
	Lockout     time.Duration
	// ChallengeTTL is how long the challenge between the login code and
	// the TOTP code lasts (5m).
	ChallengeTTL time.Duration
	// RecoveryCodes is how many recovery codes a confirmation hands out (10).
	RecoveryCodes int
	// Rand is the source of secrets, challenges and recovery codes
	// (crypto/rand).
	Rand io.Reader
}

func (c TOTPConfig) withDefaults() TOTPConfig {
	if c.Issuer == "" {
		c.Issuer = "Spa"
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.Lockout <= 0 {
		c.Lockout = 5 * time.Minute
	}
	if c.ChallengeTTL <= 0 {
		c.ChallengeTTL = 5 * time.Minute
	}
	if c.RecoveryCodes <= 0 {
		c.RecoveryCodes = 10
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// secondFactorRoles are the roles whose sign-in asks for the second factor
// once they have enrolled one.
var secondFactorRoles = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}

func needsSecondFactor(roles []string) bool {
	for _, r := range secondFactorRoles {
		if slices.Contains(roles, string(r)) {
			return true
		}
	}
	return false
}

// totpRoutes serves the second-factor endpoints.
type totpRoutes struct {
	s        *server
	cfg      TOTPConfig
	auth     *totp.Authenticator
	outcomes *prometheus.CounterVec
}

// Outcomes of a second-factor check, as counted.
const (
	totpOK       = "ok"
	totpRecovery = "recovery"
	totpInvalid  = "invalid"
	totpReplayed = "replayed"
	totpLocked   = "locked"
)

// registerTOTP adds the enrolment, disable and step-up routes.
func (s *server) registerTOTP(app *fiber.App) {
	cfg := s.deps.TOTP.withDefaults()
	a, err := totp.New(totp.Config{Issuer: cfg.Issuer, Rand: cfg.Rand})
	if err != nil {
		// Only an issuer with ':' gets here (cmd/spa refuses one first).
		s.log.Warn("TOTP issuer unusable; using the default", "err", err)
		cfg.Issuer = TOTPConfig{}.withDefaults().Issuer
		a, _ = totp.New(totp.Config{Issuer: cfg.Issuer, Rand: cfg.Rand})
	}
	r := &totpRoutes{s: s, cfg: cfg, auth: a, outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_totp_verifications_total",
		Help: "Second-factor codes checked, by outcome (ok, recovery, invalid, replayed, locked).",
	}, []string{"outcome"})}
	if err := s.deps.Registerer.Register(r.outcomes); err != nil {
		s.log.Warn("totp metrics not registered", "err", err)
	}
	staff := RequireRole(secondFactorRoles...)
	admin := RequireRole(auth.RoleAdmin)
	app.Post("/v1/auth/totp", r.signIn)
	app.Get("/v1/me/totp", staff, r.status)
	app.Post("/v1/me/totp/enrol", staff, r.enrol)
	app.Post("/v1/me/totp/confirm", staff, r.confirm)
	app.Post("/v1/me/totp/disable", staff, r.disable)
	app.Delete("/v1/admin/users/:id/totp", admin, s.mutate(r.adminReset))
}

// secretAAD binds a sealed TOTP secret to its user.
func secretAAD(userID string) []byte { return []byte("totp_factors.secret/" + userID) }

// ---- Step-up at sign-in ------------------------------------------------

// mfaDetails are the details of an mfa_required answer.
type mfaDetails struct {
	Challenge string `json:"mfa_challenge"`
	ExpiresIn int    `json:"mfa_expires_in"`
}

// secondFactorChallenge is the hook verifyOTP calls, in its transaction,
// once the login code checked out: for a user of a staff role with a
// confirmed TOTP factor it stores a challenge and returns the 401
// mfa_required answer that carries it (the caller commits, then answers
// it instead of issuing tokens); for anyone else it returns nil.
func (s *server) secondFactorChallenge(c *fiber.Ctx, tx persistence.Tx, u persistence.User, device string, now time.Time) (*fault.Error, error) {
	if !needsSecondFactor(u.Roles) {
		return nil, nil
	}
	ctx := c.UserContext()
	f, err := tx.TOTPFactorGet(ctx, u.ID)
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !f.Confirmed()) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cfg := s.deps.TOTP.withDefaults()
	// Challenges are only ever looked up by hash; the expired ones are
	// swept here, a few at a time, rather than by a job of their own.
	if _, err := tx.MFAChallengeDeleteExpired(ctx, now, mfaSweepBatch); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(cfg.Rand, raw); err != nil {
		return nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	if err := tx.MFAChallengeCreate(ctx, persistence.MFAChallenge{Hash: hashChallenge(tok), UserID: u.ID, Device: device,
		UserAgent: trimUserAgent(c.Get(fiber.HeaderUserAgent)), IP: s.clientIP(c), CreatedAt: now, ExpiresAt: now.Add(cfg.ChallengeTTL)}); err != nil {
		return nil, err
	}
	c.Set(fiber.HeaderWWWAuthenticate, "Bearer") // a 401, as every 401 carries
	return fault.New(fault.CodeMFARequired, "").WithDetails(mfaDetails{Challenge: tok, ExpiresIn: int(cfg.ChallengeTTL.Seconds())}), nil
}

// mfaSweepBatch bounds the expired challenges one sign-in deletes: more than
// one sign-in creates, so the table cannot grow, and few enough to keep the
// sign-in transaction short.
const mfaSweepBatch = 10

func hashChallenge(tok string) []byte {
	h := sha256.Sum256([]byte("mfa-challenge/" + tok))
	return h[:]
}

type totpSignInInput struct {
	Challenge string `json:"challenge"`
	Code      string `json:"code"`
}

var errChallenge = fault.Unauthenticated("the sign-in challenge is invalid, used or expired; sign in again")

// signIn exchanges a challenge and a TOTP or recovery code for tokens.
func (r *totpRoutes) signIn(c *fiber.Ctx) error {
	s := r.s
	id, err := s.identity()
	if err != nil {
		return err
	}
	var in totpSignInInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	if in.Challenge == "" || len(in.Challenge) > 128 {
		f.add("challenge", "required")
	}
	code := checkCodeField(&f, in.Code)
	if err := f.err(); err != nil {
		return err
	}
	ctx, hash := c.UserContext(), hashChallenge(in.Challenge)
	var out tokenPair
	refusal, err := r.withFactorRetry(ctx, func(tx persistence.Tx, now time.Time) (*checkResult, error) {
		ch, err := tx.MFAChallengeGet(ctx, hash)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, errChallenge
		}
		if err != nil {
			return nil, err
		}
		if !ch.UsedAt.IsZero() || !now.Before(ch.ExpiresAt) {
			return nil, errChallenge
		}
		factor, err := tx.TOTPFactorGet(ctx, ch.UserID)
		if errors.Is(err, persistence.ErrNotFound) || (err == nil && !factor.Confirmed()) {
			return nil, errChallenge // disabled meanwhile: a fresh sign-in needs no second factor
		}
		if err != nil {
			return nil, err
		}
		res, err := r.checkAndStore(ctx, tx, factor, code, true, now)
		if err != nil || !res.ok {
			return res, err
		}
		if err := tx.MFAChallengeUse(ctx, hash, now); err != nil {
			if errors.Is(err, persistence.ErrConflict) {
				return nil, errChallenge
			}
			return nil, err
		}
		u, err := tx.UserGet(ctx, ch.UserID)
		if err != nil {
			return nil, err
		}
		sess := persistence.Session{ID: ulid.Make().String(), UserID: u.ID, Device: ch.Device,
			UserAgent: ch.UserAgent, IP: ch.IP, CreatedAt: now, ExpiresAt: now.Add(id.SessionMaxAge)}
		if err := tx.SessionCreate(ctx, sess); err != nil {
			return nil, err
		}
		out, err = s.issue(ctx, tx, id, u, sess, nil, now)
		return res, err
	})
	if errors.Is(err, errChallenge) {
		return unauthenticated(c, errChallenge.Message)
	}
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal.answer(c)
	}
	return c.JSON(out)
}

// ---- Checking a code -----------------------------------------------------

// checkResult is what checking one code decided.
type checkResult struct {
	ok       bool
	outcome  string
	lockedIn time.Duration // > 0: the factor is locked for this long
}

// answer is the HTTP refusal of a failed check.
func (res *checkResult) answer(c *fiber.Ctx) error {
	if res.lockedIn > 0 {
		return retryAfter(c, res.lockedIn, fault.New(fault.CodeOTPLocked, "too many wrong codes; wait before trying again (see Retry-After)"))
	}
	return fault.New(fault.CodeInvalidCode, "the code is wrong or was already used")
}

// withFactorRetry runs fn in a transaction and, when fn's factor write lost
// a race with another node or request (ErrConflict), runs it again on fresh
// data, so of two requests presenting one code exactly one succeeds and the
// other sees the code as replayed. A refused check commits (its failure
// count must stick) and is returned as the result; the caller answers it.
// The outcome is counted once the transaction committed.
func (r *totpRoutes) withFactorRetry(ctx context.Context, fn func(tx persistence.Tx, now time.Time) (*checkResult, error)) (*checkResult, error) {
	const attempts = 4
	var err error
	for range attempts {
		var checked *checkResult
		err = r.s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
			var err error
			checked, err = fn(tx, r.s.deps.Now().UTC())
			return err
		})
		if err == nil && checked != nil {
			r.outcomes.WithLabelValues(checked.outcome).Inc()
			if !checked.ok {
				return checked, nil
			}
		}
		if !errors.Is(err, persistence.ErrConflict) {
			return nil, err
		}
	}
	return nil, err
}

// checkAndStore checks code (an authenticator code, or a recovery code
// when recovery is allowed and the factor is confirmed) against f, stores
// the updated factor (accepted step, spent recovery code, failure count,
// lockout) and reports the result. A store error is returned as is.
func (r *totpRoutes) checkAndStore(ctx context.Context, tx persistence.Tx, f persistence.TOTPFactor, code string, recovery bool, now time.Time) (*checkResult, error) {
	if now.Before(f.LockedUntil) {
		return &checkResult{outcome: totpLocked, lockedIn: f.LockedUntil.Sub(now)}, nil
	}
	secret, err := r.s.deps.Identity.Keyring.Decrypt(f.SecretCipher, secretAAD(f.UserID))
	if err != nil {
		return nil, err
	}
	res := &checkResult{outcome: totpInvalid}
	if isDigits(code) {
		st, err := r.auth.Verify(string(secret), totp.State{LastStep: uint64(f.LastStep)}, code, now)
		switch {
		case err == nil:
			res.ok, res.outcome = true, totpOK
			f.LastStep = int64(st.LastStep)
		case errors.Is(err, totp.ErrReplayed):
			res.outcome = totpReplayed
		case !errors.Is(err, totp.ErrInvalidCode):
			return nil, err
		}
	} else if recovery && f.Confirmed() {
		var set totp.RecoverySet
		if err := json.Unmarshal(f.Recovery, &set); err != nil {
			return nil, err
		}
		if next, err := set.Redeem(code, now); err == nil {
			if f.Recovery, err = json.Marshal(next); err != nil {
				return nil, err
			}
			res.ok, res.outcome = true, totpRecovery
		}
	}
	if res.ok {
		f.Failures, f.LockedUntil = 0, time.Time{}
	} else {
		f.Failures++
		if over := f.Failures - r.cfg.MaxFailures; over >= 0 {
			res.lockedIn = r.cfg.Lockout << min(over, 6)
			f.LockedUntil = now.Add(res.lockedIn)
		}
	}
	f.UpdatedAt = now
	if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
		return nil, err
	}
	return res, nil
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// checkCodeField validates a code field: 6 digits (spaces allowed, as apps
// show "123 456") or a recovery code (letters, digits and dashes).
func checkCodeField(f *fieldErrors, code string) string {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if code == "" || len(code) > 32 || strings.ContainsFunc(code, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-')
	}) {
		f.add("code", "a 6-digit authenticator code or a recovery code is required")
	}
	return code
}

// ---- Enrolment -------------------------------------------------------------

// me returns the caller's user; an operator token with no user behind it
// may not hold a second factor.
func (r *totpRoutes) me(ctx context.Context, tx persistence.Tx, c *fiber.Ctx) (persistence.User, error) {
	p, _ := Principal(c)
	u, err := tx.UserGet(ctx, p.Subject)
	if errors.Is(err, persistence.ErrNotFound) {
		return u, fault.Forbidden("only signed-in users have a second factor")
	}
	return u, err
}

type totpStatusJSON struct {
	Enabled                bool `json:"enabled"`
	Pending                bool `json:"pending"`
	RecoveryCodesRemaining int  `json:"recovery_codes_remaining"`
}

func (r *totpRoutes) status(c *fiber.Ctx) error {
	if _, err := r.s.identity(); err != nil {
		return err
	}
	var out totpStatusJSON
	err := r.s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		u, err := r.me(ctx, tx, c)
		if err != nil {
			return err
		}
		f, err := tx.TOTPFactorGet(ctx, u.ID)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out.Enabled, out.Pending = f.Confirmed(), !f.Confirmed()
		if f.Confirmed() {
			var set totp.RecoverySet
			if err := json.Unmarshal(f.Recovery, &set); err != nil {
				return err
			}
			out.RecoveryCodesRemaining = set.Remaining()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(out)
}

type enrolmentJSON struct {
	Secret     string `json:"secret"`
	OTPAuthURI string `json:"otpauth_uri"`
}

// enrol starts (or restarts) an enrolment: a new secret, stored sealed and
// not yet active. The answer holds the secret, so it is never stored for
// idempotent replay.
func (r *totpRoutes) enrol(c *fiber.Ctx) error {
	id, err := r.s.identity()
	if err != nil {
		return err
	}
	var out enrolmentJSON
	now := r.s.deps.Now().UTC()
	err = r.s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		u, err := r.me(ctx, tx, c)
		if err != nil {
			return err
		}
		f, err := tx.TOTPFactorGet(ctx, u.ID)
		switch {
		case err == nil && f.Confirmed():
			return fault.Conflict("a second factor is already enabled; disable it first")
		case errors.Is(err, persistence.ErrNotFound):
			f = persistence.TOTPFactor{UserID: u.ID, CreatedAt: now}
		case err != nil:
			return err
		}
		e, err := r.auth.Enrol(r.accountName(id, u))
		if err != nil {
			return err
		}
		if f.SecretCipher, err = id.Keyring.Encrypt([]byte(e.Secret), secretAAD(u.ID)); err != nil {
			return err
		}
		f.LastStep, f.Failures, f.LockedUntil, f.Recovery, f.UpdatedAt = 0, 0, time.Time{}, nil, now
		if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
			return versionConflict(err, f.Version)
		}
		out = enrolmentJSON{Secret: e.Secret, OTPAuthURI: e.URL}
		return r.s.audit(c, tx, "totp.enrol", "user/"+u.ID, map[string]any{"pending": true})
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

// accountName is the label an authenticator app shows: the masked phone
// (enough to tell accounts apart, useless to anyone who sees the screen),
// or the user id when the phone cannot be read.
func (r *totpRoutes) accountName(id *Identity, u persistence.User) string {
	if id.Keyring != nil {
		if num, err := id.Keyring.Decrypt(u.PhoneCipher, phoneAAD(u.ID)); err == nil {
			return phone.Mask(string(num))
		}
	}
	return u.ID
}

type totpCodeInput struct {
	Code string `json:"code"`
}

func readCode(c *fiber.Ctx) (string, error) {
	var in totpCodeInput
	if err := decodeJSON(c, &in); err != nil {
		return "", err
	}
	var f fieldErrors
	code := checkCodeField(&f, in.Code)
	return code, f.err()
}

type recoveryCodesJSON struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// confirm switches the pending factor on with its first code and hands out
// the recovery codes, once.
func (r *totpRoutes) confirm(c *fiber.Ctx) error {
	if _, err := r.s.identity(); err != nil {
		return err
	}
	code, err := readCode(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	var out recoveryCodesJSON
	refusal, err := r.withFactorRetry(ctx, func(tx persistence.Tx, now time.Time) (*checkResult, error) {
		u, err := r.me(ctx, tx, c)
		if err != nil {
			return nil, err
		}
		f, err := tx.TOTPFactorGet(ctx, u.ID)
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			return nil, fault.NotFound("no enrolment is pending; POST /v1/me/totp/enrol first")
		case err != nil:
			return nil, err
		case f.Confirmed():
			return nil, fault.Conflict("the second factor is already enabled")
		}
		plain, set, err := totp.NewRecoveryCodes(r.cfg.Rand, r.cfg.RecoveryCodes)
		if err != nil {
			return nil, err
		}
		res, err := r.checkAndStore(ctx, tx, f, code, false, now)
		if err != nil || !res.ok {
			return res, err
		}
		// checkAndStore stored the accepted step; switch the factor on.
		if f, err = tx.TOTPFactorGet(ctx, u.ID); err != nil {
			return nil, err
		}
		if f.Recovery, err = json.Marshal(set); err != nil {
			return nil, err
		}
		f.ConfirmedAt, f.UpdatedAt = now, now
		if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
			return nil, err
		}
		out.RecoveryCodes = plain
		return res, r.s.audit(c, tx, "totp.enable", "user/"+u.ID, map[string]any{"recovery_codes": len(plain)})
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal.answer(c)
	}
	return c.JSON(out)
}

// disable removes the factor, pending or enabled, given a valid code
// (authenticator, or recovery once enabled), so a stolen access token
// cannot turn it off.
func (r *totpRoutes) disable(c *fiber.Ctx) error {
	if _, err := r.s.identity(); err != nil {
		return err
	}
	code, err := readCode(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	refusal, err := r.withFactorRetry(ctx, func(tx persistence.Tx, now time.Time) (*checkResult, error) {
		u, err := r.me(ctx, tx, c)
		if err != nil {
			return nil, err
		}
		f, err := tx.TOTPFactorGet(ctx, u.ID)
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, fault.NotFound("no second factor is enrolled")
		}
		if err != nil {
			return nil, err
		}
		res, err := r.checkAndStore(ctx, tx, f, code, true, now)
		if err != nil || !res.ok {
			return res, err
		}
		if err := tx.TOTPFactorDelete(ctx, u.ID); err != nil {
			return nil, err
		}
		return res, r.s.audit(c, tx, "totp.disable", "user/"+u.ID, map[string]any{"with": res.outcome})
	})
	if err != nil {
		return err
	}
	if refusal != nil {
		return refusal.answer(c)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// adminReset removes a user's factor (lost phone and recovery codes); the
// reason is audited.
func (r *totpRoutes) adminReset(c *fiber.Ctx, tx persistence.Tx) error {
	if _, err := r.s.identity(); err != nil {
		return err
	}
	reason, err := adminReason(c)
	if err != nil {
		return err
	}
	uid := c.Params("id")
	if err := tx.TOTPFactorDelete(c.UserContext(), uid); err != nil {
		return notFound(err, "second factor")
	}
	if err := r.s.auditReason(c, tx, "totp.reset", "user/"+uid, reason, map[string]any{}); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
