package identity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/otp"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/session"
	"github.com/spa-engine/spa/persistence"
)

// Kiosk token lifetimes: the default when neither SPA_KIOSK_TTL nor the
// request sets one, and the bounds a request may ask for.
const (
	DefaultKioskTTL = 12 * time.Hour
	minKioskTTL     = 5 * time.Minute
	maxKioskTTL     = 90 * 24 * time.Hour
	maxKioskList    = 200
	maxKioskLabel   = 64
)

// DefaultTimeZone is the studio's zone when the studio is not set up yet.
const DefaultTimeZone = "America/Bogota"

// studioID is the one studio of a single-studio install (gateway/studio.go).
const studioID = "default"

// Check-in outcomes, as counted.
const (
	kioskCheckedIn     = "checked_in"
	kioskNoAppointment = "no_appointment"
	kioskInvalidCode   = "invalid_code"
	kioskLocked        = "locked"
	kioskRefused       = "refused"
	kioskError         = "error"
)

func (s *Service) newKiosk(reg prometheus.Registerer) {
	s.checkIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_kiosk_checkins_total",
		Help: "Kiosk check-in attempts by outcome (checked_in, no_appointment, invalid_code, locked, refused, error).",
	}, []string{"outcome"})
	s.kioskCodes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "spa_kiosk_codes_total",
		Help: "Check-in codes requested at kiosks, by outcome (sent, limited, error).",
	}, []string{"outcome"})
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spa_kiosk_sessions_active",
		Help: "Kiosk tokens neither revoked nor expired.",
	}, s.storeCount(func(ctx context.Context, tx persistence.Tx) (int, error) {
		return tx.KioskCountLive(ctx, s.now())
	}))
	for _, c := range []prometheus.Collector{s.checkIns, s.kioskCodes, active} {
		if err := reg.Register(c); err != nil {
			s.log.Warn("kiosk metrics not registered", "err", err)
		}
	}
}

// ---- Administration ----------------------------------------------------------

// Kiosk is a kiosk as an admin sees it: Active when neither revoked nor
// expired at the time of the answer.
type Kiosk struct {
	persistence.Kiosk
	Active bool
}

// KioskIssueInput asks for a kiosk: a label and, optionally, its lifetime.
type KioskIssueInput struct {
	Label      string
	TTLSeconds int64 // 0: the node's default
	// ID names the kiosk: derived from the request's Idempotency-Key, so a
	// retry whose answer was lost cannot issue a second kiosk ("": new).
	ID string
}

// IssueKiosk creates a kiosk and its bearer token, audited kiosk.issue. A
// kiosk token is an access token with role kiosk whose subject and session
// id are the kiosk's id. The answer holds the token, so it is not stored
// for idempotent replay: a retry makes a second kiosk, which the admin can
// revoke.
func (s *Service) IssueKiosk(ctx context.Context, by service.Caller, in KioskIssueInput) (Kiosk, string, error) {
	label, err := CleanLabel("label", in.Label, maxKioskLabel)
	if err != nil {
		return Kiosk{}, "", err
	}
	if label == "" {
		return Kiosk{}, "", fault.Invalid("", fault.FieldError{Field: "label", Message: "required"})
	}
	ttl := s.kioskTTL
	if in.TTLSeconds != 0 {
		if in.TTLSeconds < int64(minKioskTTL.Seconds()) || in.TTLSeconds > int64(maxKioskTTL.Seconds()) {
			return Kiosk{}, "", fault.Invalid("", fault.FieldError{Field: "ttl_seconds",
				Message: fmt.Sprintf("must be %d to %d", int64(minKioskTTL.Seconds()), int64(maxKioskTTL.Seconds()))})
		}
		ttl = time.Duration(in.TTLSeconds) * time.Second
	}
	now := s.now().UTC()
	k := persistence.Kiosk{ID: cmp.Or(in.ID, ulid.Make().String()), Label: label, CreatedBy: by.Subject,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	// The token's sid is the kiosk: every kiosk request checks that row.
	tok, _, err := s.tokens.MintSession(k.ID, auth.RoleKiosk, k.ID, ttl)
	if err != nil {
		return Kiosk{}, "", err
	}
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		if err := tx.KioskCreate(ctx, k); errors.Is(err, persistence.ErrConflict) {
			return fault.Conflict("a kiosk was already issued for this request; its token is not shown again")
		} else if err != nil {
			return err
		}
		return service.Audit(ctx, tx, s.now(), by, "kiosk.issue", "kiosk/"+k.ID, "", map[string]any{"label": label, "expires_at": k.ExpiresAt})
	})
	if err != nil {
		return Kiosk{}, "", err
	}
	return Kiosk{Kiosk: k, Active: k.Live(now)}, tok, nil
}

