package identity

import (
	"bytes"
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

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/auth/totp"
	"github.com/spa-engine/spa/actors/service"
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
	// Grace is how long a user of a staff role may go without a confirmed
	// factor (24h): from the promotion (or, for one promoted before the
	// rule, their first sign-in after it), the login code alone gives a
	// session that can only enrol; after it, that sign-in is refused
	// (second_factor_required) until an admin resets the factor, which
	// opens a new window.
	Grace time.Duration
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
	if c.Grace <= 0 {
		c.Grace = DefaultTOTPGrace
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

// DefaultTOTPGrace is TOTPConfig.Grace's default.
const DefaultTOTPGrace = 24 * time.Hour

// SecondFactorRoles are the roles that must hold the second factor: their
// sign-in asks for it once enrolled, and their tokens without it reach
// nothing but the enrolment (SecondFactorRequired).
var SecondFactorRoles = []auth.Role{auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin}

// SecondFactorRequired refuses a token of a staff role that does not carry
// the second factor (the login code alone: a SIM swap must not give staff
// or admin access). The gateway asks it on every route that needs a role,
// except the second factor's own routes and logout.
func SecondFactorRequired(c auth.Claims) error {
	if c.SecondFactor || !slices.Contains(SecondFactorRoles, c.Role) {
		return nil
	}
	return fault.New(fault.CodeSecondFactorRequired, "")
}

// errEnrolWindowClosed answers a login-code sign-in (or an enrolment) of a
// staff-role user whose window to enrol a factor has passed.
var errEnrolWindowClosed = fault.New(fault.CodeSecondFactorRequired,
	"the window to enrol a second factor has closed; ask an admin to reset your second factor")

// enrolDeadline returns when u's window to enrol a factor with the login
// code alone ends, opening it (now + Grace) for a staff-role user who has
// none yet: one promoted before the rule, or directly in the store.
func (s *Service) enrolDeadline(ctx context.Context, tx persistence.Tx, u persistence.User, now time.Time) (time.Time, error) {
	if !u.SecondFactorDue.IsZero() {
		return u.SecondFactorDue, nil
	}
	due := now.Add(s.totp.Grace)
	return due, tx.UserSetSecondFactorDue(ctx, u.ID, due)
}

// openEnrolWindow gives u a fresh window to enrol (promotion, a factor
// removed); a no-op for a user of no staff role.
func (s *Service) openEnrolWindow(ctx context.Context, tx persistence.Tx, userID string, roles []string, now time.Time) error {
	if !needsSecondFactor(roles) {
		return nil
	}
	return tx.UserSetSecondFactorDue(ctx, userID, now.Add(s.totp.Grace))
}

// checkEnrolWindow refuses the enrolment routes to a caller without the
// second factor once their window closed (with it, e.g. after a reset by
// an operator token, they may always enrol).
func (s *Service) checkEnrolWindow(ctx context.Context, tx persistence.Tx, by service.Caller, u persistence.User, now time.Time) error {
	if by.SecondFactor || !needsSecondFactor(u.Roles) {
		return nil
	}
	due, err := s.enrolDeadline(ctx, tx, u, now)
	if err != nil {
		return err
	}
	if !now.Before(due) {
		return errEnrolWindowClosed
	}
	return nil
}

func needsSecondFactor(roles []string) bool {
	for _, r := range SecondFactorRoles {
		if slices.Contains(roles, string(r)) {
			return true
		}
	}
	return false
}

// Outcomes of a second-factor check, as counted.
const (
	totpOK       = "ok"
	totpRecovery = "recovery"
	totpInvalid  = "invalid"
	totpReplayed = "replayed"
	totpLocked   = "locked"
)

func (s *Service) newTOTP(c TOTPConfig, reg prometheus.Registerer) {
	cfg := c.withDefaults()
	a, err := totp.New(totp.Config{Issuer: cfg.Issuer, Rand: cfg.Rand})
	if err != nil {
		// Only an issuer with ':' gets here (cmd/spa refuses one first).
		s.log.Warn("TOTP issuer unusable; using the default", "err", err)
		cfg.Issuer = TOTPConfig{}.withDefaults().Issuer
		a, _ = totp.New(totp.Config{Issuer: cfg.Issuer, Rand: cfg.Rand})
	}
	s.totp, s.authn = cfg, a
	s.totpOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_totp_verifications_total",
		Help: "Second-factor codes checked, by outcome (ok, recovery, invalid, replayed, locked).",
	}, []string{"outcome"})
	if err := reg.Register(s.totpOutcomes); err != nil {
		s.log.Warn("totp metrics not registered", "err", err)
	}
}

