package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/phone"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/providers/recaptcha"
	"github.com/spa-engine/spa/actors/providers/sender"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

// Revocation reasons, as stored and published.
const (
	RevokeLogout       = "logout"
	RevokeLogoutAll    = "logout_all"
	RevokeRefreshReuse = "refresh_reuse"
	RevokeAdmin        = "admin"
	RevokeDemoted      = "roles_removed"
)

// ---- Codes ----------------------------------------------------------------

// RecaptchaOTPContext is the reCAPTCHA context (the action the page
// executes) of a code request: list it in SPA_RECAPTCHA_CONTEXTS to check
// it.
const RecaptchaOTPContext = "otp_request"

// RecaptchaStepUpContext is the reCAPTCHA context (action) of the step a
// number needs once it saw many wrong codes (otp.Policy.CaptchaAfter):
// list it in SPA_RECAPTCHA_CONTEXTS to ask it. Not listed, no CAPTCHA step
// exists and only the whole-number lockout bounds guesses spread over
// networks.
const RecaptchaStepUpContext = "otp_stepup"

// CaptchaDetails are the details of a captcha_required refusal: the
// reCAPTCHA action whose token to send as recaptcha_token.
type CaptchaDetails struct {
	Action string `json:"recaptcha_action"`
}

var errCaptchaRequired = fault.New(fault.CodeCaptchaRequired, "").WithDetails(CaptchaDetails{Action: RecaptchaStepUpContext})

// CodeRequestInput asks for a login code.
type CodeRequestInput struct {
	Phone   string
	Channel string // "", sms or whatsapp ("": the sender's default)
	// Recaptcha is the reCAPTCHA token, needed when RecaptchaOTPContext is
	// checked.
	Recaptcha string
}

// RequestCode sends a login code and returns its lifetime. The answer is
// the same whether or not the number belongs to a user: only limits and
// outages change it.
func (s *Service) RequestCode(ctx context.Context, by service.Caller, in CodeRequestInput) (time.Duration, error) {
	if err := s.Ready(); err != nil {
		return 0, err
	}
	ch := sender.Channel(in.Channel)
	if ch != "" && ch != sender.ChannelSMS && ch != sender.ChannelWhatsApp {
		return 0, fault.Invalid("", fault.FieldError{Field: "channel", Message: "must be sms or whatsapp"})
	}
	num, err := s.parsePhone(in.Phone)
	if err != nil {
		return 0, err
	}
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return 0, err
	}
	if err := allowIP(ctx, s.node.Limiter, by.IP, tooManyRequested); err != nil {
		return 0, err
	}
	passed, err := s.checkRecaptcha(ctx, by, in.Recaptcha)
	if err != nil {
		return 0, err
	}
	// The token of a checked otp_request is spent (Google answers a token
	// once): it stands for the step-up too.
	if !passed {
		if passed, err = s.stepUpCaptcha(ctx, by, in.Recaptcha); err != nil {
			return 0, err
		}
	}
	r := s.node.Sessions.RequestCode(ctx, s.phoneKey(num), &session.RequestCode{Phone: num.E164, Channel: ch,
		Network: otp.NetworkOf(by.IP), Captcha: passed})
	if err := otpError(r.Err); err != nil {
		if errors.Is(r.Err, session.ErrUnavailable) || errors.Is(r.Err, session.ErrDelivery) {
			s.log.Warn("otp request failed", "request_id", by.RequestID, "phone", num.Masked(), "err", r.Err)
		}
		return 0, err
	}
	return r.ExpiresIn, nil
}

// checkRecaptcha refuses a code request whose reCAPTCHA token does not pass
// when the context is checked, and reports whether it checked one. It runs
// after the per-IP limiter, so a bot cannot make us call Google without
// bound; when Google cannot be asked the request fails closed (503), as
// every other OTP dependency does.
func (s *Service) checkRecaptcha(ctx context.Context, by service.Caller, token string) (bool, error) {
	if !s.node.Recaptcha.Enabled(RecaptchaOTPContext) {
		return false, nil
	}
	return true, s.recaptcha(ctx, by, token, RecaptchaOTPContext)
}

// stepUpCaptcha reports whether the caller counts as having passed the
// CAPTCHA a number needs after many wrong codes: always when the step is
// not configured (RecaptchaStepUpContext unlisted), never without a token,
// and with one when it passes (a token that does not is 403, Google
// unreachable 503). Called after the per-IP limiter, like checkRecaptcha.
func (s *Service) stepUpCaptcha(ctx context.Context, by service.Caller, token string) (bool, error) {
	if !s.node.Recaptcha.Enabled(RecaptchaStepUpContext) {
		return true, nil
	}
	if token == "" {
		return false, nil
	}
	return true, s.recaptcha(ctx, by, token, RecaptchaStepUpContext)
}

