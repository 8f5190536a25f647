package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/gateway/apierr"
	"github.com/spa-engine/spa/persistence"
)

// Kiosk token lifetimes: the default when neither SPA_KIOSK_TTL nor the
// request sets one, and the bounds a request may ask for.
const (
	defaultKioskTTL = 12 * time.Hour
	minKioskTTL     = 5 * time.Minute
	maxKioskTTL     = 90 * 24 * time.Hour
	maxKioskList    = 200
	maxKioskLabel   = 64
)

// defaultTimeZone is the studio's zone when the studio is not set up yet.
const defaultTimeZone = "America/Bogota"

// Check-in outcomes, as counted.
const (
	kioskCheckedIn     = "checked_in"
	kioskNoAppointment = "no_appointment"
	kioskInvalidCode   = "invalid_code"
	kioskLocked        = "locked"
	kioskRefused       = "refused"
	kioskError         = "error"
)

// kioskRoutes serves kiosk administration and the kiosk's own routes.
type kioskRoutes struct {
	s        *server
	ttl      time.Duration
	checkIns *prometheus.CounterVec
	codes    *prometheus.CounterVec
}

// registerKiosk adds the admin routes that issue, list and revoke kiosk
// tokens, and the routes a kiosk token may call (and nothing else may).
func (s *server) registerKiosk(app *fiber.App) {
	r := &kioskRoutes{s: s, ttl: s.deps.KioskTTL}
	if r.ttl <= 0 {
		r.ttl = defaultKioskTTL
	}
	r.checkIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_kiosk_checkins_total",
		Help: "Kiosk check-in attempts by outcome (checked_in, no_appointment, invalid_code, locked, refused, error).",
	}, []string{"outcome"})
	r.codes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_kiosk_codes_total",
		Help: "Check-in codes requested at kiosks, by outcome (sent, limited, error).",
	}, []string{"outcome"})
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_kiosk_sessions_active",
		Help: "Kiosk tokens neither revoked nor expired.",
	}, storeCount(s.deps.Store, func(ctx context.Context, tx persistence.Tx) (int, error) {
		return tx.KioskCountLive(ctx, s.deps.Now())
	}))
	for _, c := range []prometheus.Collector{r.checkIns, r.codes, active} {
		if err := s.deps.Registerer.Register(c); err != nil {
			s.log.Warn("kiosk metrics not registered", "err", err)
		}
	}
	admin := RequireRole(auth.RoleAdmin)
	kiosk := []fiber.Handler{RequireRole(auth.RoleKiosk), r.requireLive}
	app.Post("/v1/admin/kiosks", admin, r.issue)
	app.Get("/v1/admin/kiosks", admin, r.list)
	app.Delete("/v1/admin/kiosks/:id", admin, s.mutate(r.revoke))
	app.Post("/v1/kiosk/otp", append(kiosk, r.requestCode)...)
	app.Post("/v1/kiosk/check-in", append(kiosk, r.checkIn)...)
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

func kioskView(k persistence.Kiosk, now time.Time) kioskJSON {
	return kioskJSON{ID: k.ID, Label: k.Label, CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC(),
		ExpiresAt: k.ExpiresAt.UTC(), RevokedAt: utcOrNil(k.RevokedAt), Active: k.Live(now)}
}

type kioskIssueInput struct {
	Label      string `json:"label"`
	TTLSeconds int64  `json:"ttl_seconds"`
}

type kioskIssuedJSON struct {
	kioskJSON
	Token string `json:"token"`
}