// ---- Step-up at sign-in ------------------------------------------------

// MFADetails are the details of an mfa_required refusal.
type MFADetails struct {
	Challenge string `json:"mfa_challenge"`
	ExpiresIn int    `json:"mfa_expires_in"`
}

// mfaOrigin is what the session created after the second step records of
// the first: the device label, user agent and address.
type mfaOrigin struct{ device, userAgent, ip string }

// secondFactorChallenge is the hook SignIn calls, in its transaction, once
// the login code checked out: for a user of a staff role with a confirmed
// TOTP factor it stores a challenge and returns the mfa_required refusal
// that carries it (SignIn commits, then answers it instead of issuing
// tokens). A staff-role user without one signs in to a session without
// the second factor (enrolment only) while their enrolment window is open
// — u comes back with its deadline — and is refused after it. For anyone
// else it returns nil.
func (s *Service) secondFactorChallenge(ctx context.Context, tx persistence.Tx, u *persistence.User, from mfaOrigin, now time.Time) (*fault.Error, error) {
	if !needsSecondFactor(u.Roles) {
		return nil, nil
	}
	f, err := tx.TOTPFactorGet(ctx, u.ID)
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !f.Confirmed()) {
		due, err := s.enrolDeadline(ctx, tx, *u, now)
		if err != nil {
			return nil, err
		}
		if !now.Before(due) {
			return nil, errEnrolWindowClosed
		}
		u.SecondFactorDue = due
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Challenges are only ever looked up by hash; the expired ones are
	// swept here, a few at a time, rather than by a job of their own.
	if _, err := tx.MFAChallengeDeleteExpired(ctx, now, mfaSweepBatch); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := io.ReadFull(s.totp.Rand, raw); err != nil {
		return nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	if err := tx.MFAChallengeCreate(ctx, persistence.MFAChallenge{Hash: HashChallenge(tok), UserID: u.ID, Device: from.device,
		UserAgent: from.userAgent, IP: from.ip, CreatedAt: now, ExpiresAt: now.Add(s.totp.ChallengeTTL)}); err != nil {
		return nil, err
	}
	return fault.New(fault.CodeMFARequired, "").WithDetails(MFADetails{Challenge: tok, ExpiresIn: int(s.totp.ChallengeTTL.Seconds())}), nil
}

// mfaSweepBatch bounds the expired challenges one sign-in deletes: more than
// one sign-in creates, so the table cannot grow, and few enough to keep the
// sign-in transaction short.
const mfaSweepBatch = 10

// HashChallenge is how a second-factor challenge is stored and found.
func HashChallenge(tok string) []byte {
	h := sha256.Sum256([]byte("mfa-challenge/" + tok))
	return h[:]
}

// TOTPSignInInput is the second step of a sign-in.
type TOTPSignInInput struct {
	Challenge string
	// Code is an authenticator code (spaces allowed) or a recovery code.
	Code string
}

var errChallenge = fault.Unauthenticated("the sign-in challenge is invalid, used or expired; sign in again")

// TOTPSignIn exchanges a challenge and a TOTP or recovery code for tokens.
func (s *Service) TOTPSignIn(ctx context.Context, by service.Caller, in TOTPSignInInput) (SignedIn, error) {
	if err := s.Ready(); err != nil {
		return SignedIn{}, err
	}
	var fields []fault.FieldError
	if in.Challenge == "" || len(in.Challenge) > 128 {
		fields = append(fields, fault.FieldError{Field: "challenge", Message: "required"})
	}
	code, bad := checkCodeField(in.Code)
	if bad != nil {
		fields = append(fields, *bad)
	}
	if len(fields) > 0 {
		return SignedIn{}, fault.Invalid("", fields...)
	}
	hash := HashChallenge(in.Challenge)
	var out SignedIn
	err := s.withFactorRetry(ctx, func(tx persistence.Tx, now time.Time) (*checkResult, error) {
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
		res, err := s.checkAndStore(ctx, tx, factor, code, true, now)
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
			UserAgent: ch.UserAgent, IP: ch.IP, CreatedAt: now, ExpiresAt: now.Add(s.node.SessionMaxAge), SecondFactor: true}
		if err := tx.SessionCreate(ctx, sess); err != nil {
			return nil, err
		}
		out, err = s.issue(ctx, tx, u, sess, nil, now)
		return res, err
	})
	if errors.Is(err, errChallenge) {
		return SignedIn{}, errChallenge
	}
	return out, err
}

