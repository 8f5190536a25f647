package gateway

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/persistence"
)

// The sign-in, session, second-factor and kiosk use cases live in
// actors/service/identity; this file and totp.go and kiosk.go are their
// HTTP edge: decode, call, encode.

// Identity is what the sign-in endpoints need from the process (the
// service's Node). Without it (Deps.Identity nil) they answer 503: a
// gateway in a test that only serves the catalogue.
type Identity = identity.Node

// RecaptchaOTPContext is the reCAPTCHA context of a code request.
const RecaptchaOTPContext = identity.RecaptchaOTPContext

// newIdentity builds the identity service from the gateway's Deps.
func (s *server) newIdentity() *identity.Service {
	d := identity.Deps{Store: s.deps.Store, Tokens: s.deps.Tokens, Node: s.deps.Identity, TOTP: s.deps.TOTP,
		KioskTTL: s.deps.KioskTTL, PhoneBlocked: s.phoneBlocked, Registerer: s.deps.Registerer, Logger: s.log, Now: s.deps.Now}
	if s.deps.Calendars != nil {
		d.CheckIn = s.kioskCheckIn
	}
	return identity.New(d)
}

// phoneBlocked asks the person blocklist (set up by registerBlocking) about
// a number.
func (s *server) phoneBlocked(ctx context.Context, e164 string) (bool, error) {
	if s.blocks == nil {
		return false, nil
	}
	return s.blocks.IsBlocked(ctx, e164, "")
}

// registerIdentity adds the sign-in, session and user-administration routes.
func (s *server) registerIdentity(app *fiber.App) {
	anyone := RequireRole(personRoles...)
	admin := RequireRole(auth.RoleAdmin)
	// A retried code request must not send a second message; logouts
	// replay harmlessly. Sign-in and refresh answers hold credentials,
	// which are never stored, so those two are not wrapped.
	app.Post("/v1/auth/otp", s.external(s.requestOTP))
	app.Post("/v1/auth/otp/verify", s.verifyOTP)
	app.Post("/v1/auth/refresh", s.refresh)
	signedIn := withoutSecondFactor(personRoles...) // logging out needs no second factor
	app.Post("/v1/auth/logout", signedIn, s.external(s.logout))
	app.Post("/v1/auth/logout-all", signedIn, s.external(s.logoutAll))
	app.Get("/v1/me/sessions", anyone, s.mySessions)
	app.Delete("/v1/me/sessions/:id", anyone, s.external(s.deleteMySession))
	app.Post("/v1/admin/users/:id/revoke", admin, s.mutate(s.adminRevokeUser))
	app.Put("/v1/admin/users/:id/roles", admin, s.mutate(s.adminSetRoles))
}

// identityError adds the headers an identity refusal asks for: Retry-After
// (whole seconds, at least 1) for a wait, WWW-Authenticate for a 401 that
// asks the client to authenticate (again, or with a second factor).
func identityError(c *fiber.Ctx, err error) error {
	var w *identity.Wait
	if errors.As(err, &w) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(w.After.Seconds())))))
		return w.Err
	}
	var fe *fault.Error
	if errors.As(err, &fe) && (fe.Code == fault.CodeUnauthenticated || fe.Code == fault.CodeMFARequired) {
		c.Set(fiber.HeaderWWWAuthenticate, "Bearer")
	}
	return err
}

// ---- Codes and sign-in ------------------------------------------------------

type otpRequestInput struct {
	Phone     string `json:"phone"`
	Channel   string `json:"channel"`
	Recaptcha string `json:"recaptcha_token"`
}

// requestOTP sends a login code.
func (s *server) requestOTP(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in otpRequestInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	expires, err := s.ident.RequestCode(c.UserContext(), s.caller(c), identity.CodeRequestInput(in))
	if err != nil {
		return identityError(c, err)
	}
	return codeSent(c, expires)
}