// issue creates a kiosk and its token. The answer holds the token, so it
// is not stored for idempotent replay: a retry makes a second kiosk, which
// the admin can revoke.
func (r *kioskRoutes) issue(c *fiber.Ctx) error {
	var in kioskIssueInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	label, err := cleanLabel("label", in.Label, maxKioskLabel)
	if err != nil {
		return err
	}
	if label == "" {
		return fault.Invalid("", fault.FieldError{Field: "label", Message: "required"})
	}
	ttl := r.ttl
	if in.TTLSeconds != 0 {
		if in.TTLSeconds < int64(minKioskTTL.Seconds()) || in.TTLSeconds > int64(maxKioskTTL.Seconds()) {
			return fault.Invalid("", fault.FieldError{Field: "ttl_seconds",
				Message: fmt.Sprintf("must be %d to %d", int64(minKioskTTL.Seconds()), int64(maxKioskTTL.Seconds()))})
		}
		ttl = time.Duration(in.TTLSeconds) * time.Second
	}
	p, _ := Principal(c)
	now := r.s.deps.Now().UTC()
	k := persistence.Kiosk{ID: ulid.Make().String(), Label: label, CreatedBy: p.Subject,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	// The token's sid is the kiosk: every kiosk request checks that row.
	tok, _, err := r.s.deps.Tokens.MintSession(k.ID, auth.RoleKiosk, k.ID, ttl)
	if err != nil {
		return err
	}
	err = r.s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.KioskCreate(ctx, k); err != nil {
			return err
		}
		return r.s.audit(c, tx, "kiosk.issue", "kiosk/"+k.ID, map[string]any{"label": label, "expires_at": k.ExpiresAt})
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(kioskIssuedJSON{kioskJSON: kioskView(k, now), Token: tok})
}

func (r *kioskRoutes) list(c *fiber.Ctx) error {
	all := false
	switch c.Query("all") {
	case "", "false":
	case "true":
		all = true
	default:
		return fault.Invalid("", fault.FieldError{Field: "all", Message: "must be true or false"})
	}
	now := r.s.deps.Now().UTC()
	var list []persistence.Kiosk
	if err := r.s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.KioskList(ctx, now, all, maxKioskList)
		return err
	}); err != nil {
		return err
	}
	out := make([]kioskJSON, len(list))
	for i, k := range list {
		out[i] = kioskView(k, now)
	}
	return c.JSON(fiber.Map{"kiosks": out})
}

// revoke ends a kiosk at once on every node: each kiosk request reads the
// kiosk's row (requireLive), so no event has to travel first.
func (r *kioskRoutes) revoke(c *fiber.Ctx, tx persistence.Tx) error {
	id := c.Params("id")
	ctx, now := c.UserContext(), r.s.deps.Now().UTC()
	revoked, err := tx.KioskRevoke(ctx, id, now)
	if err != nil {
		return notFound(err, "kiosk")
	}
	if revoked {
		if err := r.s.audit(c, tx, "kiosk.revoke", "kiosk/"+id, map[string]any{}); err != nil {
			return err
		}
	}
	r.s.deps.Tokens.ForgetSession(id)
	return c.SendStatus(fiber.StatusNoContent)
}

// ---- The kiosk's routes ----------------------------------------------------------

// requireLive admits a kiosk token only while its kiosk is neither revoked
// nor expired. Kiosk traffic is a few requests a minute per studio, so one
// indexed read per request buys revocation that needs no propagation.
func (r *kioskRoutes) requireLive(c *fiber.Ctx) error {
	p, _ := Principal(c) // RequireRole ran first
	var k persistence.Kiosk
	err := r.s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		k, err = tx.KioskGet(ctx, p.SessionID)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !k.Live(r.s.deps.Now())) {
		return unauthenticated(c, "this kiosk was revoked or has expired; an admin must issue a new kiosk token")
	}
	if err != nil {
		return err
	}
	return c.Next()
}

type kioskCodeInput struct {
	Phone string `json:"phone"`
}

// requestCode sends a check-in code to a client's phone through the same
// session actor, limits and answers as a sign-in code.
func (r *kioskRoutes) requestCode(c *fiber.Ctx) error {
	s := r.s
	id, err := s.identity()
	if err != nil {
		return err
	}
	var in kioskCodeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
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
		r.codes.WithLabelValues("limited").Inc()
		return err
	}
	res := id.Sessions.RequestCode(ctx, id.phoneKey(num), &session.RequestCode{Phone: num.E164})
	if err := otpError(c, res.Err); err != nil {
		if apiErr, _ := apierr.From(err); apiErr != nil && apiErr.Code == fault.CodeRateLimited {
			r.codes.WithLabelValues("limited").Inc()
		} else {
			r.codes.WithLabelValues("error").Inc()
			s.log.Warn("kiosk code request failed", "request_id", RequestID(c), "phone", num.Masked(), "err", res.Err)
		}
		return err
	}
	r.codes.WithLabelValues("sent").Inc()
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{
		"status":             "sent",
		"expires_in_seconds": int(res.ExpiresIn.Seconds()),
	})
}

