package booking

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/money"
)

// The waitlist, packages and vouchers. Packages and vouchers are granted
// by an admin (buying them comes with payments); a booking can spend a
// package session, and a voucher can pay towards an appointment. Both are
// given back when the appointment is cancelled within the cancellation
// policy or its hold lapses.

// offerError maps refusals of packages and vouchers.
func offerError(err error) error {
	switch {
	case errors.Is(err, persistence.ErrPackageExhausted):
		return fault.New(fault.CodePackageExhausted, "")
	case errors.Is(err, persistence.ErrInsufficientBalance):
		return fault.New(fault.CodeInsufficientBalance, "")
	case errors.Is(err, persistence.ErrVoucherAlreadyApplied):
		return fault.New(fault.CodeVoucherAlreadyApplied, "")
	case errors.Is(err, persistence.ErrPackageExpired), errors.Is(err, persistence.ErrServiceNotCovered):
		return fault.New(fault.CodeNotRedeemable, err.Error())
	}
	return err
}

// onBehalf resolves whom a request is for: the caller, or, for staff, the
// client they name.
func onBehalf(by service.Caller, clientID string) (string, error) {
	switch {
	case clientID == "" || clientID == by.Subject:
		return by.Subject, nil
	case !IsStaff(by):
		return "", fault.Forbidden("clients act for themselves; leave client_id out")
	case !ValidClientID(clientID):
		return "", fault.Invalid("", fault.FieldError{Field: "client_id", Message: clientIDMessage})
	}
	return clientID, nil
}

// ---- Waitlist ------------------------------------------------------------------

// WaitlistInput asks to wait for a service in [From, To), optionally with
// one staff member; staff may name the client.
type WaitlistInput struct {
	ServiceID, StaffID string
	From, To           time.Time
	ClientID           string
}

// maxWaitWindow bounds how far a waitlist window may stretch.
const maxWaitWindow = 90 * 24 * time.Hour

// JoinWaitlist adds the caller (or the client staff name) to the waitlist,
// in tx. The node's follow-up consumer offers freed slots to the first
// matching entry. A second entry for the same service in an overlapping
// window is a 409 conflict.
func (s *Service) JoinWaitlist(ctx context.Context, tx persistence.Tx, by service.Caller, in WaitlistInput) (persistence.WaitlistEntry, error) {
	if err := signedIn(by); err != nil {
		return persistence.WaitlistEntry{}, err
	}
	client, err := onBehalf(by, in.ClientID)
	if err != nil {
		return persistence.WaitlistEntry{}, err
	}
	var f fieldErrors
	now := s.now().UTC()
	if in.From.IsZero() || in.To.IsZero() || !in.To.After(in.From) || in.To.Sub(in.From) > maxWaitWindow {
		f.add("to", "from and to are RFC 3339 instants, to after from, at most 90 days apart")
	} else if !in.To.After(now) {
		f.add("to", "the window has already passed")
	}
	if in.StaffID != "" && !IsSlug(in.StaffID) {
		f.add("staff_id", "must be a staff id")
	}
	if err := f.err(); err != nil {
		return persistence.WaitlistEntry{}, err
	}
	// Inside a write transaction: read through tx, never the catalogue
	// cache (which would open a second transaction).
	if sv, err := tx.ServiceGet(ctx, in.ServiceID); err != nil || !sv.Active {
		return persistence.WaitlistEntry{}, fault.Invalid("", fault.FieldError{Field: "service_id", Message: "no such active service"})
	}
	if in.StaffID != "" {
		if m, err := tx.StaffGet(ctx, in.StaffID); err != nil || !m.Active {
			return persistence.WaitlistEntry{}, fault.Invalid("", fault.FieldError{Field: "staff_id", Message: "no such active staff member"})
		}
	}
	e := persistence.WaitlistEntry{ID: ulid.Make().String(), ClientID: client, ServiceID: in.ServiceID, StaffID: in.StaffID,
		From: in.From.UTC(), To: in.To.UTC(), Status: persistence.WaitlistWaiting, CreatedAt: now, UpdatedAt: now}
	if err := tx.WaitlistAdd(ctx, e); err != nil {
		if errors.Is(err, persistence.ErrConflict) {
			return persistence.WaitlistEntry{}, fault.Conflict("you are already waiting for this service in an overlapping window")
		}
		return persistence.WaitlistEntry{}, err
	}
	e.Version = 1
	return e, nil
}

