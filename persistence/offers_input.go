package persistence

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence/money"
)

// Input checks, rules and encodings of the offers context (waitlist,
// packages, vouchers), shared by the drivers so that they hold only SQL and
// row mapping. The Normalize functions return the value as the store keeps
// it (times canonical, lists sorted and unique), or an error wrapping
// ErrInvalid. Package service lists are stored as EncodeStrings JSON.

// Valid reports whether s is one of the defined statuses.
func (s WaitlistStatus) Valid() bool {
	switch s {
	case WaitlistWaiting, WaitlistOffered, WaitlistFulfilled, WaitlistCancelled, WaitlistExpired:
		return true
	}
	return false
}

// Open reports whether s is waiting or offered, the statuses a client can
// still be served in.
func (s WaitlistStatus) Open() bool { return s == WaitlistWaiting || s == WaitlistOffered }

// OpenWaitlistStatuses returns the statuses WaitlistListByClient returns
// when closed entries are not wanted: those for which Open is true.
func OpenWaitlistStatuses() []WaitlistStatus {
	return []WaitlistStatus{WaitlistWaiting, WaitlistOffered}
}

// Contains reports whether the entry's window contains [start, end).
func (e WaitlistEntry) Contains(start, end time.Time) bool {
	return !start.Before(e.From) && !end.After(e.To)
}

// Overlaps reports whether the windows of e and o overlap (From < o.To and
// To > o.From); windows that only touch do not.
func (e WaitlistEntry) Overlaps(o WaitlistEntry) bool {
	return e.From.Before(o.To) && e.To.After(o.From)
}

// normalizeWaitlist checks everything but the version and the status
// allowed on insert.
func normalizeWaitlist(e WaitlistEntry) (WaitlistEntry, error) {
	for _, c := range [][2]string{{"waitlist entry", e.ID}, {"client", e.ClientID}, {"service", e.ServiceID}} {
		if err := checkID(c[0], c[1]); err != nil {
			return e, err
		}
	}
	e.From, e.To = CanonicalTime(e.From), CanonicalTime(e.To)
	e.CreatedAt, e.UpdatedAt = CanonicalTime(e.CreatedAt), CanonicalTime(e.UpdatedAt)
	if e.From.IsZero() || !e.To.After(e.From) {
		return e, invalidf("waitlist entry %s: window end %v is not after its start %v", e.ID, e.To, e.From)
	}
	if !e.Status.Valid() {
		return e, invalidf("unknown waitlist status %q", e.Status)
	}
	if e.Status == WaitlistOffered && e.OfferedAppointmentID == "" {
		return e, invalidf("waitlist entry %s is offered without an appointment", e.ID)
	}
	if e.Status == WaitlistWaiting && e.OfferedAppointmentID != "" {
		return e, invalidf("waitlist entry %s is waiting but names offered appointment %s", e.ID, e.OfferedAppointmentID)
	}
	return e, nil
}

// NormalizeWaitlistEntry checks e for WaitlistAdd and returns it as stored,
// at Version 1: ID, ClientID and ServiceID non-empty (StaffID may be empty),
// a window with To after From, Status waiting and no OfferedAppointmentID.
// The Version given is ignored.
func NormalizeWaitlistEntry(e WaitlistEntry) (WaitlistEntry, error) {
	e, err := normalizeWaitlist(e)
	if err != nil {
		return e, err
	}
	if e.Status != WaitlistWaiting {
		return e, invalidf("waitlist entry %s added as %s, not waiting", e.ID, e.Status)
	}
	e.Version = 1
	return e, nil
}

// NormalizeWaitlistUpdate checks e for WaitlistUpdate as
// NormalizeWaitlistEntry does, but allows every status (an offered one
// needs an OfferedAppointmentID) and keeps e.Version, which must be at
// least 1.
func NormalizeWaitlistUpdate(e WaitlistEntry) (WaitlistEntry, error) {
	e, err := normalizeWaitlist(e)
	if err == nil && e.Version < 1 {
		err = invalidf("waitlist entry %s: update from version %d", e.ID, e.Version)
	}
	return e, err
}