// ---- Checking a code -----------------------------------------------------

// checkResult is what checking one code decided.
type checkResult struct {
	ok       bool
	outcome  string
	lockedIn time.Duration // > 0: the factor is locked for this long
}

// refusal is the answer to a failed check.
func (res *checkResult) refusal() error {
	if res.lockedIn > 0 {
		return wait(res.lockedIn, fault.New(fault.CodeOTPLocked, "too many wrong codes; wait before trying again (see Retry-After)"))
	}
	return fault.New(fault.CodeInvalidCode, "the code is wrong or was already used")
}

// withFactorRetry runs fn in a transaction and, when fn's factor write lost
// a race with another node or request (ErrConflict), runs it again on fresh
// data, so of two requests presenting one code exactly one succeeds and the
// other sees the code as replayed. A refused check commits (its failure
// count must stick) and is then returned as its refusal. The outcome is
// counted once the transaction committed.
func (s *Service) withFactorRetry(ctx context.Context, fn func(tx persistence.Tx, now time.Time) (*checkResult, error)) error {
	const attempts = 4
	var err error
	for range attempts {
		var checked *checkResult
		err = s.store.InTx(ctx, func(tx persistence.Tx) error {
			var err error
			checked, err = fn(tx, s.now().UTC())
			return err
		})
		if err == nil && checked != nil {
			s.totpOutcomes.WithLabelValues(checked.outcome).Inc()
			if !checked.ok {
				return checked.refusal()
			}
		}
		if !errors.Is(err, persistence.ErrConflict) {
			return err
		}
	}
	return err
}