// Waitlist lists the caller's entries: the open ones, or with
// includeClosed all of them.
func (s *Service) Waitlist(ctx context.Context, by service.Caller, includeClosed bool) (list []persistence.WaitlistEntry, err error) {
	if err := signedIn(by); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.WaitlistListByClient(ctx, by.Subject, includeClosed)
		return err
	})
	return list, err
}

// LeaveWaitlist closes an open entry of the caller's (staff: anyone's), in
// tx. Someone else's entry is a 404; a closed one invalid_transition.
func (s *Service) LeaveWaitlist(ctx context.Context, tx persistence.Tx, by service.Caller, id string) (persistence.WaitlistEntry, error) {
	if err := signedIn(by); err != nil {
		return persistence.WaitlistEntry{}, err
	}
	e, err := tx.WaitlistGet(ctx, id)
	if err == nil && !IsStaff(by) && e.ClientID != by.Subject {
		err = persistence.ErrNotFound // someone else's entry does not exist for you
	}
	if err != nil {
		return persistence.WaitlistEntry{}, fault.IfNotFound(err, "waitlist entry")
	}
	if e.Status != persistence.WaitlistWaiting && e.Status != persistence.WaitlistOffered {
		return persistence.WaitlistEntry{}, fault.New(fault.CodeInvalidTransition, "the entry is already closed")
	}
	e.Status, e.UpdatedAt = persistence.WaitlistCancelled, s.now().UTC()
	return tx.WaitlistUpdate(ctx, e)
}

// ---- Packages ------------------------------------------------------------------

// PackageInput grants a client Sessions sessions of some services until
// ExpiresAt.
type PackageInput struct {
	ClientID   string
	Name       string
	ServiceIDs []string
	Sessions   int
	ExpiresAt  time.Time
}

