package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Offers: the waitlist, prepaid session packages and vouchers.

// ErrRefused: the input is well formed and the addressed rows exist, but
// their state refuses the operation: a package expired, used up or not
// covering the service, a voucher balance too small. Unlike ErrInvalid it
// depends on what is stored, and some refusals lift when the state changes
// (a released session, a reversed debit). Every refusal wraps ErrRefused
// and one of the specific sentinels below, so callers can map ErrRefused as
// a whole (e.g. to HTTP 422) or single out a cause (e.g. ErrPackageExhausted
// and ErrInsufficientBalance to 409).
var ErrRefused = errors.New("persistence: refused")

// The specific refusals; each wraps ErrRefused.
var (
	// ErrPackageExpired: the package's ExpiresAt is before the redemption.
	ErrPackageExpired = fmt.Errorf("persistence: package expired: %w", ErrRefused)
	// ErrPackageExhausted: every session of the package is in use.
	ErrPackageExhausted = fmt.Errorf("persistence: package has no sessions left: %w", ErrRefused)
	// ErrServiceNotCovered: the package does not include the service.
	ErrServiceNotCovered = fmt.Errorf("persistence: service not covered by the package: %w", ErrRefused)
	// ErrInsufficientBalance: the voucher's balance is below the amount.
	ErrInsufficientBalance = fmt.Errorf("persistence: voucher balance too small: %w", ErrRefused)
	// ErrVoucherAlreadyApplied: the voucher already pays the appointment,
	// with another amount (the same amount is the debit in force, a retry).
	ErrVoucherAlreadyApplied = fmt.Errorf("persistence: voucher already applied to the appointment with another amount: %w", ErrRefused)
)

// ---- Waitlist ----------------------------------------------------------

// WaitlistStatus is a stage of a waitlist entry:
// waiting → offered → fulfilled, offered → waiting (offer declined or
// lapsed), and waiting | offered → cancelled | expired.
type WaitlistStatus string

// Waitlist statuses. Waiting and offered entries are open; the others are
// closed.
const (
	WaitlistWaiting   WaitlistStatus = "waiting"
	WaitlistOffered   WaitlistStatus = "offered"   // OfferedAppointmentID holds the slot offered
	WaitlistFulfilled WaitlistStatus = "fulfilled" // the client booked
	WaitlistCancelled WaitlistStatus = "cancelled"
	WaitlistExpired   WaitlistStatus = "expired" // the window passed while waiting
)

// WaitlistEntry is a client's request to be offered a slot of a service
// that frees up within a window.
type WaitlistEntry struct {
	ID        string // ULID, assigned by the caller
	ClientID  string
	ServiceID string
	StaffID   string // "" for any staff member
	// From and To bound the window the client can come, [From, To): a slot
	// [Start, End) fits when From <= Start and End <= To.
	From, To time.Time
	Status   WaitlistStatus
	// OfferedAppointmentID is the appointment (typically a hold) offered to
	// the client; set while offered, empty while waiting, kept afterwards.
	OfferedAppointmentID string
	CreatedAt            time.Time // orders the queue: first come, first offered
	UpdatedAt            time.Time
	Version              int64
}

// WaitlistMatch selects the waiting entries a freed slot can serve.
type WaitlistMatch struct {
	ServiceIDs []string // services the slot can host; empty for any service
	StaffID    string   // the slot's staff member (required); entries for it or for any staff match
	Start, End time.Time
	Limit      int // 1..MaxWaitlistMatchLimit
}

// MaxWaitlistMatchLimit is the largest WaitlistMatch.Limit accepted.
const MaxWaitlistMatchLimit = 1000

// ---- Packages ----------------------------------------------------------

// Package is a number of prepaid sessions of some services, granted to one
// client, usable until it expires.
type Package struct {
	ID            string // ULID, assigned by the caller
	ClientID      string
	Name          string
	ServiceIDs    []string // the services a session can pay for; sorted, unique, at least one
	SessionsTotal int      // at least 1
	SessionsUsed  int      // redemptions in force; 0 when granted
	ExpiresAt     time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Version       int64 // incremented by every redemption and release
}

// PackageRedemption is one session of a package spent on an appointment.
type PackageRedemption struct {
	ID            string // ULID, assigned by the caller
	PackageID     string
	AppointmentID string
	At            time.Time
	ReleasedAt    time.Time // zero while in force
}

// PackageRedeem asks to spend one session of a package on an appointment.
type PackageRedeem struct {
	ID            string // the new redemption's ULID
	PackageID     string
	AppointmentID string
	ServiceID     string // the appointment's service; the package must cover it
	ClientID      string // the appointment's client; the package must be theirs
	At            time.Time
}

