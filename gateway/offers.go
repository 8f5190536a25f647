package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway/idempotency"
	"github.com/spa-engine/spa/persistence"
)

// The waitlist, packages and vouchers API. Packages and vouchers are
// granted by an admin here (buying them comes with payments); a booking
// can spend a package session, and a voucher can pay towards an
// appointment. Both are given back when the appointment is cancelled
// within the cancellation policy or its hold lapses.

// offerError maps refusals of packages and vouchers.
func offerError(err error) error {
	switch {
	case errors.Is(err, persistence.ErrPackageExhausted):
		return fault.New(fault.CodePackageExhausted, "")
	case errors.Is(err, persistence.ErrInsufficientBalance):
		return fault.New(fault.CodeInsufficientBalance, "")
	case errors.Is(err, persistence.ErrPackageExpired), errors.Is(err, persistence.ErrServiceNotCovered):
		return fault.New(fault.CodeNotRedeemable, err.Error())
	}
	return err
}

// onBehalf resolves whom a request is for: the caller, or, for staff, the
// client_id they name.
func onBehalf(c *fiber.Ctx, clientID string) (string, error) {
	p, _ := Principal(c)
	switch {
	case clientID == "" || clientID == p.Subject:
		return p.Subject, nil
	case !isStaff(c):
		return "", fault.Forbidden("clients act for themselves; leave client_id out")
	case !clientRE.MatchString(clientID):
		return "", fault.Invalid("", fault.FieldError{Field: "client_id", Message: "must be 1 to 64 of A-Z, a-z, 0-9, +, ., _, : and -"})
	}
	return clientID, nil
}

// ---- Waitlist ------------------------------------------------------------------

type waitlistJSON struct {
	ID                   string    `json:"id"`
	ClientID             string    `json:"client_id"`
	ServiceID            string    `json:"service_id"`
	StaffID              string    `json:"staff_id"`
	From                 time.Time `json:"from"`
	To                   time.Time `json:"to"`
	Status               string    `json:"status"`
	OfferedAppointmentID string    `json:"offered_appointment_id"`
	CreatedAt            time.Time `json:"created_at"`
}

func waitlistView(e persistence.WaitlistEntry) waitlistJSON {
	return waitlistJSON{ID: e.ID, ClientID: e.ClientID, ServiceID: e.ServiceID, StaffID: e.StaffID,
		From: e.From.UTC(), To: e.To.UTC(), Status: string(e.Status), OfferedAppointmentID: e.OfferedAppointmentID, CreatedAt: e.CreatedAt.UTC()}
}