// Kiosks lists the live kiosks, or with all the revoked and expired ones
// too.
func (s *Service) Kiosks(ctx context.Context, _ service.Caller, all bool) ([]Kiosk, error) {
	now := s.now().UTC()
	var list []persistence.Kiosk
	if err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.KioskList(ctx, now, all, maxKioskList)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Kiosk, len(list))
	for i, k := range list {
		out[i] = Kiosk{Kiosk: k, Active: k.Live(now)}
	}
	return out, nil
}

// RevokeKiosk ends a kiosk at once on every node, in tx: each kiosk
// request reads the kiosk's row (KioskLive), so no event has to travel
// first. Audited kiosk.revoke when it was live.
func (s *Service) RevokeKiosk(ctx context.Context, tx persistence.Tx, by service.Caller, id string) error {
	revoked, err := tx.KioskRevoke(ctx, id, s.now().UTC())
	if err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return fault.NotFound("kiosk not found")
		}
		return err
	}
	if revoked {
		if err := service.Audit(ctx, tx, s.now(), by, "kiosk.revoke", "kiosk/"+id, "", map[string]any{}); err != nil {
			return err
		}
	}
	s.tokens.ForgetSession(id)
	return nil
}

// ---- The kiosk's own use cases -------------------------------------------------

// KioskLive admits a kiosk token only while its kiosk (the token's session
// id) is neither revoked nor expired: a 401 otherwise. Kiosk traffic is a
// few requests a minute per studio, so one indexed read per request buys
// revocation that needs no propagation.
func (s *Service) KioskLive(ctx context.Context, by service.Caller) error {
	var k persistence.Kiosk
	err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		k, err = tx.KioskGet(ctx, by.SessionID)
		return err
	})
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !k.Live(s.now())) {
		return fault.Unauthenticated("this kiosk was revoked or has expired; an admin must issue a new kiosk token")
	}
	return err
}

// KioskRequestCode sends a check-in code to a client's phone through the
// same session actor, limits and answers as a sign-in code, and returns
// its lifetime.
func (s *Service) KioskRequestCode(ctx context.Context, by service.Caller, rawPhone string) (time.Duration, error) {
	if err := s.Ready(); err != nil {
		return 0, err
	}
	num, err := s.parsePhone(rawPhone)
	if err != nil {
		return 0, err
	}
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return 0, err
	}
	if err := allowIP(ctx, s.node.Limiter, by.IP, tooManyRequested); err != nil {
		s.kioskCodes.WithLabelValues("limited").Inc()
		return 0, err
	}
	// A kiosk is a signed-in studio device: it asks no CAPTCHA of the client
	// standing at it.
	res := s.node.Sessions.RequestCode(ctx, s.phoneKey(num), &session.RequestCode{Phone: num.E164,
		Network: otp.NetworkOf(by.IP), Captcha: true})
	if err := otpError(res.Err); err != nil {
		if fe, _ := fault.From(err); fe != nil && fe.Code == fault.CodeRateLimited {
			s.kioskCodes.WithLabelValues("limited").Inc()
		} else {
			s.kioskCodes.WithLabelValues("error").Inc()
			s.log.Warn("kiosk code request failed", "request_id", by.RequestID, "phone", num.Masked(), "err", res.Err)
		}
		return 0, err
	}
	s.kioskCodes.WithLabelValues("sent").Inc()
	return res.ExpiresIn, nil
}