type kioskCheckInInput struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
}

// checkIn proves the client holds the phone (the code), then checks in
// each of their confirmed appointments of today (the studio's day) through
// the owning schedule actor, as the staff check-in does.
func (r *kioskRoutes) checkIn(c *fiber.Ctx) error {
	outcome := kioskError
	defer func() { r.checkIns.WithLabelValues(outcome).Inc() }()
	s := r.s
	id, err := s.identity()
	if err != nil {
		return err
	}
	if s.deps.Calendars == nil {
		return fault.Unavailable("booking is not configured on this node")
	}
	var in kioskCheckInInput
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
	ctx := c.UserContext()
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return err
	}
	if err := s.allowIP(c, id.VerifyLimiter, tooManyChecked); err != nil {
		outcome = kioskLocked
		return err
	}
	v := id.Sessions.VerifyCode(ctx, id.phoneKey(num), &session.VerifyCode{Phone: num.E164, Code: in.Code})
	switch {
	case v.Err != nil:
		s.log.Warn("kiosk code check failed", "request_id", RequestID(c), "phone", num.Masked(), "err", v.Err)
		return fault.Unavailable("")
	case v.Result == otp.ResultLocked:
		outcome = kioskLocked
		return retryAfter(c, v.RetryAfter, fault.New(fault.CodeOTPLocked, ""))
	case v.Result != otp.ResultOK:
		outcome = kioskInvalidCode
		return fault.New(fault.CodeInvalidCode, "")
	}

	now := s.deps.Now().UTC()
	var todays []persistence.Appointment
	err = s.read(c, func(ctx context.Context, tx persistence.Tx) error {
		u, err := tx.UserGetByPhoneIndex(ctx, id.Index.Sum(pii.FieldPhone, num.E164))
		if errors.Is(err, persistence.ErrNotFound) {
			return nil // a number with no user has no appointment
		}
		if err != nil {
			return err
		}
		from, to, err := studioDay(ctx, tx, now)
		if err != nil {
			return err
		}
		list, err := tx.AppointmentListByClient(ctx, u.ID, from, to, 50)
		for _, ap := range list {
			if ap.Status == persistence.StatusConfirmed {
				todays = append(todays, ap)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(todays) == 0 {
		outcome = kioskNoAppointment
		return fault.NotFound("no confirmed appointment today for this number")
	}
	p, _ := Principal(c)
	var done []persistence.Appointment
	var refusal error
	for _, ap := range todays {
		rep, err := calendarReply(s.deps.Calendars.CheckIn(ctx, ap.StaffID, &schedule.CheckIn{AppointmentID: ap.ID, ActorID: "kiosk/" + p.Subject}))
		if err != nil {
			return err
		}
		if rep.Err != nil {
			// Too early or too late for this one; another may be open.
			refusal = rep.Err
			continue
		}
		if ap.ResourceID != "" {
			s.trackResource(ctx, rep.Appointment)
		}
		done = append(done, rep.Appointment)
	}
	if len(done) == 0 {
		outcome = kioskRefused
		return scheduleError(refusal, nil)
	}
	outcome = kioskCheckedIn
	return c.JSON(fiber.Map{"checked_in": appointmentsView(done)})
}

// studioDay is [start, end) of today in the studio's time zone, as UTC
// instants (a DST day is 23 or 25 hours long).
func studioDay(ctx context.Context, tx persistence.Tx, now time.Time) (time.Time, time.Time, error) {
	zone := defaultTimeZone
	st, err := tx.StudioGet(ctx, studioID)
	switch {
	case err == nil && st.TimeZone != "":
		zone = st.TimeZone
	case err != nil && !errors.Is(err, persistence.ErrNotFound):
		return time.Time{}, time.Time{}, err
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	y, m, d := now.In(loc).Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, loc)
	return from.UTC(), from.AddDate(0, 0, 1).UTC(), nil
}