// checkAndStore checks code (an authenticator code, or a recovery code
// when recovery is allowed and the factor is confirmed) against f, stores
// the updated factor (accepted step, spent recovery code, failure count,
// lockout) and reports the result. A store error is returned as is.
func (s *Service) checkAndStore(ctx context.Context, tx persistence.Tx, f persistence.TOTPFactor, code string, recovery bool, now time.Time) (*checkResult, error) {
	if now.Before(f.LockedUntil) {
		return &checkResult{outcome: totpLocked, lockedIn: f.LockedUntil.Sub(now)}, nil
	}
	secret, err := s.node.Keyring.Decrypt(f.SecretCipher, pii.TOTPSecretContext(f.UserID))
	if err != nil {
		return nil, err
	}
	res := &checkResult{outcome: totpInvalid}
	if isDigits(code) {
		st, err := s.authn.Verify(string(secret), totp.State{LastStep: uint64(f.LastStep)}, code, now)
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
		if over := f.Failures - s.totp.MaxFailures; over >= 0 {
			res.lockedIn = s.totp.Lockout << min(over, 6)
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
// show "123 456") or a recovery code (letters, digits and dashes). It
// returns the code without spaces, and the field's problem if any.
func checkCodeField(code string) (string, *fault.FieldError) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if code == "" || len(code) > 32 || strings.ContainsFunc(code, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-')
	}) {
		return code, &fault.FieldError{Field: "code", Message: "a 6-digit authenticator code or a recovery code is required"}
	}
	return code, nil
}

func readCode(raw string) (string, error) {
	code, bad := checkCodeField(raw)
	if bad != nil {
		return "", fault.Invalid("", *bad)
	}
	return code, nil
}

// ---- Enrolment -------------------------------------------------------------

// me returns the caller's user; an operator token with no user behind it
// may not hold a second factor.
func me(ctx context.Context, tx persistence.Tx, by service.Caller) (persistence.User, error) {
	u, err := tx.UserGet(ctx, by.Subject)
	if errors.Is(err, persistence.ErrNotFound) {
		return u, fault.Forbidden("only signed-in users have a second factor")
	}
	return u, err
}

// TOTPStatus is the state of the caller's second factor.
type TOTPStatus struct {
	Enabled, Pending       bool
	RecoveryCodesRemaining int
}

// TOTPStatus reports the caller's second factor.
func (s *Service) TOTPStatus(ctx context.Context, by service.Caller) (TOTPStatus, error) {
	if err := s.Ready(); err != nil {
		return TOTPStatus{}, err
	}
	var out TOTPStatus
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
		u, err := me(ctx, tx, by)
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
	return out, err
}

// Enrolment is a new secret and the otpauth:// URI of its QR code.
type Enrolment struct {
	Secret, URI string
}

// TOTPEnrol starts (or restarts) an enrolment: a new secret, stored sealed
// and not yet active; 409 while a factor is enabled. enrolmentID (from the
// request's Idempotency-Key, "" without one) names the enrolment: asked
// again with the same id while that enrolment is pending, it answers the
// same secret from the sealed row instead of issuing another, so a retry
// whose first answer was lost, or that raced it, never issues twice. The
// answer holds the secret: the gateway never stores it for replay.
func (s *Service) TOTPEnrol(ctx context.Context, by service.Caller, enrolmentID string) (Enrolment, error) {
	if err := s.Ready(); err != nil {
		return Enrolment{}, err
	}
	var key []byte
	if enrolmentID != "" {
		h := sha256.Sum256([]byte("totp-enrolment/" + enrolmentID))
		key = h[:]
	}
	var out Enrolment
	now := s.now().UTC()
	enrol := func(tx persistence.Tx) error {
		u, err := me(ctx, tx, by)
		if err != nil {
			return err
		}
		if err := s.checkEnrolWindow(ctx, tx, by, u, now); err != nil {
			return err
		}
		f, err := tx.TOTPFactorGet(ctx, u.ID)
		switch {
		case err == nil && f.Confirmed():
			return fault.Conflict("a second factor is already enabled; disable it first")
		case err == nil && key != nil && bytes.Equal(f.EnrolmentKey, key):
			// The same request again: the same pending secret.
			secret, err := s.node.Keyring.Decrypt(f.SecretCipher, pii.TOTPSecretContext(u.ID))
			if err != nil {
				return err
			}
			e, err := s.authn.Again(s.accountName(u), string(secret))
			out = Enrolment{Secret: e.Secret, URI: e.URL}
			return err
		case errors.Is(err, persistence.ErrNotFound):
			f = persistence.TOTPFactor{UserID: u.ID, CreatedAt: now}
		case err != nil:
			return err
		}
		e, err := s.authn.Enrol(s.accountName(u))
		if err != nil {
			return err
		}
		if f.SecretCipher, err = s.node.Keyring.Encrypt([]byte(e.Secret), pii.TOTPSecretContext(u.ID)); err != nil {
			return err
		}
		f.LastStep, f.Failures, f.LockedUntil, f.Recovery, f.UpdatedAt, f.EnrolmentKey = 0, 0, time.Time{}, nil, now, key
		if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
			return err
		}
		out = Enrolment{Secret: e.Secret, URI: e.URL}
		return service.Audit(ctx, tx, s.now(), by, "totp.enrol", "user/"+u.ID, "", map[string]any{"pending": true})
	}
	// Two requests racing on one row: the loser's write is refused by the
	// version; run again, it finds the winner's enrolment (the same one
	// when the id matches).
	var err error
	for range 2 {
		if err = s.store.InTx(ctx, enrol); !errors.Is(err, persistence.ErrConflict) {
			return out, err
		}
	}
	return Enrolment{}, fault.VersionConflict("")
}

// accountName is the label an authenticator app shows: the masked phone
// (enough to tell accounts apart, useless to anyone who sees the screen),
// or the user id when the phone cannot be read.
func (s *Service) accountName(u persistence.User) string {
	if s.node.Keyring != nil {
		if num, err := s.node.Keyring.Decrypt(u.PhoneCipher, pii.PhoneContext(u.ID)); err == nil {
			return phone.Mask(string(num))
		}
	}
	return u.ID
}