// PackageJSON is a package as the API shows it, and what the package.grant
// audit entry records, so the two cannot drift.
type PackageJSON struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id"`
	Name          string    `json:"name"`
	ServiceIDs    []string  `json:"service_ids"`
	SessionsTotal int       `json:"sessions_total"`
	SessionsUsed  int       `json:"sessions_used"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// PackageView is p's JSON form.
func PackageView(p persistence.Package) PackageJSON {
	return PackageJSON{ID: p.ID, ClientID: p.ClientID, Name: p.Name, ServiceIDs: append([]string{}, p.ServiceIDs...),
		SessionsTotal: p.SessionsTotal, SessionsUsed: p.SessionsUsed, ExpiresAt: p.ExpiresAt.UTC()}
}

// GrantPackage grants a package (admins only), in tx, audited
// package.grant.
func (s *Service) GrantPackage(ctx context.Context, tx persistence.Tx, by service.Caller, in PackageInput) (persistence.Package, error) {
	if err := adminOnly(by); err != nil {
		return persistence.Package{}, err
	}
	var f fieldErrors
	now := s.now().UTC()
	if !ValidClientID(in.ClientID) {
		f.add("client_id", "is required")
	}
	name := f.text("name", in.Name, 1, 120)
	services := slices.Clone(in.ServiceIDs)
	slices.Sort(services)
	services = slices.Compact(services)
	if len(services) == 0 || len(services) > 20 || slices.ContainsFunc(services, func(id string) bool { return !IsSlug(id) }) {
		f.add("service_ids", "1 to 20 service ids")
	}
	if in.Sessions < 1 || in.Sessions > 1000 {
		f.add("sessions", "must be 1 to 1000")
	}
	if !in.ExpiresAt.After(now) {
		f.add("expires_at", "must be in the future")
	}
	if err := f.err(); err != nil {
		return persistence.Package{}, err
	}
	for _, id := range services {
		if _, err := tx.ServiceGet(ctx, id); errors.Is(err, persistence.ErrNotFound) {
			return persistence.Package{}, fault.Invalid("", fault.FieldError{Field: "service_ids", Message: "no such service: " + id})
		} else if err != nil {
			return persistence.Package{}, err
		}
	}
	p := persistence.Package{ID: ulid.Make().String(), ClientID: in.ClientID, Name: name, ServiceIDs: services,
		SessionsTotal: in.Sessions, ExpiresAt: in.ExpiresAt.UTC(), CreatedAt: now, UpdatedAt: now}
	if err := tx.PackageGrant(ctx, p); err != nil {
		return persistence.Package{}, err
	}
	if err := service.Audit(ctx, tx, s.now(), by, "package.grant", "package/"+p.ID, "", PackageView(p)); err != nil {
		return persistence.Package{}, err
	}
	return p, nil
}

// Packages lists the caller's packages: the usable ones, or with all the
// expired and used-up ones too.
func (s *Service) Packages(ctx context.Context, by service.Caller, all bool) (list []persistence.Package, err error) {
	if err := signedIn(by); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		list, err = tx.PackageListByClient(ctx, by.Subject, s.now(), !all)
		return err
	})
	return list, err
}

// redeemPackage spends a session of packageID on a new hold. If the
// package refuses, the hold is cancelled again so the slot is not lost to
// a booking nobody pays for.
func (s *Service) redeemPackage(ctx context.Context, packageID string, ap persistence.Appointment) error {
	err := s.store.InTx(ctx, func(tx persistence.Tx) error {
		// Only a live appointment spends a session. One already cancelled
		// or lapsed has given back what it spent in the transaction that
		// ended it (or, were it to end after this commits, gives this
		// back then: both read and write the same rows, serializably). A
		// retried hold answered with its old, since cancelled, appointment
		// must not spend a session on it again.
		cur, err := tx.AppointmentGet(ctx, ap.ID)
		if err != nil {
			return err
		}
		if cur.Status != persistence.StatusHeld && cur.Status != persistence.StatusConfirmed {
			return nil
		}
		_, err = tx.PackageRedeem(ctx, persistence.PackageRedeem{ID: ulid.Make().String(), PackageID: packageID,
			AppointmentID: ap.ID, ServiceID: ap.ServiceID, ClientID: ap.ClientID, At: s.now().UTC()})
		return err
	})
	if err == nil {
		return nil
	}
	if _, cerr := calendarReply(s.calendars.Cancel(ctx, ap.StaffID, &schedule.Cancel{AppointmentID: ap.ID, ActorID: "system",
		Reason: "package not redeemable", Override: true})); cerr != nil {
		s.log.Warn("could not release a hold whose package was refused", "appointment", ap.ID, "err", cerr)
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return fault.Invalid("", fault.FieldError{Field: "package_id", Message: "no such package of yours"})
	}
	return offerError(err)
}

// ---- Vouchers ------------------------------------------------------------------

// VoucherInput issues a voucher with a balance (COP minor units) until
// ExpiresAt, for one client or (ClientID empty) for its bearer.
type VoucherInput struct {
	ClientID     string
	BalanceMinor int64
	ExpiresAt    time.Time
}

// VoucherJSON is a voucher as the API shows it. Code is set only in the
// answer that issues it; VoucherView leaves it empty, which is what the
// voucher.issue audit entry records: never the code.
type VoucherJSON struct {
	ID           string    `json:"id"`
	Code         string    `json:"code,omitempty"` // only when issued
	ClientID     string    `json:"client_id"`
	BalanceMinor int64     `json:"balance_minor"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// VoucherView is v's JSON form, without a code.
func VoucherView(v persistence.Voucher) VoucherJSON {
	return VoucherJSON{ID: v.ID, ClientID: v.ClientID, BalanceMinor: v.BalanceMinor, ExpiresAt: v.ExpiresAt.UTC()}
}

