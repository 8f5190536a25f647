package gateway

import (
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// TOTPConfig configures the TOTP second factor of staff roles
// (identity.TOTPConfig).
type TOTPConfig = identity.TOTPConfig

// enrolmentRoute marks a route a staff-role token without the second
// factor may reach (RequireRole).
type enrolmentRoute struct{}

// withoutSecondFactor is RequireRole(roles...) that also admits a staff
// role's token still without the second factor: the routes that enrol,
// confirm, show or remove the factor (each checks a code itself where it
// matters), and logout.
func withoutSecondFactor(roles ...auth.Role) fiber.Handler {
	check := RequireRole(roles...)
	return func(c *fiber.Ctx) error {
		c.Locals(enrolmentRoute{}, true)
		return check(c)
	}
}

// registerTOTP adds the enrolment, disable and step-up routes
// (docs/identity-2fa-kiosk.md).
func (s *server) registerTOTP(app *fiber.App) {
	staff := withoutSecondFactor(identity.SecondFactorRoles...)
	admin := RequireRole(auth.RoleAdmin)
	app.Post("/v1/auth/totp", s.totpSignIn)
	app.Get("/v1/me/totp", staff, s.totpStatus)
	app.Post("/v1/me/totp/enrol", staff, s.external(s.totpEnrol))
	app.Post("/v1/me/totp/confirm", staff, s.totpConfirm)
	app.Post("/v1/me/totp/disable", staff, s.totpDisable)
	app.Delete("/v1/admin/users/:id/totp", admin, s.mutate(s.totpReset))
}

type totpSignInInput struct {
	Challenge string `json:"challenge"`
	Code      string `json:"code"`
}

// totpSignIn exchanges a challenge and a TOTP or recovery code for tokens.
func (s *server) totpSignIn(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in totpSignInInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	out, err := s.ident.TOTPSignIn(c.UserContext(), s.caller(c), identity.TOTPSignInInput(in))
	if err != nil {
		return identityError(c, err)
	}
	return c.JSON(tokenView(out))
}

type totpStatusJSON struct {
	Enabled                bool `json:"enabled"`
	Pending                bool `json:"pending"`
	RecoveryCodesRemaining int  `json:"recovery_codes_remaining"`
}

func (s *server) totpStatus(c *fiber.Ctx) error {
	st, err := s.ident.TOTPStatus(c.UserContext(), s.caller(c))
	if err != nil {
		return err
	}
	return c.JSON(totpStatusJSON(st))
}

type enrolmentJSON struct {
	Secret     string `json:"secret,omitempty"`      // in the first answer only
	OTPAuthURI string `json:"otpauth_uri,omitempty"` // (it holds the secret too)
	Pending    bool   `json:"pending"`
}

// totpEnrol starts (or restarts) an enrolment. The secret is shown in this
// answer only: under an Idempotency-Key the enrolment derives from the key
// (a retry that reaches the service gets the same pending secret, never a
// second one), and the remembered copy a replay answers leaves the secret
// and its URI out, so the idempotency table never holds it.
func (s *server) totpEnrol(c *fiber.Ctx) error {
	e, err := s.ident.TOTPEnrol(c.UserContext(), s.caller(c), idempotency.DerivedID(c, "totp/"))
	if err != nil {
		return err
	}
	idempotency.Redact(c, func([]byte) []byte {
		b, _ := json.Marshal(enrolmentJSON{Pending: true})
		return b
	})
	return c.Status(fiber.StatusCreated).JSON(enrolmentJSON{Secret: e.Secret, OTPAuthURI: e.URI, Pending: true})
}

type totpCodeInput struct {
	Code string `json:"code"`
}

type recoveryCodesJSON struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// totpConfirm switches the pending factor on and hands out the recovery
// codes, once.
func (s *server) totpConfirm(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in totpCodeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	codes, err := s.ident.TOTPConfirm(c.UserContext(), s.caller(c), in.Code)
	if err != nil {
		return identityError(c, err)
	}
	return c.JSON(recoveryCodesJSON{RecoveryCodes: codes})
}

// totpDisable removes the caller's factor given a valid code.
func (s *server) totpDisable(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in totpCodeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.ident.TOTPDisable(c.UserContext(), s.caller(c), in.Code); err != nil {
		return identityError(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// totpReset removes a user's factor (lost phone and recovery codes).
func (s *server) totpReset(c *fiber.Ctx, tx persistence.Tx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	reason, err := adminReason(c)
	if err != nil {
		return err
	}
	if err := s.ident.ResetTOTP(c.UserContext(), tx, s.caller(c), c.Params("id"), reason); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