func (s *Service) recaptcha(ctx context.Context, by service.Caller, token, checkContext string) error {
	_, err := s.node.Recaptcha.Verify(ctx, token, by.IP, checkContext)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, recaptcha.ErrUnavailable):
		s.log.Warn("recaptcha check unavailable", "request_id", by.RequestID, "err", err)
		return fault.Unavailable("")
	}
	return fault.New(fault.CodeForbidden, "the anti-bot check failed; reload the page and try again")
}

// otpError maps a session actor's error to the answer.
func otpError(err error) error {
	if err == nil {
		return nil
	}
	var re *otp.RetryError
	switch {
	case errors.As(err, &re) && errors.Is(err, otp.ErrLockedOut):
		return wait(re.RetryAfter, fault.New(fault.CodeOTPLocked, ""))
	case errors.As(err, &re):
		return wait(re.RetryAfter, fault.New(fault.CodeRateLimited, tooManyRequested))
	case errors.Is(err, otp.ErrCaptchaRequired):
		return errCaptchaRequired
	case errors.Is(err, session.ErrDelivery):
		return fault.Unavailable("the code could not be delivered; retry later")
	}
	// The store is down or the node is stopping: fail closed.
	return fault.Unavailable("")
}

// checkLoginCode refuses a code field that is not CodeLen digits.
func checkLoginCode(code string) error {
	if len(code) != otp.CodeLen || strings.Trim(code, "0123456789") != "" {
		return fault.Invalid("", fault.FieldError{Field: "code", Message: fmt.Sprintf("must be %d digits", otp.CodeLen)})
	}
	return nil
}

// verifyCode checks a login code with the phone's session actor: nil when
// it proves the phone; one answer for wrong, expired, used or never sent,
// so the response is no oracle. Failures count per phone and the caller's
// network (otp.NetworkOf); captcha tells the actor the caller passed a
// CAPTCHA (or none is asked).
func (s *Service) verifyCode(ctx context.Context, by service.Caller, num phone.Number, code string, captcha bool, logMsg string) error {
	r := s.node.Sessions.VerifyCode(ctx, s.phoneKey(num), &session.VerifyCode{Phone: num.E164, Code: code,
		Network: otp.NetworkOf(by.IP), Captcha: captcha})
	switch {
	case r.Err != nil:
		s.log.Warn(logMsg, "request_id", by.RequestID, "phone", num.Masked(), "err", r.Err)
		return fault.Unavailable("")
	case r.Result == otp.ResultLocked:
		return wait(r.RetryAfter, fault.New(fault.CodeOTPLocked, ""))
	case r.Result == otp.ResultCaptchaRequired:
		return errCaptchaRequired
	case r.Result != otp.ResultOK:
		return fault.New(fault.CodeInvalidCode, "")
	}
	return nil
}

// ---- Sign-in ----------------------------------------------------------------

// SignInInput is a login code offered for tokens.
type SignInInput struct {
	Phone, Code string
	// Device is the client's name for the device (optional label).
	Device string
	// UserAgent is the client's User-Agent as sent (trimmed here).
	UserAgent string
	// DeviceID, when set, is the well-formed id of the device (the legal
	// consents' X-Device-ID) whose consents the user adopts.
	DeviceID string
	// Recaptcha is a reCAPTCHA token (action RecaptchaStepUpContext), needed
	// once the number saw many wrong codes (captcha_required).
	Recaptcha string
}

// SignedIn is what a sign-in or refresh hands out.
type SignedIn struct {
	AccessToken  string
	AccessTTL    time.Duration
	RefreshToken string
	// RefreshTTL is how long the refresh token lasts from now (the
	// session's end may cut it short).
	RefreshTTL        time.Duration
	SessionID, UserID string
	Role              auth.Role
	// EnrolSecondFactorBy is set when the session lacks the second factor
	// its role needs: until then its tokens reach only the enrolment
	// (docs/identity-2fa-kiosk.md).
	EnrolSecondFactorBy time.Time
}