type waitlistInput struct {
	ServiceID string    `json:"service_id"`
	StaffID   string    `json:"staff_id"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	ClientID  string    `json:"client_id"`
}

// maxWaitWindow bounds how far a waitlist window may stretch.
const maxWaitWindow = 90 * 24 * time.Hour

func (s *server) joinWaitlist(c *fiber.Ctx, tx persistence.Tx) error {
	var in waitlistInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	client, err := onBehalf(c, in.ClientID)
	if err != nil {
		return err
	}
	var f fieldErrors
	now := s.deps.Now().UTC()
	if in.From.IsZero() || in.To.IsZero() || !in.To.After(in.From) || in.To.Sub(in.From) > maxWaitWindow {
		f.add("to", "from and to are RFC 3339 instants, to after from, at most 90 days apart")
	} else if !in.To.After(now) {
		f.add("to", "the window has already passed")
	}
	if in.StaffID != "" && !slugRE.MatchString(in.StaffID) {
		f.add("staff_id", "must be a staff id")
	}
	if err := f.err(); err != nil {
		return err
	}
	// Inside a write transaction: read through tx, never the cache (which
	// would open a second transaction).
	ctx := c.UserContext()
	if sv, err := tx.ServiceGet(ctx, in.ServiceID); err != nil || !sv.Active {
		return fault.Invalid("", fault.FieldError{Field: "service_id", Message: "no such active service"})
	}
	if in.StaffID != "" {
		if m, err := tx.StaffGet(ctx, in.StaffID); err != nil || !m.Active {
			return fault.Invalid("", fault.FieldError{Field: "staff_id", Message: "no such active staff member"})
		}
	}
	e := persistence.WaitlistEntry{ID: ulid.Make().String(), ClientID: client, ServiceID: in.ServiceID, StaffID: in.StaffID,
		From: in.From.UTC(), To: in.To.UTC(), Status: persistence.WaitlistWaiting, CreatedAt: now, UpdatedAt: now}
	if err := tx.WaitlistAdd(ctx, e); err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			return fault.Conflict("you are already waiting for this service in an overlapping window")
		}
		return err
	}
	e.Version = 1
	return c.Status(fiber.StatusCreated).JSON(waitlistView(e))
}

func (s *server) myWaitlist(c *fiber.Ctx) error {
	p, _ := Principal(c)
	var list []persistence.WaitlistEntry
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.WaitlistListByClient(ctx, p.Subject, c.QueryBool("include_closed"))
		return err
	}); err != nil {
		return err
	}
	out := make([]waitlistJSON, len(list))
	for i, e := range list {
		out[i] = waitlistView(e)
	}
	return c.JSON(fiber.Map{"entries": out})
}

func (s *server) leaveWaitlist(c *fiber.Ctx, tx persistence.Tx) error {
	ctx := c.UserContext()
	e, err := tx.WaitlistGet(ctx, c.Params("id"))
	if p, _ := Principal(c); err == nil && !isStaff(c) && e.ClientID != p.Subject {
		err = persistence.ErrNotFound // someone else's entry does not exist for you
	}
	if err != nil {
		return notFound(err, "waitlist entry")
	}
	if e.Status != persistence.WaitlistWaiting && e.Status != persistence.WaitlistOffered {
		return fault.New(fault.CodeInvalidTransition, "the entry is already closed")
	}
	e.Status, e.UpdatedAt = persistence.WaitlistCancelled, s.deps.Now().UTC()
	stored, err := tx.WaitlistUpdate(ctx, e)
	if err != nil {
		return err
	}
	return c.JSON(waitlistView(stored))
}

func all[T any](xs []T, ok func(T) bool) bool {
	for _, x := range xs {
		if !ok(x) {
			return false
		}
	}
	return true
}

// ---- Packages ------------------------------------------------------------------

type packageJSON struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id"`
	Name          string    `json:"name"`
	ServiceIDs    []string  `json:"service_ids"`
	SessionsTotal int       `json:"sessions_total"`
	SessionsUsed  int       `json:"sessions_used"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func packageView(p persistence.Package) packageJSON {
	return packageJSON{ID: p.ID, ClientID: p.ClientID, Name: p.Name, ServiceIDs: append([]string{}, p.ServiceIDs...),
		SessionsTotal: p.SessionsTotal, SessionsUsed: p.SessionsUsed, ExpiresAt: p.ExpiresAt.UTC()}
}

type packageInput struct {
	ClientID   string    `json:"client_id"`
	Name       string    `json:"name"`
	ServiceIDs []string  `json:"service_ids"`
	Sessions   int       `json:"sessions"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func (s *server) grantPackage(c *fiber.Ctx, tx persistence.Tx) error {
	var in packageInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	now := s.deps.Now().UTC()
	if !clientRE.MatchString(in.ClientID) {
		f.add("client_id", "is required")
	}
	name := f.text("name", in.Name, 1, 120)
	services := slices.Clone(in.ServiceIDs)
	slices.Sort(services)
	services = slices.Compact(services)
	if len(services) == 0 || len(services) > 20 || !all(services, slugRE.MatchString) {
		f.add("service_ids", "1 to 20 service ids")
	}
	if in.Sessions < 1 || in.Sessions > 1000 {
		f.add("sessions", "must be 1 to 1000")
	}
	if !in.ExpiresAt.After(now) {
		f.add("expires_at", "must be in the future")
	}
	if err := f.err(); err != nil {
		return err
	}
	ctx := c.UserContext()
	for _, id := range services {
		if _, err := tx.ServiceGet(ctx, id); errors.Is(err, persistence.ErrNotFound) {
			return fault.Invalid("", fault.FieldError{Field: "service_ids", Message: "no such service: " + id})
		} else if err != nil {
			return err
		}
	}
	p := persistence.Package{ID: ulid.Make().String(), ClientID: in.ClientID, Name: name, ServiceIDs: services,
		SessionsTotal: in.Sessions, ExpiresAt: in.ExpiresAt.UTC(), CreatedAt: now, UpdatedAt: now}
	if err := tx.PackageGrant(ctx, p); err != nil {
		return err
	}
	view := packageView(p)
	if err := s.audit(c, tx, "package.grant", "package/"+p.ID, view); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(view)
}

func (s *server) myPackages(c *fiber.Ctx) error {
	p, _ := Principal(c)
	var list []persistence.Package
	if err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		list, err = tx.PackageListByClient(ctx, p.Subject, s.deps.Now(), !c.QueryBool("all"))
		return err
	}); err != nil {
		return err
	}
	out := make([]packageJSON, len(list))
	for i, pk := range list {
		out[i] = packageView(pk)
	}
	return c.JSON(fiber.Map{"packages": out})
}