// ---- Vouchers ----------------------------------------------------------

// Voucher is a prepaid balance in COP minor units, redeemed by presenting
// its code. Only the code's hash is stored (see HashVoucherCode): the plain
// code is shown once, when issued, by the caller.
type Voucher struct {
	ID           string // ULID, assigned by the caller
	CodeHash     string // HashVoucherCode of the code: 64 lower-case hex digits
	ClientID     string // "" for a bearer voucher anyone may use
	BalanceMinor int64  // COP minor units
	ExpiresAt    time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64 // incremented by every debit and reversal
}

// VoucherDebit is an amount taken from a voucher to pay for an appointment.
type VoucherDebit struct {
	ID            string // ULID, assigned by the caller
	VoucherID     string
	AppointmentID string
	AmountMinor   int64
	At            time.Time
	ReversedAt    time.Time // zero while in force
}

// AppointmentCredits is what packages and vouchers pay of one
// appointment (OffersStore.AppointmentCredits).
type AppointmentCredits struct {
	PackageSession bool           // a package session in force pays the whole service
	VoucherDebits  []VoucherDebit // debits in force
}

// VoucherDebitParams asks to debit a voucher, named by its code, for an
// appointment.
type VoucherDebitParams struct {
	ID            string // the new debit's ULID
	Code          string // the plain code, as the client typed it
	ClientID      string // the appointment's client; a voucher bound to another client is not found
	AppointmentID string
	AmountMinor   int64 // > 0
	At            time.Time
}

