package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/booking"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/gateway/reqctx"
	"github.com/spa-engine/spa/persistence"
)

// registerKiosk adds the admin routes that issue, list and revoke kiosk
// tokens, and the routes a kiosk token may call (and nothing else may).
func (s *server) registerKiosk(app *fiber.App) {
	admin := RequireRole(auth.RoleAdmin)
	kiosk := []fiber.Handler{RequireRole(auth.RoleKiosk)} // liveness: refuseDeadKiosks, on every route
	app.Post("/v1/admin/kiosks", admin, s.external(s.issueKiosk))
	app.Get("/v1/admin/kiosks", admin, s.listKiosks)
	app.Delete("/v1/admin/kiosks/:id", admin, s.mutate(s.revokeKiosk))
	app.Post("/v1/kiosk/otp", append(kiosk, s.kioskRequestCode)...)
	app.Post("/v1/kiosk/check-in", append(kiosk, s.kioskCheckInRoute)...)
}

// ---- Administration ----------------------------------------------------------

type kioskJSON struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Active    bool       `json:"active"`
}

func kioskView(k identity.Kiosk) kioskJSON {
	return kioskJSON{ID: k.ID, Label: k.Label, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(),
		ExpiresAt: k.ExpiresAt.UTC(), RevokedAt: utcOrNil(k.RevokedAt), Active: k.Active}
}

type kioskIssueInput struct {
	Label      string `json:"label"`
	TTLSeconds int64  `json:"ttl_seconds"`
}

type kioskIssuedJSON struct {
	kioskJSON
	Token string `json:"token,omitempty"` // in the first answer only
}

// issueKiosk creates a kiosk and its token. The answer holds the token, so
// it is not stored for idempotent replay.
func (s *server) issueKiosk(c *fiber.Ctx) error {
	var in kioskIssueInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	k, tok, err := s.ident.IssueKiosk(c.UserContext(), s.caller(c), identity.KioskIssueInput{Label: in.Label,
		TTLSeconds: in.TTLSeconds, ID: idempotency.DerivedID(c, "")})
	if err != nil {
		return err
	}
	// The token is shown in this response only: a replay of the request
	// answers the same kiosk without it, and never issues a second one.
	withoutToken := kioskIssuedJSON{kioskJSON: kioskView(k)}
	idempotency.Redact(c, func([]byte) []byte {
		b, _ := json.Marshal(withoutToken)
		return b
	})
	return c.Status(fiber.StatusCreated).JSON(kioskIssuedJSON{kioskJSON: withoutToken.kioskJSON, Token: tok})
}

func (s *server) listKiosks(c *fiber.Ctx) error {
	all := false
	switch c.Query("all") {
	case "", "false":
	case "true":
		all = true
	default:
		return fault.Invalid("", fault.FieldError{Field: "all", Message: "must be true or false"})
	}
	list, err := s.ident.Kiosks(c.UserContext(), s.caller(c), all)
	if err != nil {
		return err
	}
	out := make([]kioskJSON, len(list))
	for i, k := range list {
		out[i] = kioskView(k)
	}
	return c.JSON(fiber.Map{"kiosks": out})
}

func (s *server) revokeKiosk(c *fiber.Ctx, tx persistence.Tx) error {
	if err := s.ident.RevokeKiosk(c.UserContext(), tx, s.caller(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// ---- The kiosk's routes ----------------------------------------------------------

// refuseDeadKiosks admits a kiosk token, on every route, only while its
// kiosk is neither revoked nor expired. It runs right after Authenticate:
// a kiosk token also opens the routes anonymous callers may use (carts,
// stock reservations, availability), so checking only the kiosk routes
// left a revoked device able to reserve stock.
func (s *server) refuseDeadKiosks(c *fiber.Ctx) error {
	if p, ok := reqctx.Principal(c); !ok || p.Role != auth.RoleKiosk {
		return c.Next()
	}
	if err := s.ident.KioskLive(c.UserContext(), s.caller(c)); err != nil {
		return identityError(c, err)
	}
	return c.Next()
}

type kioskCodeInput struct {
	Phone string `json:"phone"`
}

// kioskRequestCode sends a check-in code to a client's phone.
func (s *server) kioskRequestCode(c *fiber.Ctx) error {
	if err := s.ident.Ready(); err != nil {
		return err
	}
	var in kioskCodeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	expires, err := s.ident.KioskRequestCode(c.UserContext(), s.caller(c), in.Phone)
	if err != nil {
		return identityError(c, err)
	}
	return codeSent(c, expires)
}

type kioskCheckInInput struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
}

// kioskCheckInRoute checks the client in to today's appointments.
func (s *server) kioskCheckInRoute(c *fiber.Ctx) error {
	if err := s.ident.KioskCheckInReady(); err != nil {
		return s.ident.KioskCheckInFailed(err)
	}
	var in kioskCheckInInput
	if err := decodeJSON(c, &in); err != nil {
		return s.ident.KioskCheckInFailed(err)
	}
	done, err := s.ident.KioskCheckIn(c.UserContext(), s.caller(c), identity.KioskCheckInInput(in))
	if err != nil {
		return identityError(c, err)
	}
	return c.JSON(fiber.Map{"checked_in": appointmentsView(done)})
}

// kioskCheckIn is the kiosk's door to the calendars (identity.Deps.CheckIn):
// the booking service's check-in through the staff member's schedule
// actor, with the resource actor told of the change.
func (s *server) kioskCheckIn(ctx context.Context, ap persistence.Appointment, actorID string) (persistence.Appointment, error) {
	done, err := s.booking.KioskCheckIn(ctx, ap, actorID)
	var r *booking.Refused
	if errors.As(err, &r) {
		return ap, &identity.Refused{Err: bookingError(r.Err)}
	}
	return done, err
}