// SignIn checks a code and signs the caller in, creating the user (role
// client) the first time the number proves itself. A user of a staff role
// with a confirmed TOTP factor gets no session yet: the answer is an
// mfa_required refusal carrying the challenge (TOTPSignIn).
func (s *Service) SignIn(ctx context.Context, by service.Caller, in SignInInput) (SignedIn, error) {
	if err := s.Ready(); err != nil {
		return SignedIn{}, err
	}
	num, err := s.parsePhone(in.Phone)
	if err != nil {
		return SignedIn{}, err
	}
	if err := checkLoginCode(in.Code); err != nil {
		return SignedIn{}, err
	}
	device, err := CleanLabel("device", in.Device, maxDeviceLen)
	if err != nil {
		return SignedIn{}, err
	}
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return SignedIn{}, err
	}
	if err := allowIP(ctx, s.node.VerifyLimiter, by.IP, tooManyChecked); err != nil {
		return SignedIn{}, err
	}
	captcha, err := s.stepUpCaptcha(ctx, by, in.Recaptcha)
	if err != nil {
		return SignedIn{}, err
	}
	if err := s.verifyCode(ctx, by, num, in.Code, captcha, "otp verification failed"); err != nil {
		return SignedIn{}, err
	}

	now := s.now().UTC()
	index := s.node.Index.Sum(pii.FieldPhone, num.E164)
	ua := trimUserAgent(in.UserAgent)
	var out SignedIn
	var mfa *fault.Error // set when a TOTP code must follow (totp.go)
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		u, err := tx.UserGetByPhoneIndex(ctx, index)
		if errors.Is(err, persistence.ErrNotFound) {
			u, err = s.createUser(ctx, tx, index, num, now)
		}
		if err != nil {
			return err
		}
		if mfa, err = s.secondFactorChallenge(ctx, tx, &u, mfaOrigin{device, ua, by.IP}, now); mfa != nil || err != nil {
			return err
		}
		// The device's earlier legal consents become the user's, so a
		// visitor who accepted the terms is not asked again.
		if in.DeviceID != "" {
			if _, err := persistence.LegalConsentAdopt(ctx, tx, in.DeviceID, u.ID, func() string { return ulid.Make().String() }); err != nil {
				return err
			}
		}
		sess := persistence.Session{ID: ulid.Make().String(), UserID: u.ID, Device: device,
			UserAgent: ua, IP: by.IP, CreatedAt: now, ExpiresAt: now.Add(s.node.SessionMaxAge)}
		if err := tx.SessionCreate(ctx, sess); err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, u, sess, nil, now)
		return err
	})
	if err != nil {
		return SignedIn{}, err
	}
	if mfa != nil {
		return SignedIn{}, mfa
	}
	return out, nil
}

func (s *Service) createUser(ctx context.Context, tx persistence.Tx, index []byte, num phone.Number, now time.Time) (persistence.User, error) {
	uid := ulid.Make().String()
	sealed, err := s.node.Keyring.Encrypt([]byte(num.E164), pii.PhoneContext(uid))
	if err != nil {
		return persistence.User{}, err
	}
	u := persistence.User{ID: uid, PhoneIndex: index, PhoneCipher: sealed,
		Roles: []string{string(auth.RoleClient)}, CreatedAt: now, UpdatedAt: now}
	return u, tx.UserCreate(ctx, u)
}

// issue stores a new refresh token of sess (replacing parent, if any) and
// mints the access token that goes with it.
func (s *Service) issue(ctx context.Context, tx persistence.Tx, u persistence.User, sess persistence.Session, parent []byte, now time.Time) (SignedIn, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return SignedIn{}, err
	}
	refresh := base64.RawURLEncoding.EncodeToString(raw)
	expires := now.Add(s.node.RefreshTTL)
	if sess.ExpiresAt.Before(expires) {
		expires = sess.ExpiresAt
	}
	if err := tx.RefreshTokenPut(ctx, persistence.RefreshToken{Hash: hashRefresh(refresh), SessionID: sess.ID,
		ParentHash: parent, IssuedAt: now, ExpiresAt: expires}); err != nil {
		return SignedIn{}, err
	}
	role := primaryRole(u.Roles)
	access, _, err := s.tokens.MintSignIn(u.ID, role, sess.ID, s.node.AccessTTL, sess.SecondFactor)
	if err != nil {
		return SignedIn{}, err
	}
	out := SignedIn{AccessToken: access, AccessTTL: s.node.AccessTTL, RefreshToken: refresh,
		RefreshTTL: expires.Sub(now), SessionID: sess.ID, UserID: u.ID, Role: role}
	if !sess.SecondFactor && needsSecondFactor(u.Roles) {
		out.EnrolSecondFactorBy = u.SecondFactorDue
	}
	return out, nil
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

// RefreshInput is a refresh token offered for a new pair.
type RefreshInput struct {
	RefreshToken string
	UserAgent    string // as sent; trimmed here
}