// redeemPackage spends a session of packageID on a new hold. If the
// package refuses, the hold is cancelled again so the slot is not lost to
// a booking nobody pays for.
func (s *server) redeemPackage(ctx context.Context, packageID string, ap persistence.Appointment) error {
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		_, err := tx.PackageRedeem(ctx, persistence.PackageRedeem{ID: ulid.Make().String(), PackageID: packageID,
			AppointmentID: ap.ID, ServiceID: ap.ServiceID, ClientID: ap.ClientID, At: s.deps.Now().UTC()})
		return err
	})
	if err == nil {
		return nil
	}
	if _, cerr := calendarReply(s.deps.Calendars.Cancel(ctx, ap.StaffID, &schedule.Cancel{AppointmentID: ap.ID, ActorID: "system",
		Reason: "package not redeemable", Override: true})); cerr != nil {
		s.log.Warn("could not release a hold whose package was refused", "appointment", ap.ID, "err", cerr)
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return fault.Invalid("", fault.FieldError{Field: "package_id", Message: "no such package of yours"})
	}
	return offerError(err)
}

// releaseCredits gives back a cancelled appointment's package session and
// voucher debits when it was cancelled within the cancellation policy.
func (s *server) releaseCredits(ctx context.Context, ap persistence.Appointment, sv persistence.Service) {
	now := s.deps.Now()
	if sv.CancelCutoff > 0 && ap.Start.Sub(now) < sv.CancelCutoff {
		return // late cancellation: the session and the payment are kept
	}
	err := s.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		return persistence.ReleaseCredits(ctx, tx, ap.ID, now)
	})
	if err != nil {
		s.log.Error("could not give back credits of a cancelled appointment", "appointment", ap.ID, "err", err)
	}
}

// ---- Vouchers ------------------------------------------------------------------

type voucherInput struct {
	ClientID     string    `json:"client_id"`
	BalanceMinor int64     `json:"balance_minor"`
	ExpiresAt    time.Time `json:"expires_at"`
}