// voucherAlphabet avoids look-alike characters (0/O, 1/I/L).
const voucherAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// NewVoucherCode is SPA-XXXX-XXXX-XXXX from a CSPRNG (about 60 bits).
func NewVoucherCode() string {
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

// IssueVoucher issues a voucher (admins only), in tx, audited
// voucher.issue, and returns it with its code. Only the code's hash is
// stored: the code exists in this answer only, and the caller must not
// keep it anywhere a replay could show it.
func (s *Service) IssueVoucher(ctx context.Context, tx persistence.Tx, by service.Caller, in VoucherInput) (persistence.Voucher, string, error) {
	if err := adminOnly(by); err != nil {
		return persistence.Voucher{}, "", err
	}
	var f fieldErrors
	now := s.now().UTC()
	if in.ClientID != "" && !ValidClientID(in.ClientID) {
		f.add("client_id", "must be a client id, or left out for a bearer voucher")
	}
	if in.BalanceMinor < 1 || in.BalanceMinor > money.Max {
		f.add("balance_minor", fmt.Sprintf("must be from 1 to %d (COP minor units)", money.Max))
	}
	if !in.ExpiresAt.After(now) {
		f.add("expires_at", "must be in the future")
	}
	if err := f.err(); err != nil {
		return persistence.Voucher{}, "", err
	}
	code := NewVoucherCode()
	v := persistence.Voucher{ID: ulid.Make().String(), CodeHash: persistence.HashVoucherCode(code), ClientID: in.ClientID,
		BalanceMinor: in.BalanceMinor, ExpiresAt: in.ExpiresAt.UTC(), CreatedAt: now, UpdatedAt: now}
	if err := tx.VoucherIssue(ctx, v); err != nil {
		return persistence.Voucher{}, "", err
	}
	if err := service.Audit(ctx, tx, s.now(), by, "voucher.issue", "voucher/"+v.ID, "", VoucherView(v)); err != nil {
		return persistence.Voucher{}, "", err
	}
	return v, code, nil
}

// noVoucher is the one answer for a code that does not exist, expired, or
// is someone else's.
func noVoucher() error { return fault.NotFound("no such voucher, or it expired") }

// VoucherBalance reads the voucher with this code: a bearer voucher, one
// of the caller's, or any for staff.
func (s *Service) VoucherBalance(ctx context.Context, by service.Caller, code string) (persistence.Voucher, error) {
	if err := signedIn(by); err != nil {
		return persistence.Voucher{}, err
	}
	var v persistence.Voucher
	err := s.store.InTx(ctx, func(tx persistence.Tx) (err error) {
		v, err = tx.VoucherGetByCode(ctx, code, s.now())
		return err
	})
	if err == nil && v.ClientID != "" && v.ClientID != by.Subject && !IsStaff(by) {
		err = persistence.ErrNotFound
	}
	if errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrInvalid) {
		return persistence.Voucher{}, noVoucher()
	}
	if err != nil {
		return persistence.Voucher{}, err
	}
	return v, nil
}

// VoucherPayInput pays AmountMinor of the voucher with Code towards an
// appointment.
type VoucherPayInput struct {
	Code        string
	AmountMinor int64
}

// PayWithVoucher debits a voucher towards an appointment the caller loaded
// in tx (LoadIn: its owner or the front desk), at most the appointment's
// price, while it is held or confirmed. Paying the same appointment again
// answers the same debit.
func (s *Service) PayWithVoucher(ctx context.Context, tx persistence.Tx, by service.Caller, a Appointment, in VoucherPayInput) (persistence.VoucherDebit, error) {
	if err := a.ofCaller(by); err != nil {
		return persistence.VoucherDebit{}, err
	}
	ap := a.Appointment
	if in.AmountMinor < 1 || in.AmountMinor > ap.PriceMinor {
		return persistence.VoucherDebit{}, fault.Invalid("", fault.FieldError{Field: "amount_minor", Message: "must be positive and at most the price"})
	}
	if ap.Status != persistence.StatusHeld && ap.Status != persistence.StatusConfirmed {
		return persistence.VoucherDebit{}, fault.New(fault.CodeInvalidTransition, "only a held or confirmed appointment can be paid")
	}
	d, err := tx.VoucherDebit(ctx, persistence.VoucherDebitParams{ID: ulid.Make().String(), Code: in.Code,
		ClientID: ap.ClientID, AppointmentID: ap.ID, AmountMinor: in.AmountMinor, At: s.now().UTC()})
	if errors.Is(err, persistence.ErrNotFound) || errors.Is(err, persistence.ErrInvalid) {
		return persistence.VoucherDebit{}, noVoucher()
	}
	if err != nil {
		return persistence.VoucherDebit{}, offerError(err)
	}
	return d, nil
}