// Refresh rotates a refresh token. A token used a second time means it was
// stolen (or the client is broken): the whole session is revoked, so the
// thief's copy and the owner's both stop working and the owner signs in
// again.
func (s *Service) Refresh(ctx context.Context, by service.Caller, in RefreshInput) (SignedIn, error) {
	if err := s.Ready(); err != nil {
		return SignedIn{}, err
	}
	if in.RefreshToken == "" || len(in.RefreshToken) > 128 {
		return SignedIn{}, fault.Invalid("", fault.FieldError{Field: "refresh_token", Message: "required"})
	}
	now := s.now().UTC()
	hash := hashRefresh(in.RefreshToken)
	var (
		out    SignedIn
		reused *persistence.Session
	)
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
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
			// Commit the revocation; the refusal is given after.
			if _, err := RevokeSessions(ctx, tx, sess.UserID, []string{sess.ID}, RevokeRefreshReuse, "system", by.RequestID, now); err != nil {
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
		if err := tx.SessionTouch(ctx, sess.ID, now, by.IP, trimUserAgent(in.UserAgent)); err != nil {
			return err
		}
		u, err := tx.UserGet(ctx, sess.UserID)
		if err != nil {
			return err
		}
		out, err = s.issue(ctx, tx, u, sess, hash, now)
		return err
	})
	if err != nil {
		return SignedIn{}, err
	}
	if reused != nil {
		s.Forget(now, reused.ID)
		s.log.Warn("refresh token reused: session revoked", "request_id", by.RequestID, "session", reused.ID, "user", reused.UserID)
		return SignedIn{}, fault.New(fault.CodeRefreshTokenInvalid, "")
	}
	return out, nil
}

// RevokeSessions marks ids revoked (all of the user's sessions when ids is
// nil) and appends the SessionsRevoked event every node follows, in tx.
// It returns the ids it revoked; the caller applies them on this node with
// Forget.
func RevokeSessions(ctx context.Context, tx persistence.Tx, userID string, ids []string, reason, actor, requestID string, now time.Time) ([]string, error) {
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

// Forget applies a committed revocation on this node at once; other nodes
// apply it when the event reaches them.
func (s *Service) Forget(at time.Time, ids ...string) {
	if s.node != nil && s.node.Revoked != nil {
		s.node.Revoked.Add(at, ids...)
	}
	for _, sid := range ids {
		s.tokens.ForgetSession(sid)
	}
}

// boundSession refuses a token that belongs to no sign-in session.
func boundSession(by service.Caller) error {
	if by.SessionID == "" {
		return fault.Invalid("this token is not bound to a sign-in session")
	}
	return nil
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, by service.Caller) error {
	return s.revokeMine(ctx, by, func() []string { return []string{by.SessionID} }, RevokeLogout)
}

// LogoutAll revokes every session of the caller.
func (s *Service) LogoutAll(ctx context.Context, by service.Caller) error {
	return s.revokeMine(ctx, by, func() []string { return nil }, RevokeLogoutAll)
}

// revokeMine revokes sessions of the caller: the ones ids picks, or all.
func (s *Service) revokeMine(ctx context.Context, by service.Caller, ids func() []string, reason string) error {
	if err := s.Ready(); err != nil {
		return err
	}
	if err := boundSession(by); err != nil {
		return err
	}
	now := s.now().UTC()
	var revoked []string
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		revoked, err = RevokeSessions(ctx, tx, by.Subject, ids(), reason, by.Subject, by.RequestID, now)
		return err
	})
	if err != nil {
		return err
	}
	s.Forget(now, revoked...)
	return nil
}

// ---- Session list ------------------------------------------------------------

// MySessions lists the caller's live sessions.
func (s *Service) MySessions(ctx context.Context, by service.Caller) ([]persistence.Session, error) {
	if err := s.Ready(); err != nil {
		return nil, err
	}
	var list []persistence.Session
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
		var err error
		list, err = tx.SessionListByUser(ctx, by.Subject, s.now(), persistence.MaxSessionListLimit)
		return err
	})
	return list, err
}

// RevokeMySession revokes one of the caller's sessions; another user's is
// as absent as a made-up id.
func (s *Service) RevokeMySession(ctx context.Context, by service.Caller, sid string) error {
	if err := s.Ready(); err != nil {
		return err
	}
	now := s.now().UTC()
	var revoked []string
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
		sess, err := tx.SessionGet(ctx, sid)
		if errors.Is(err, persistence.ErrNotFound) || (err == nil && sess.UserID != by.Subject) {
			return fault.NotFound("no such session")
		}
		if err != nil {
			return err
		}
		revoked, err = RevokeSessions(ctx, tx, by.Subject, []string{sid}, RevokeLogout, by.Subject, by.RequestID, now)
		return err
	})
	if err != nil {
		return err
	}
	s.Forget(now, revoked...)
	return nil
}