// WaitlistMissing is the error WaitlistUpdate returns when id is not
// stored.
func WaitlistMissing(id string) error {
	return fmt.Errorf("persistence: waitlist entry %q: %w", id, ErrNotFound)
}

// WaitlistDuplicate is the error WaitlistAdd and WaitlistUpdate return
// when e would be a second waiting entry of its client for the same
// service and staff with an overlapping window: otherID, already waiting.
func WaitlistDuplicate(e WaitlistEntry, otherID string) error {
	return fmt.Errorf("persistence: client %q already waits for service %q (staff %q) in an overlapping window (entry %s): %w",
		e.ClientID, e.ServiceID, e.StaffID, otherID, ErrConflict)
}

// NormalizeWaitlistMatch checks m for WaitlistMatch: a StaffID, End after
// Start, non-empty service IDs (sorted and unique on return, nil when
// empty) and a limit in 1..MaxWaitlistMatchLimit.
func NormalizeWaitlistMatch(m WaitlistMatch) (WaitlistMatch, error) {
	if err := checkID("staff", m.StaffID); err != nil {
		return m, err
	}
	m.Start, m.End = CanonicalTime(m.Start), CanonicalTime(m.End)
	if m.Start.IsZero() || !m.End.After(m.Start) {
		return m, invalidf("waitlist match: slot end %v is not after its start %v", m.End, m.Start)
	}
	if err := CheckLimit("waitlist match", m.Limit, MaxWaitlistMatchLimit); err != nil {
		return m, err
	}
	ids, err := sortedSet(m.ServiceIDs, "empty service ID in list")
	m.ServiceIDs = ids
	return m, err
}

// CheckClientID refuses an empty client ID.
func CheckClientID(id string) error { return checkID("client", id) }

// CheckWaitlistExpire checks WaitlistExpire's arguments and returns now
// canonical.
func CheckWaitlistExpire(now time.Time, limit int) (time.Time, error) {
	if now.IsZero() {
		return now, invalidf("waitlist expiry without a current time")
	}
	return CanonicalTime(now), CheckLimit("waitlist expire", limit, 0)
}

// ---- Packages ----

// Covers reports whether a session of p can pay for the service.
func (p Package) Covers(serviceID string) bool {
	_, ok := slices.BinarySearch(p.ServiceIDs, serviceID)
	return ok
}

// Active reports whether p can be redeemed at now: not expired (ExpiresAt
// not before now) and with a session left.
func (p Package) Active(now time.Time) bool {
	return !p.ExpiresAt.Before(now) && p.SessionsUsed < p.SessionsTotal
}

// InForce reports whether the redemption still holds its session.
func (r PackageRedemption) InForce() bool { return r.ReleasedAt.IsZero() }

// NormalizePackage checks p for PackageGrant and returns it as stored, at
// Version 1: ID and ClientID non-empty, at least one service (sorted and
// unique on return), SessionsTotal at least 1, SessionsUsed 0 and an
// ExpiresAt. The Version given is ignored.
func NormalizePackage(p Package) (Package, error) {
	if err := checkID("package", p.ID); err != nil {
		return p, err
	}
	if err := checkID("client", p.ClientID); err != nil {
		return p, err
	}
	ids, err := sortedSet(p.ServiceIDs, "empty service ID in list")
	if err != nil {
		return p, err
	}
	if len(ids) == 0 {
		return p, invalidf("package %s covers no service", p.ID)
	}
	if p.SessionsTotal < 1 {
		return p, invalidf("package %s: %d sessions, want at least 1", p.ID, p.SessionsTotal)
	}
	if p.SessionsUsed != 0 {
		return p, invalidf("package %s granted with %d sessions used, want 0", p.ID, p.SessionsUsed)
	}
	if p.ExpiresAt.IsZero() {
		return p, invalidf("package %s has no expiry", p.ID)
	}
	p.ServiceIDs, p.Version = ids, 1
	p.ExpiresAt, p.CreatedAt, p.UpdatedAt = CanonicalTime(p.ExpiresAt), CanonicalTime(p.CreatedAt), CanonicalTime(p.UpdatedAt)
	return p, nil
}