// OffersStore keeps the waitlist, packages and vouchers.
//
// Input checks follow BookingStore: malformed input is refused with an
// error wrapping ErrInvalid before any SQL runs (see the Normalize and Check
// functions of each type), times are stored canonical, lists return an
// empty slice when nothing matches. A state that refuses a well-formed
// request is an error wrapping ErrRefused and a specific sentinel.
//
// Expiry instants are inclusive, as for idempotency records: a package or
// voucher is usable at its ExpiresAt and expired after it.
//
// Appointment IDs are not checked against the appointments table: the
// booking flow that redeems or debits owns the appointment and may do so
// in the transaction that inserts it.
type OffersStore interface {
	// WaitlistAdd stores a new entry at Version 1 with Status waiting
	// (e.Status must be waiting). ErrConflict if its ID exists, or if the
	// client already has a waiting entry for the same service and the same
	// StaffID ("" only matches "") whose window overlaps e's; the check
	// runs in the store, inside the serializable transaction, so two
	// concurrent adds cannot both pass it.
	WaitlistAdd(ctx context.Context, e WaitlistEntry) error
	// WaitlistGet returns the entry or ErrNotFound.
	WaitlistGet(ctx context.Context, id string) (WaitlistEntry, error)
	// WaitlistUpdate replaces the entry if its stored Version is e.Version
	// and returns it with Version incremented; CreatedAt is kept as first
	// stored. ErrNotFound when the ID is not stored, ErrConflict on a
	// version mismatch or when e is waiting and overlaps another waiting
	// entry as in WaitlistAdd, ErrInvalid for e.Version < 1. An offered
	// entry needs an OfferedAppointmentID, a waiting one must have none.
	WaitlistUpdate(ctx context.Context, e WaitlistEntry) (WaitlistEntry, error)
	// WaitlistMatch returns the waiting entries whose window contains
	// [m.Start, m.End), whose StaffID is m.StaffID or "", and whose
	// ServiceID is among m.ServiceIDs (any when empty), oldest first
	// (CreatedAt, ID), at most m.Limit. The first is the client to offer
	// the freed slot to.
	WaitlistMatch(ctx context.Context, m WaitlistMatch) ([]WaitlistEntry, error)
	// WaitlistListByClient returns a client's entries ordered by
	// (CreatedAt, ID): the open ones (waiting, offered), and the closed
	// ones too when includeClosed.
	WaitlistListByClient(ctx context.Context, clientID string, includeClosed bool) ([]WaitlistEntry, error)
	// WaitlistExpire marks up to limit waiting entries whose To is before
	// now as expired (UpdatedAt now, Version incremented), earliest To
	// first, and returns how many it marked. Offered entries are left to
	// the offer's own timeout.
	WaitlistExpire(ctx context.Context, now time.Time, limit int) (int, error)

	// PackageGrant stores a new package at Version 1 with SessionsUsed 0
	// (p.SessionsUsed must be 0); ErrConflict if its ID exists.
	PackageGrant(ctx context.Context, p Package) error
	// PackageGet returns the package or ErrNotFound.
	PackageGet(ctx context.Context, id string) (Package, error)
	// PackageListByClient returns a client's packages ordered by
	// (ExpiresAt, ID), so the one to use first comes first; when
	// activeOnly, only those not expired at now with a session left.
	PackageListByClient(ctx context.Context, clientID string, now time.Time, activeOnly bool) ([]Package, error)
	// PackageRedeem spends one session of r.PackageID on r.AppointmentID:
	// it increments SessionsUsed (UpdatedAt r.At, Version incremented) and
	// records the redemption. An appointment holds at most one redemption
	// in force: when it already has one (of r.ClientID's packages), that
	// redemption is returned unchanged and nothing is written, whatever
	// r.PackageID and r.ID say, so retries are idempotent. Otherwise:
	// ErrNotFound when the package does not exist or is not r.ClientID's;
	// ErrRefused with ErrServiceNotCovered, ErrPackageExpired (ExpiresAt
	// before r.At) or ErrPackageExhausted, checked in that order;
	// ErrConflict when r.ID exists or the appointment's redemption in
	// force belongs to another client's package.
	PackageRedeem(ctx context.Context, r PackageRedeem) (PackageRedemption, error)
	// PackageRelease releases the redemption in force of the appointment
	// (ReleasedAt at) and gives its session back (SessionsUsed
	// decremented, UpdatedAt at, Version incremented), even if the package
	// has expired since. It is idempotent: nil when the appointment's
	// redemptions are all released already; ErrNotFound when it never had
	// one.
	PackageRelease(ctx context.Context, appointmentID string, at time.Time) error
	// PackageRedemptionList returns a package's redemptions, released ones
	// included, ordered by (At, ID).
	PackageRedemptionList(ctx context.Context, packageID string) ([]PackageRedemption, error)
	// AppointmentCredits returns what packages and vouchers pay of an
	// appointment now: whether a package session in force was spent on
	// it, and its voucher debits in force (reversed ones left out),
	// oldest first. Nothing spent is a zero AppointmentCredits, not an
	// error.
	AppointmentCredits(ctx context.Context, appointmentID string) (AppointmentCredits, error)

	// VoucherIssue stores a new voucher at Version 1. v.CodeHash must be
	// HashVoucherCode of the code; the balance must be positive.
	// ErrConflict if its ID or its code hash exists.
	VoucherIssue(ctx context.Context, v Voucher) error
	// VoucherGetByCode returns the voucher whose code is code (normalised
	// and hashed here) if it has not expired at now; ErrNotFound otherwise,
	// so callers cannot tell an expired code from one never issued.
	VoucherGetByCode(ctx context.Context, code string, now time.Time) (Voucher, error)
	// VoucherDebit takes p.AmountMinor from the voucher with code p.Code
	// (BalanceMinor decremented, UpdatedAt p.At, Version incremented) and
	// records the debit. It is idempotent per (voucher, appointment): when
	// the appointment already has a debit in force on this voucher, that
	// debit is returned unchanged (with its own amount) and nothing is
	// written. ErrNotFound when no voucher has the code, it expired before
	// p.At, or it is bound to a client other than p.ClientID;
	// ErrRefused with ErrInsufficientBalance when the balance is below the
	// amount; ErrConflict when p.ID exists. An appointment may be paid from
	// several vouchers, one debit each.
	VoucherDebit(ctx context.Context, p VoucherDebitParams) (VoucherDebit, error)
	// VoucherReverse credits back every debit in force of the appointment
	// (ReversedAt at; the voucher's BalanceMinor incremented, UpdatedAt at,
	// Version incremented), even on vouchers that have expired since, and
	// returns the debits it reversed ordered by ID. It is idempotent: an
	// empty slice when they are all reversed already; ErrNotFound when the
	// appointment never had a debit.
	VoucherReverse(ctx context.Context, appointmentID string, at time.Time) ([]VoucherDebit, error)
	// VoucherDebitList returns a voucher's debits, reversed ones included,
	// ordered by (At, ID).
	VoucherDebitList(ctx context.Context, voucherID string) ([]VoucherDebit, error)
}

// ReleaseCredits gives back, in tx, what an appointment spent: its package
// session, its voucher debits and the client credit spent on its deposit. It is idempotent, and harmless for an
// appointment that spent nothing. Callers decide when it is due: a
// cancellation within the cancellation policy, or a hold that lapsed.
func ReleaseCredits(ctx context.Context, tx Tx, appointmentID string, at time.Time) error {
	if err := tx.PackageRelease(ctx, appointmentID, at); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, err := tx.VoucherReverse(ctx, appointmentID, at); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if _, err := tx.CreditReverse(ctx, AppointmentCreditRef(appointmentID), at); err != nil {
		return err
	}
	return nil
}