// ---- Administration ------------------------------------------------------------

// RevokeUser revokes every session of a user, in tx (the admin's request,
// under its Idempotency-Key), audited user.revoke_sessions with the
// optional reason. It returns the sessions revoked.
func (s *Service) RevokeUser(ctx context.Context, tx persistence.Tx, by service.Caller, userID, reason string) ([]string, error) {
	if err := s.Ready(); err != nil {
		return nil, err
	}
	reason, err := CleanLabel("reason", reason, MaxReasonLen)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	if _, err := tx.UserGet(ctx, userID); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, fault.NotFound("no such user")
		}
		return nil, err
	}
	revoked, err := RevokeSessions(ctx, tx, userID, nil, RevokeAdmin, by.Subject, by.RequestID, now)
	if err != nil {
		return nil, err
	}
	if err := service.Audit(ctx, tx, s.now(), by, "user.revoke_sessions", "user/"+userID, reason, map[string]any{"sessions": revoked}); err != nil {
		return nil, err
	}
	// Applied before the commit: if the transaction then fails, this node
	// refuses some access tokens a few minutes early, which is the safe
	// side of the error.
	s.Forget(now, revoked...)
	return revoked, nil
}

// SetRolesInput replaces a user's roles.
type SetRolesInput struct {
	Roles  []string
	Reason string
}

// SetRoles replaces a user's roles in tx, audited user.roles with the old
// and new roles, and returns the roles set (sorted, without duplicates).
// Kiosk is a device's role and never a user's.
func (s *Service) SetRoles(ctx context.Context, tx persistence.Tx, by service.Caller, userID string, in SetRolesInput) ([]string, error) {
	if err := s.Ready(); err != nil {
		return nil, err
	}
	if len(in.Roles) == 0 {
		return nil, fault.Invalid("", fault.FieldError{Field: "roles", Message: "at least one role is required"})
	}
	roles := make([]string, 0, len(in.Roles))
	for _, r := range in.Roles {
		role, err := auth.ParseRole(r)
		if err != nil || role == auth.RoleKiosk {
			return nil, fault.Invalid("", fault.FieldError{Field: "roles", Message: "unknown role; use client, staff, receptionist or admin"})
		}
		if !slices.Contains(roles, string(role)) {
			roles = append(roles, string(role))
		}
	}
	slices.Sort(roles)
	reason, err := CleanLabel("reason", in.Reason, MaxReasonLen)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	u, err := tx.UserGet(ctx, userID)
	if err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, fault.NotFound("no such user")
		}
		return nil, err
	}
	if err := tx.UserSetRoles(ctx, userID, roles, now); err != nil {
		return nil, err
	}
	// A promotion into a staff role starts the window in which the user
	// must enrol a second factor: bounded from now, not from whenever
	// they (or whoever holds their SIM) first sign in.
	if !needsSecondFactor(u.Roles) {
		if err := s.openEnrolWindow(ctx, tx, userID, roles, now); err != nil {
			return nil, err
		}
	}
	// An access token carries the user's highest role. When that goes down
	// (admin to staff, staff to client), the old role must stop working at
	// once, not when the tokens carrying it expire: the user's sessions are
	// revoked and they sign in again with what is left. A higher role takes
	// effect at the next refresh.
	var revoked []string
	if demoted(u.Roles, roles) {
		if revoked, err = RevokeSessions(ctx, tx, userID, nil, RevokeDemoted, by.Subject, by.RequestID, now); err != nil {
			return nil, err
		}
	}
	if err := service.Audit(ctx, tx, s.now(), by, "user.roles", "user/"+userID, reason,
		map[string]any{"from": u.Roles, "to": roles, "revoked_sessions": len(revoked)}); err != nil {
		return nil, err
	}
	s.Forget(now, revoked...) // before the commit, as RevokeUser does
	return roles, nil
}

// EndSessions revokes every live session of userID in tx for another use
// case (anonymisation, a phone block), with reason: service.Sessions.
func (s *Service) EndSessions(ctx context.Context, tx persistence.Tx, by service.Caller, userID, reason string, at time.Time) ([]string, error) {
	return RevokeSessions(ctx, tx, userID, nil, reason, by.Subject, by.RequestID, at)
}

var _ service.Sessions = (*Service)(nil)