// CheckPackageListQuery checks PackageListByClient's arguments and returns
// now canonical.
func CheckPackageListQuery(clientID string, now time.Time, activeOnly bool) (time.Time, error) {
	if err := CheckClientID(clientID); err != nil {
		return now, err
	}
	if activeOnly && now.IsZero() {
		return now, invalidf("active packages of client %s without a current time", clientID)
	}
	return CanonicalTime(now), nil
}

// NormalizePackageRedeem checks r for PackageRedeem: every ID non-empty
// and an At.
func NormalizePackageRedeem(r PackageRedeem) (PackageRedeem, error) {
	for _, c := range [][2]string{{"redemption", r.ID}, {"package", r.PackageID},
		{"appointment", r.AppointmentID}, {"service", r.ServiceID}, {"client", r.ClientID}} {
		if err := checkID(c[0], c[1]); err != nil {
			return r, err
		}
	}
	if r.At.IsZero() {
		return r, invalidf("redemption %s has no time", r.ID)
	}
	r.At = CanonicalTime(r.At)
	return r, nil
}

// CheckPackageRedeem is PackageRedeem's verdict on the stored package p,
// already known to be r.ClientID's: nil, or an error wrapping ErrRefused
// and ErrServiceNotCovered, ErrPackageExpired or ErrPackageExhausted,
// checked in that order.
func CheckPackageRedeem(p Package, r PackageRedeem) error {
	switch {
	case !p.Covers(r.ServiceID):
		return fmt.Errorf("persistence: package %q does not cover service %q: %w", p.ID, r.ServiceID, ErrServiceNotCovered)
	case p.ExpiresAt.Before(r.At):
		return fmt.Errorf("persistence: package %q expired at %v, before %v: %w", p.ID, p.ExpiresAt, r.At, ErrPackageExpired)
	case p.SessionsUsed >= p.SessionsTotal:
		return PackageExhausted(p)
	}
	return nil
}

// PackageExhausted is the error PackageRedeem returns when every session
// of p is in use.
func PackageExhausted(p Package) error {
	return fmt.Errorf("persistence: package %q has used all %d sessions: %w", p.ID, p.SessionsTotal, ErrPackageExhausted)
}

// PackageMissing is the error PackageRedeem returns when the package does
// not exist or belongs to another client.
func PackageMissing(packageID, clientID string) error {
	return fmt.Errorf("persistence: client %q has no package %q: %w", clientID, packageID, ErrNotFound)
}

// PackageRedeemedElsewhere is the error PackageRedeem returns when the
// appointment's redemption in force spends a package of another client.
func PackageRedeemedElsewhere(r PackageRedeem, existing PackageRedemption) error {
	return fmt.Errorf("persistence: appointment %q already redeems package %q of another client: %w",
		r.AppointmentID, existing.PackageID, ErrConflict)
}

// CheckAppointmentUndo checks the arguments of PackageRelease and
// VoucherReverse and returns at canonical.
func CheckAppointmentUndo(appointmentID string, at time.Time) (time.Time, error) {
	if err := checkID("appointment", appointmentID); err != nil {
		return at, err
	}
	if at.IsZero() {
		return at, invalidf("undoing appointment %s without a time", appointmentID)
	}
	return CanonicalTime(at), nil
}

// NothingToUndo is the error PackageRelease and VoucherReverse return when
// the appointment never had a redemption or debit (what: "redemption",
// "voucher debit").
func NothingToUndo(what, appointmentID string) error {
	return fmt.Errorf("persistence: appointment %q has no %s: %w", appointmentID, what, ErrNotFound)
}

// ---- Vouchers ----

// NormalizeVoucherCode is a voucher code as it is hashed: surrounding
// white space trimmed, upper case, so that " abc-123 " and "ABC-123" are
// the same code.
func NormalizeVoucherCode(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}

// HashVoucherCode is what the store keeps of a code: the SHA-256 of
// NormalizeVoucherCode(code), as 64 lower-case hex digits.
func HashVoucherCode(code string) string {
	sum := sha256.Sum256([]byte(NormalizeVoucherCode(code)))
	return hex.EncodeToString(sum[:])
}