// TOTPConfirm switches the pending factor on with its first code and
// returns the recovery codes, handed out this once.
func (s *Service) TOTPConfirm(ctx context.Context, by service.Caller, rawCode string) ([]string, error) {
	if err := s.Ready(); err != nil {
		return nil, err
	}
	code, err := readCode(rawCode)
	if err != nil {
		return nil, err
	}
	var out []string
	err = s.withFactorRetry(ctx, func(tx persistence.Tx, now time.Time) (*checkResult, error) {
		u, err := me(ctx, tx, by)
		if err != nil {
			return nil, err
		}
		if err := s.checkEnrolWindow(ctx, tx, by, u, now); err != nil {
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
		plain, set, err := totp.NewRecoveryCodes(s.totp.Rand, s.totp.RecoveryCodes)
		if err != nil {
			return nil, err
		}
		res, err := s.checkAndStore(ctx, tx, f, code, false, now)
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
		f.ConfirmedAt, f.UpdatedAt, f.EnrolmentKey = now, now, nil
		if _, err := tx.TOTPFactorPut(ctx, f); err != nil {
			return nil, err
		}
		// The code just checked is the second factor, proved in this
		// session: its next refresh carries the claim.
		if by.SessionID != "" {
			if err := tx.SessionSetSecondFactor(ctx, by.SessionID); err != nil && !errors.Is(err, persistence.ErrNotFound) {
				return nil, err
			}
		}
		out = plain
		return res, service.Audit(ctx, tx, s.now(), by, "totp.enable", "user/"+u.ID, "", map[string]any{"recovery_codes": len(plain)})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TOTPDisable removes the caller's factor, pending or enabled, given a
// valid code (authenticator, or recovery once enabled), so a stolen access
// token cannot turn it off.
func (s *Service) TOTPDisable(ctx context.Context, by service.Caller, rawCode string) error {
	if err := s.Ready(); err != nil {
		return err
	}
	code, err := readCode(rawCode)
	if err != nil {
		return err
	}
	return s.withFactorRetry(ctx, func(tx persistence.Tx, now time.Time) (*checkResult, error) {
		u, err := me(ctx, tx, by)
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
		res, err := s.checkAndStore(ctx, tx, f, code, true, now)
		if err != nil || !res.ok {
			return res, err
		}
		if err := tx.TOTPFactorDelete(ctx, u.ID); err != nil {
			return nil, err
		}
		// A staff role still needs a factor: the user (who just proved
		// the old one) gets a fresh window to enrol the next.
		if err := s.openEnrolWindow(ctx, tx, u.ID, u.Roles, now); err != nil {
			return nil, err
		}
		return res, service.Audit(ctx, tx, s.now(), by, "totp.disable", "user/"+u.ID, "", map[string]any{"with": res.outcome})
	})
}

// ResetTOTP removes a user's factor (lost phone and recovery codes) in tx
// and, for a staff role, opens a new window to enrol one with the login
// code (also the way back for a user whose window closed without a
// factor), audited totp.reset with the optional reason. 404 when there is
// neither a factor nor a window to reopen.
func (s *Service) ResetTOTP(ctx context.Context, tx persistence.Tx, by service.Caller, userID, reason string) error {
	if err := s.Ready(); err != nil {
		return err
	}
	reason, err := CleanLabel("reason", reason, MaxReasonLen)
	if err != nil {
		return err
	}
	u, err := tx.UserGet(ctx, userID)
	if errors.Is(err, persistence.ErrNotFound) {
		return fault.NotFound("second factor not found")
	}
	if err != nil {
		return err
	}
	removed := true
	if err := tx.TOTPFactorDelete(ctx, userID); errors.Is(err, persistence.ErrNotFound) {
		removed = false
	} else if err != nil {
		return err
	}
	if !removed && !needsSecondFactor(u.Roles) {
		return fault.NotFound("second factor not found")
	}
	now := s.now().UTC()
	if err := s.openEnrolWindow(ctx, tx, userID, u.Roles, now); err != nil {
		return err
	}
	detail := map[string]any{"factor_removed": removed}
	if needsSecondFactor(u.Roles) {
		detail["enrol_by"] = now.Add(s.totp.Grace)
	}
	return service.Audit(ctx, tx, s.now(), by, "totp.reset", "user/"+userID, reason, detail)
}