func codeSent(c *fiber.Ctx, expires time.Duration) error {
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{
		"status":             "sent",
		"expires_in_seconds": int(expires.Seconds()),
	})
}

type otpVerifyInput struct {
	Phone     string `json:"phone"`
	Code      string `json:"code"`
	Device    string `json:"device"`
	Recaptcha string `json:"recaptcha_token"` // after a captcha_required answer
}

// verifyOTP checks a code and signs the caller in.
func (s *server) verifyOTP(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in otpVerifyInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	// The device whose legal consents the user adopts: the header is
	// optional on sign-in, and a malformed one adopts nothing.
	dev := c.Get(HeaderDeviceID)
	if !deviceIDRE.MatchString(dev) {
		dev = ""
	}
	out, err := s.ident.SignIn(c.UserContext(), s.caller(c), identity.SignInInput{Phone: in.Phone, Code: in.Code,
		Device: in.Device, UserAgent: c.Get(fiber.HeaderUserAgent), DeviceID: dev, Recaptcha: in.Recaptcha})
	if err != nil {
		return identityError(c, err)
	}
	return c.JSON(tokenView(out))
}

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
	// EnrolSecondFactorBy: the session lacks the second factor its role
	// needs; its tokens reach only /v1/me/totp* and logout until then.
	EnrolSecondFactorBy *time.Time `json:"enrol_second_factor_by,omitempty"`
}

func tokenView(t identity.SignedIn) tokenPair {
	return tokenPair{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: int(t.AccessTTL.Seconds()),
		RefreshToken: t.RefreshToken, RefreshExpiresIn: int(t.RefreshTTL.Seconds()),
		SessionID: t.SessionID, UserID: t.UserID, Role: string(t.Role), EnrolSecondFactorBy: utcOrNil(t.EnrolSecondFactorBy)}
}

// ---- Refresh and logout ------------------------------------------------------

type refreshInput struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh rotates a refresh token; a reused one revokes its session.
func (s *server) refresh(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in refreshInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := s.ident.Refresh(c.UserContext(), s.caller(c), identity.RefreshInput{RefreshToken: in.RefreshToken,
		UserAgent: c.Get(fiber.HeaderUserAgent)})
	if err != nil {
		return err
	}
	return c.JSON(tokenView(out))
}

func (s *server) logout(c *fiber.Ctx) error {
	if err := s.ident.Logout(c.UserContext(), s.caller(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) logoutAll(c *fiber.Ctx) error {
	if err := s.ident.LogoutAll(c.UserContext(), s.caller(c)); err != nil {
		return err
	}
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
	by := s.caller(c)
	list, err := s.ident.MySessions(c.UserContext(), by)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionJSON{ID: x.ID, Device: x.Device, UserAgent: x.UserAgent, IP: x.IP,
			CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, Current: x.ID == by.SessionID})
	}
	return c.JSON(fiber.Map{"sessions": out})
}

func (s *server) deleteMySession(c *fiber.Ctx) error {
	if err := s.ident.RevokeMySession(c.UserContext(), s.caller(c), c.Params("id")); err != nil {
		return err
	}
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
	return in.Reason, nil
}

func (s *server) adminRevokeUser(c *fiber.Ctx, tx persistence.Tx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	reason, err := adminReason(c)
	if err != nil {
		return err
	}
	uid := c.Params("id")
	revoked, err := s.ident.RevokeUser(c.UserContext(), tx, s.caller(c), uid, reason)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user_id": uid, "revoked_sessions": len(revoked)})
}

type rolesInput struct {
	Roles  []string `json:"roles"`
	Reason string   `json:"reason"`
}

func (s *server) adminSetRoles(c *fiber.Ctx, tx persistence.Tx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in rolesInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	uid := c.Params("id")
	roles, err := s.ident.SetRoles(c.UserContext(), tx, s.caller(c), uid, identity.SetRolesInput(in))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"id": uid, "roles": roles})
}