// CheckVoucherCode refuses a code that is empty once normalised and returns
// its hash.
func CheckVoucherCode(code string) (string, error) {
	if NormalizeVoucherCode(code) == "" {
		return "", invalidf("empty voucher code")
	}
	return HashVoucherCode(code), nil
}

// isCodeHash reports whether h looks like HashVoucherCode's output.
func isCodeHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for _, c := range h {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// NormalizeVoucher checks v for VoucherIssue and returns it as stored, at
// Version 1: an ID, a CodeHash shaped like HashVoucherCode's output, a
// positive balance and an ExpiresAt. The Version given is ignored.
func NormalizeVoucher(v Voucher) (Voucher, error) {
	if err := checkID("voucher", v.ID); err != nil {
		return v, err
	}
	if !isCodeHash(v.CodeHash) {
		return v, invalidf("voucher %s: code hash is not 64 lower-case hex digits (use HashVoucherCode)", v.ID)
	}
	if v.BalanceMinor < 1 || v.BalanceMinor > money.Max {
		return v, invalidf("voucher %s: balance %d is not from 1 to 10^12", v.ID, v.BalanceMinor)
	}
	if v.ExpiresAt.IsZero() {
		return v, invalidf("voucher %s has no expiry", v.ID)
	}
	v.ExpiresAt, v.CreatedAt, v.UpdatedAt = CanonicalTime(v.ExpiresAt), CanonicalTime(v.CreatedAt), CanonicalTime(v.UpdatedAt)
	v.Version = 1
	return v, nil
}

// NormalizeVoucherDebit checks p for VoucherDebit: IDs, a non-empty code, a
// positive amount and an At. It returns p canonical and the code's hash.
func NormalizeVoucherDebit(p VoucherDebitParams) (VoucherDebitParams, string, error) {
	for _, c := range [][2]string{{"voucher debit", p.ID}, {"client", p.ClientID}, {"appointment", p.AppointmentID}} {
		if err := checkID(c[0], c[1]); err != nil {
			return p, "", err
		}
	}
	hash, err := CheckVoucherCode(p.Code)
	if err != nil {
		return p, "", err
	}
	if p.AmountMinor < 1 || p.AmountMinor > money.Max {
		return p, "", invalidf("voucher debit %s: amount %d is not from 1 to 10^12", p.ID, p.AmountMinor)
	}
	if p.At.IsZero() {
		return p, "", invalidf("voucher debit %s has no time", p.ID)
	}
	p.At = CanonicalTime(p.At)
	return p, hash, nil
}

// VoucherUsable reports whether v, found by code, may pay for clientID's
// appointment at at: not expired (ExpiresAt not before at) and a bearer
// voucher or bound to clientID.
func VoucherUsable(v Voucher, clientID string, at time.Time) bool {
	return !v.ExpiresAt.Before(at) && (v.ClientID == "" || v.ClientID == clientID)
}

// VoucherMissing is the error VoucherGetByCode and VoucherDebit return when
// no usable voucher has the code. It says no more, so that callers cannot
// learn whether an expired or someone else's code exists.
func VoucherMissing() error {
	return fmt.Errorf("persistence: no usable voucher with that code: %w", ErrNotFound)
}

// CheckVoucherDebit is VoucherDebit's verdict on the stored, usable voucher
// v: nil, or an error wrapping ErrRefused and ErrInsufficientBalance.
func CheckVoucherDebit(v Voucher, p VoucherDebitParams) error {
	if v.BalanceMinor < p.AmountMinor {
		return InsufficientBalance(v, p.AmountMinor)
	}
	return nil
}

// InsufficientBalance is the error VoucherDebit returns when the balance
// of v is below amount.
func InsufficientBalance(v Voucher, amount int64) error {
	return fmt.Errorf("persistence: voucher %q has %d, less than %d: %w", v.ID, v.BalanceMinor, amount, ErrInsufficientBalance)
}

// InForce reports whether the debit still holds its amount.
func (d VoucherDebit) InForce() bool { return d.ReversedAt.IsZero() }