// KioskCheckInInput is a client's phone and the code sent to it.
type KioskCheckInInput struct {
	Phone, Code string
}

// KioskCheckInReady is nil when this node can check clients in (sign-in
// and booking are configured), else the 503 KioskCheckIn answers.
func (s *Service) KioskCheckInReady() error {
	if err := s.Ready(); err != nil {
		return err
	}
	if s.checkIn == nil {
		return fault.Unavailable("booking is not configured on this node")
	}
	return nil
}

// KioskCheckInFailed counts a check-in attempt that failed before it
// reached KioskCheckIn (the node is not ready, the request could not be
// read) and returns err.
func (s *Service) KioskCheckInFailed(err error) error {
	s.checkIns.WithLabelValues(kioskError).Inc()
	return err
}

// KioskCheckIn proves the client holds the phone (the code), then checks
// in each of their confirmed appointments of today (the studio's day)
// through Deps.CheckIn, as the staff check-in does. No confirmed
// appointment today is 404, given only after the code proved the phone;
// when every one was refused, the last refusal is the answer.
func (s *Service) KioskCheckIn(ctx context.Context, by service.Caller, in KioskCheckInInput) ([]persistence.Appointment, error) {
	outcome := kioskError
	defer func() { s.checkIns.WithLabelValues(outcome).Inc() }()
	if err := s.KioskCheckInReady(); err != nil {
		return nil, err
	}
	num, err := s.parsePhone(in.Phone)
	if err != nil {
		return nil, err
	}
	if err := checkLoginCode(in.Code); err != nil {
		return nil, err
	}
	if err := s.refuseBlockedPhone(ctx, num); err != nil {
		return nil, err
	}
	if err := allowIP(ctx, s.node.VerifyLimiter, by.IP, tooManyChecked); err != nil {
		outcome = kioskLocked
		return nil, err
	}
	if err := s.verifyCode(ctx, by, num, in.Code, true, "kiosk code check failed"); err != nil {
		var w *Wait
		switch fe, _ := fault.From(err); {
		case errors.As(err, &w):
			outcome = kioskLocked
		case fe.Code == fault.CodeInvalidCode:
			outcome = kioskInvalidCode
		}
		return nil, err
	}

	now := s.now().UTC()
	var todays []persistence.Appointment
	err = s.store.InTx(ctx, func(tx persistence.Tx) error {
		u, err := tx.UserGetByPhoneIndex(ctx, s.node.Index.Sum(pii.FieldPhone, num.E164))
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
		return nil, err
	}
	if len(todays) == 0 {
		outcome = kioskNoAppointment
		return nil, fault.NotFound("no confirmed appointment today for this number")
	}
	var done []persistence.Appointment
	var refusal error
	for _, ap := range todays {
		checked, err := s.checkIn(ctx, ap, "kiosk/"+by.Subject)
		var r *Refused
		switch {
		case errors.As(err, &r):
			// Too early or too late for this one; another may be open.
			refusal = r.Err
			continue
		case err != nil:
			return nil, err
		}
		done = append(done, checked)
	}
	if len(done) == 0 {
		outcome = kioskRefused
		return nil, refusal
	}
	outcome = kioskCheckedIn
	return done, nil
}

// studioDay is [start, end) of today in the studio's time zone, as UTC
// instants (a DST day is 23 or 25 hours long).
func studioDay(ctx context.Context, tx persistence.Tx, now time.Time) (time.Time, time.Time, error) {
	zone := DefaultTimeZone
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