type voucherJSON struct {
	ID           string    `json:"id"`
	Code         string    `json:"code,omitempty"` // only when issued
	ClientID     string    `json:"client_id"`
	BalanceMinor int64     `json:"balance_minor"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// voucherAlphabet avoids look-alike characters (0/O, 1/I/L).
const voucherAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// newVoucherCode is SPA-XXXX-XXXX-XXXX from a CSPRNG (about 60 bits).
func newVoucherCode() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	var sb strings.Builder
	sb.WriteString("SPA")
	for i, x := range b {
		if i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(voucherAlphabet[int(x)%len(voucherAlphabet)])
	}
	return sb.String()
}

func (s *server) issueVoucher(c *fiber.Ctx, tx persistence.Tx) error {
	var in voucherInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var f fieldErrors
	now := s.deps.Now().UTC()
	if in.ClientID != "" && !clientRE.MatchString(in.ClientID) {
		f.add("client_id", "must be a client id, or left out for a bearer voucher")
	}
	if in.BalanceMinor < 1 {
		f.add("balance_minor", "must be positive (COP minor units)")
	}
	if !in.ExpiresAt.After(now) {
		f.add("expires_at", "must be in the future")
	}
	if err := f.err(); err != nil {
		return err
	}
	code := newVoucherCode()
	v := persistence.Voucher{ID: ulid.Make().String(), CodeHash: persistence.HashVoucherCode(code), ClientID: in.ClientID,
		BalanceMinor: in.BalanceMinor, ExpiresAt: in.ExpiresAt.UTC(), CreatedAt: now, UpdatedAt: now}
	if err := tx.VoucherIssue(c.UserContext(), v); err != nil {
		return err
	}
	view := voucherJSON{ID: v.ID, ClientID: v.ClientID, BalanceMinor: v.BalanceMinor, ExpiresAt: v.ExpiresAt}
	if err := s.audit(c, tx, "voucher.issue", "voucher/"+v.ID, view); err != nil { // never the code
		return err
	}
	// The code is shown in this response only: a replay of the request
	// answers without it (the idempotency record keeps no secrets).
	withoutCode := view
	idempotency.Redact(c, func([]byte) []byte {
		b, _ := json.Marshal(withoutCode)
		return b
	})
	view.Code = code
	return c.Status(fiber.StatusCreated).JSON(view)
}

type codeInput struct {
	Code string `json:"code"`
}

// voucherBalance answers POST /v1/vouchers/balance {code}: the code goes in
// the body, never in a URL that proxies log.
func (s *server) voucherBalance(c *fiber.Ctx) error {
	var in codeInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	p, _ := Principal(c)
	var v persistence.Voucher
	err := s.read(c, func(ctx context.Context, tx persistence.Tx) (err error) {
		v, err = tx.VoucherGetByCode(ctx, in.Code, s.deps.Now())
		return err
	})
	if err == nil && v.ClientID != "" && v.ClientID != p.Subject && !isStaff(c) {
		err = persistence.ErrNotFound
	}
	if errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrInvalid) {
		return fault.NotFound("no such voucher, or it expired")
	}
	if err != nil {
		return err
	}
	return c.JSON(voucherJSON{ID: v.ID, ClientID: v.ClientID, BalanceMinor: v.BalanceMinor, ExpiresAt: v.ExpiresAt.UTC()})
}

type voucherPayInput struct {
	Code        string `json:"code"`
	AmountMinor int64  `json:"amount_minor"`
}

// payWithVoucher debits a voucher towards an appointment (its owner or the
// front desk), at most the appointment's price.
func (s *server) payWithVoucher(c *fiber.Ctx, tx persistence.Tx) error {
	ap, _, err := s.appointmentIn(c, tx)
	if err != nil {
		return err
	}
	var in voucherPayInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.AmountMinor < 1 || in.AmountMinor > ap.PriceMinor {
		return fault.Invalid("", fault.FieldError{Field: "amount_minor", Message: "must be positive and at most the price"})
	}
	if ap.Status != persistence.StatusHeld && ap.Status != persistence.StatusConfirmed {
		return fault.New(fault.CodeInvalidTransition, "only a held or confirmed appointment can be paid")
	}
	d, err := tx.VoucherDebit(c.UserContext(), persistence.VoucherDebitParams{ID: ulid.Make().String(), Code: in.Code,
		ClientID: ap.ClientID, AppointmentID: ap.ID, AmountMinor: in.AmountMinor, At: s.deps.Now().UTC()})
	if errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrInvalid) {
		return fault.NotFound("no such voucher, or it expired")
	}
	if err != nil {
		return offerError(err)
	}
	return c.JSON(fiber.Map{"debit_id": d.ID, "appointment_id": ap.ID, "amount_minor": d.AmountMinor})
}
