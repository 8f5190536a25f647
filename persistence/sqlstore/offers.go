package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Offers: waitlist, packages and vouchers. The rules are evaluated by
// package persistence on rows read in the same transaction (SERIALIZABLE
// on PostgreSQL, BEGIN IMMEDIATE holding the write lock on SQLite); the
// guarded UPDATEs and partial unique indexes are a second line.

// waiting is the waiting status as an SQL literal, so that the planner can
// use the partial indexes on status = 'waiting'.
const waiting = `'` + string(persistence.WaitlistWaiting) + `'`

// ---- Waitlist ----

const waitlistColumns = `id, client_id, service_id, staff_id, from_at, to_at, status,
	offered_appointment_id, version, created_at, updated_at`

func (t *txn) scanWaitlist(r row) (persistence.WaitlistEntry, error) {
	var e persistence.WaitlistEntry
	var status string
	err := r.Scan(&e.ID, &e.ClientID, &e.ServiceID, &e.StaffID, t.at(&e.From), t.at(&e.To), &status,
		&e.OfferedAppointmentID, &e.Version, t.at(&e.CreatedAt), t.at(&e.UpdatedAt))
	e.Status = persistence.WaitlistStatus(status)
	return e, err
}

// waitlistDuplicate returns WaitlistDuplicate if e is waiting and another
// waiting entry of its client, service and staff overlaps its window.
func (t *txn) waitlistDuplicate(ctx context.Context, e persistence.WaitlistEntry) error {
	if e.Status != persistence.WaitlistWaiting {
		return nil
	}
	var other string
	err := t.queryRow(ctx, `SELECT id FROM waitlist_entries
		WHERE client_id = ? AND service_id = ? AND staff_id = ? AND status = `+waiting+`
		AND from_at < ? AND to_at > ? AND id <> ? LIMIT 1`,
		e.ClientID, e.ServiceID, e.StaffID, t.ts(e.To), t.ts(e.From), e.ID).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return t.mapErr(err)
	}
	return persistence.WaitlistDuplicate(e, other)
}

func (t *txn) WaitlistAdd(ctx context.Context, e persistence.WaitlistEntry) error {
	e, err := persistence.NormalizeWaitlistEntry(e)
	if err != nil {
		return err
	}
	if err := t.waitlistDuplicate(ctx, e); err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO waitlist_entries (`+waitlistColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.ClientID, e.ServiceID, e.StaffID, t.ts(e.From), t.ts(e.To), string(e.Status),
		e.OfferedAppointmentID, e.Version, t.ts(e.CreatedAt), t.ts(e.UpdatedAt))
	return err
}

func (t *txn) WaitlistGet(ctx context.Context, id string) (persistence.WaitlistEntry, error) {
	e, err := t.scanWaitlist(t.queryRow(ctx, `SELECT `+waitlistColumns+` FROM waitlist_entries WHERE id = ?`, id))
	if err != nil {
		return persistence.WaitlistEntry{}, t.mapErr(err)
	}
	return e, nil
}

func (t *txn) WaitlistUpdate(ctx context.Context, e persistence.WaitlistEntry) (persistence.WaitlistEntry, error) {
	e, err := persistence.NormalizeWaitlistUpdate(e)
	if err != nil {
		return persistence.WaitlistEntry{}, err
	}
	var stored int64
	switch err := t.queryRow(ctx, `SELECT version FROM waitlist_entries WHERE id = ?`, e.ID).Scan(&stored); {
	case errors.Is(err, sql.ErrNoRows):
		return persistence.WaitlistEntry{}, persistence.WaitlistMissing(e.ID)
	case err != nil:
		return persistence.WaitlistEntry{}, t.mapErr(err)
	case stored != e.Version:
		return persistence.WaitlistEntry{}, persistence.VersionConflict("waitlist entry", e.ID, e.Version)
	}
	if err := t.waitlistDuplicate(ctx, e); err != nil {
		return persistence.WaitlistEntry{}, err
	}
	err = t.queryRow(ctx, `UPDATE waitlist_entries SET client_id = ?, service_id = ?, staff_id = ?,
		from_at = ?, to_at = ?, status = ?, offered_appointment_id = ?, updated_at = ?,
		version = version + 1 WHERE id = ? AND version = ? RETURNING created_at`,
		e.ClientID, e.ServiceID, e.StaffID, t.ts(e.From), t.ts(e.To), string(e.Status),
		e.OfferedAppointmentID, t.ts(e.UpdatedAt), e.ID, e.Version).Scan(t.at(&e.CreatedAt))
	if errors.Is(err, sql.ErrNoRows) {
		return persistence.WaitlistEntry{}, persistence.VersionConflict("waitlist entry", e.ID, e.Version)
	}
	if err != nil {
		return persistence.WaitlistEntry{}, t.mapErr(err)
	}
	e.Version++
	return e, nil
}

func (t *txn) WaitlistMatch(ctx context.Context, m persistence.WaitlistMatch) ([]persistence.WaitlistEntry, error) {
	m, err := persistence.NormalizeWaitlistMatch(m)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + waitlistColumns + ` FROM waitlist_entries WHERE status = ` + waiting + `
		AND (staff_id = ? OR staff_id = '') AND from_at <= ? AND to_at >= ?`
	args := []any{m.StaffID, t.ts(m.Start), t.ts(m.End)}
	if len(m.ServiceIDs) > 0 {
		var in string
		in, args = t.in("service_id", m.ServiceIDs, args)
		q += ` AND ` + in
	}
	return queryList(ctx, t, t.scanWaitlist, q+` ORDER BY created_at, id LIMIT ?`, append(args, m.Limit)...)
}

func (t *txn) WaitlistListByClient(ctx context.Context, clientID string, includeClosed bool) ([]persistence.WaitlistEntry, error) {
	if err := persistence.CheckClientID(clientID); err != nil {
		return nil, err
	}
	var open []string
	for _, s := range persistence.OpenWaitlistStatuses() {
		open = append(open, string(s))
	}
	in, args := t.in("status", open, []any{clientID, includeClosed})
	return queryList(ctx, t, t.scanWaitlist, `SELECT `+waitlistColumns+` FROM waitlist_entries
		WHERE client_id = ? AND (? OR `+in+`) ORDER BY created_at, id`, args...)
}

func (t *txn) WaitlistExpire(ctx context.Context, now time.Time, limit int) (int, error) {
	now, err := persistence.CheckWaitlistExpire(now, limit)
	if err != nil {
		return 0, err
	}
	us := t.ts(now)
	return t.exec(ctx, `UPDATE waitlist_entries SET status = ?, updated_at = ?, version = version + 1
		WHERE id IN (SELECT id FROM waitlist_entries WHERE status = `+waiting+` AND to_at < ?
			ORDER BY to_at, id LIMIT ?)`,
		string(persistence.WaitlistExpired), us, us, limit)
}

// ---- Packages ----

const packageColumns = `id, client_id, name, service_ids, sessions_total, sessions_used, expires_at,
	version, created_at, updated_at`

func (t *txn) scanPackage(r row) (persistence.Package, error) {
	var p persistence.Package
	var services string
	if err := r.Scan(&p.ID, &p.ClientID, &p.Name, &services, &p.SessionsTotal, &p.SessionsUsed, t.at(&p.ExpiresAt),
		&p.Version, t.at(&p.CreatedAt), t.at(&p.UpdatedAt)); err != nil {
		return p, err
	}
	var err error
	p.ServiceIDs, err = persistence.DecodeStrings(services)
	return p, err
}

const redemptionColumns = `id, package_id, appointment_id, at, released_at`

func (t *txn) scanRedemption(r row) (persistence.PackageRedemption, error) {
	var red persistence.PackageRedemption
	err := r.Scan(&red.ID, &red.PackageID, &red.AppointmentID, t.at(&red.At), t.at(&red.ReleasedAt))
	return red, err
}

func (t *txn) PackageGrant(ctx context.Context, p persistence.Package) error {
	p, err := persistence.NormalizePackage(p)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO packages (`+packageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.ClientID, p.Name, persistence.EncodeStrings(p.ServiceIDs), p.SessionsTotal, p.SessionsUsed,
		t.ts(p.ExpiresAt), p.Version, t.ts(p.CreatedAt), t.ts(p.UpdatedAt))
	return err
}

func (t *txn) PackageGet(ctx context.Context, id string) (persistence.Package, error) {
	p, err := t.scanPackage(t.queryRow(ctx, `SELECT `+packageColumns+` FROM packages WHERE id = ?`, id))
	if err != nil {
		return persistence.Package{}, t.mapErr(err)
	}
	return p, nil
}

func (t *txn) PackageListByClient(ctx context.Context, clientID string, now time.Time, activeOnly bool) ([]persistence.Package, error) {
	now, err := persistence.CheckPackageListQuery(clientID, now, activeOnly)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanPackage, `SELECT `+packageColumns+` FROM packages
		WHERE client_id = ? AND (NOT ? OR (expires_at >= ? AND sessions_used < sessions_total))
		ORDER BY expires_at, id`, clientID, activeOnly, t.ts(now))
}

func (t *txn) PackageRedeem(ctx context.Context, r persistence.PackageRedeem) (persistence.PackageRedemption, error) {
	r, err := persistence.NormalizePackageRedeem(r)
	if err != nil {
		return persistence.PackageRedemption{}, err
	}
	// The appointment's redemption in force, if any, answers a retry.
	var existing persistence.PackageRedemption
	var owner string
	err = t.queryRow(ctx, `SELECT r.id, r.package_id, r.appointment_id, r.at, p.client_id
		FROM package_redemptions r JOIN packages p ON p.id = r.package_id
		WHERE r.appointment_id = ? AND r.released_at IS NULL`, r.AppointmentID).
		Scan(&existing.ID, &existing.PackageID, &existing.AppointmentID, t.at(&existing.At), &owner)
	switch {
	case err == nil && owner == r.ClientID:
		return existing, nil
	case err == nil:
		return persistence.PackageRedemption{}, persistence.PackageRedeemedElsewhere(r, existing)
	case !errors.Is(err, sql.ErrNoRows):
		return persistence.PackageRedemption{}, t.mapErr(err)
	}
	p, err := t.scanPackage(t.queryRow(ctx, `SELECT `+packageColumns+` FROM packages
		WHERE id = ? AND client_id = ?`, r.PackageID, r.ClientID))
	if errors.Is(err, sql.ErrNoRows) {
		return persistence.PackageRedemption{}, persistence.PackageMissing(r.PackageID, r.ClientID)
	}
	if err != nil {
		return persistence.PackageRedemption{}, t.mapErr(err)
	}
	if err := persistence.CheckPackageRedeem(p, r); err != nil {
		return persistence.PackageRedemption{}, err
	}
	if _, err := t.exec(ctx, `INSERT INTO package_redemptions (id, package_id, appointment_id, at)
		VALUES (?, ?, ?, ?)`, r.ID, r.PackageID, r.AppointmentID, t.ts(r.At)); err != nil {
		return persistence.PackageRedemption{}, err
	}
	n, err := t.exec(ctx, `UPDATE packages SET sessions_used = sessions_used + 1, updated_at = ?,
		version = version + 1 WHERE id = ? AND sessions_used < sessions_total`, t.ts(r.At), r.PackageID)
	if err != nil {
		return persistence.PackageRedemption{}, err
	}
	if n == 0 { // unreachable: the check read the same row in this transaction
		return persistence.PackageRedemption{}, persistence.PackageExhausted(p)
	}
	return persistence.PackageRedemption{ID: r.ID, PackageID: r.PackageID, AppointmentID: r.AppointmentID, At: r.At}, nil
}

func (t *txn) PackageRelease(ctx context.Context, appointmentID string, at time.Time) error {
	at, err := persistence.CheckAppointmentUndo(appointmentID, at)
	if err != nil {
		return err
	}
	var id, packageID string
	err = t.queryRow(ctx, `SELECT id, package_id FROM package_redemptions
		WHERE appointment_id = ? AND released_at IS NULL`, appointmentID).Scan(&id, &packageID)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		switch err := t.queryRow(ctx, `SELECT 1 FROM package_redemptions WHERE appointment_id = ? LIMIT 1`,
			appointmentID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return persistence.NothingToUndo("redemption", appointmentID)
		default:
			return t.mapErr(err) // nil: released already
		}
	}
	if err != nil {
		return t.mapErr(err)
	}
	us := t.ts(at)
	if _, err := t.exec(ctx, `UPDATE package_redemptions SET released_at = ? WHERE id = ?`, us, id); err != nil {
		return err
	}
	_, err = t.exec(ctx, `UPDATE packages SET sessions_used = sessions_used - 1, updated_at = ?,
		version = version + 1 WHERE id = ?`, us, packageID)
	return err
}

func (t *txn) AppointmentCredits(ctx context.Context, appointmentID string) (persistence.AppointmentCredits, error) {
	var c persistence.AppointmentCredits
	var one int
	switch err := t.queryRow(ctx, `SELECT 1 FROM package_redemptions WHERE appointment_id = ? AND released_at IS NULL LIMIT 1`,
		appointmentID).Scan(&one); {
	case err == nil:
		c.PackageSession = true
	case !errors.Is(err, sql.ErrNoRows):
		return c, t.mapErr(err)
	}
	var err error
	c.VoucherDebits, err = queryList(ctx, t, t.scanDebit, `SELECT `+debitColumns+` FROM voucher_debits
		WHERE appointment_id = ? AND reversed_at IS NULL ORDER BY id`, appointmentID)
	return c, err
}

func (t *txn) PackageRedemptionList(ctx context.Context, packageID string) ([]persistence.PackageRedemption, error) {
	return queryList(ctx, t, t.scanRedemption, `SELECT `+redemptionColumns+` FROM package_redemptions
		WHERE package_id = ? ORDER BY at, id`, packageID)
}

// ---- Vouchers ----

const voucherColumns = `id, code_hash, client_id, balance_minor, expires_at, version, created_at, updated_at`

func (t *txn) scanVoucher(r row) (persistence.Voucher, error) {
	var v persistence.Voucher
	err := r.Scan(&v.ID, &v.CodeHash, &v.ClientID, &v.BalanceMinor, t.at(&v.ExpiresAt), &v.Version, t.at(&v.CreatedAt), t.at(&v.UpdatedAt))
	return v, err
}

const debitColumns = `id, voucher_id, appointment_id, amount_minor, at, reversed_at`

func (t *txn) scanDebit(r row) (persistence.VoucherDebit, error) {
	var d persistence.VoucherDebit
	err := r.Scan(&d.ID, &d.VoucherID, &d.AppointmentID, &d.AmountMinor, t.at(&d.At), t.at(&d.ReversedAt))
	return d, err
}

func (t *txn) VoucherIssue(ctx context.Context, v persistence.Voucher) error {
	v, err := persistence.NormalizeVoucher(v)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO vouchers (`+voucherColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.CodeHash, v.ClientID, v.BalanceMinor, t.ts(v.ExpiresAt), v.Version,
		t.ts(v.CreatedAt), t.ts(v.UpdatedAt))
	return err
}

// voucherByHash returns the voucher with the code hash, or VoucherMissing.
func (t *txn) voucherByHash(ctx context.Context, hash string) (persistence.Voucher, error) {
	v, err := t.scanVoucher(t.queryRow(ctx, `SELECT `+voucherColumns+` FROM vouchers WHERE code_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return v, persistence.VoucherMissing()
	}
	return v, t.mapErr(err)
}

func (t *txn) VoucherGetByCode(ctx context.Context, code string, now time.Time) (persistence.Voucher, error) {
	hash, err := persistence.CheckVoucherCode(code)
	if err != nil {
		return persistence.Voucher{}, err
	}
	v, err := t.voucherByHash(ctx, hash)
	if err != nil {
		return persistence.Voucher{}, err
	}
	if v.ExpiresAt.Before(persistence.CanonicalTime(now)) {
		return persistence.Voucher{}, persistence.VoucherMissing()
	}
	return v, nil
}

func (t *txn) VoucherDebit(ctx context.Context, p persistence.VoucherDebitParams) (persistence.VoucherDebit, error) {
	p, hash, err := persistence.NormalizeVoucherDebit(p)
	if err != nil {
		return persistence.VoucherDebit{}, err
	}
	v, err := t.voucherByHash(ctx, hash)
	if err != nil {
		return persistence.VoucherDebit{}, err
	}
	if !persistence.VoucherUsable(v, p.ClientID, p.At) {
		return persistence.VoucherDebit{}, persistence.VoucherMissing()
	}
	existing, err := t.scanDebit(t.queryRow(ctx, `SELECT `+debitColumns+` FROM voucher_debits
		WHERE voucher_id = ? AND appointment_id = ? AND reversed_at IS NULL`, v.ID, p.AppointmentID))
	switch {
	case err == nil && existing.AmountMinor != p.AmountMinor:
		return persistence.VoucherDebit{}, persistence.ErrVoucherAlreadyApplied
	case err == nil:
		return existing, nil
	case !errors.Is(err, sql.ErrNoRows):
		return persistence.VoucherDebit{}, t.mapErr(err)
	}
	if err := persistence.CheckVoucherDebit(v, p); err != nil {
		return persistence.VoucherDebit{}, err
	}
	if _, err := t.exec(ctx, `INSERT INTO voucher_debits (id, voucher_id, appointment_id, amount_minor, at)
		VALUES (?, ?, ?, ?, ?)`, p.ID, v.ID, p.AppointmentID, p.AmountMinor, t.ts(p.At)); err != nil {
		return persistence.VoucherDebit{}, err
	}
	n, err := t.exec(ctx, `UPDATE vouchers SET balance_minor = balance_minor - ?, updated_at = ?,
		version = version + 1 WHERE id = ? AND balance_minor >= ?`, p.AmountMinor, t.ts(p.At), v.ID, p.AmountMinor)
	if err != nil {
		return persistence.VoucherDebit{}, err
	}
	if n == 0 { // unreachable: the check read the same row in this transaction
		return persistence.VoucherDebit{}, persistence.InsufficientBalance(v, p.AmountMinor)
	}
	return persistence.VoucherDebit{ID: p.ID, VoucherID: v.ID, AppointmentID: p.AppointmentID,
		AmountMinor: p.AmountMinor, At: p.At}, nil
}

func (t *txn) VoucherReverse(ctx context.Context, appointmentID string, at time.Time) ([]persistence.VoucherDebit, error) {
	at, err := persistence.CheckAppointmentUndo(appointmentID, at)
	if err != nil {
		return nil, err
	}
	all, err := queryList(ctx, t, t.scanDebit, `SELECT `+debitColumns+` FROM voucher_debits
		WHERE appointment_id = ? ORDER BY id`, appointmentID)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, persistence.NothingToUndo("voucher debit", appointmentID)
	}
	us := t.ts(at)
	reversed := []persistence.VoucherDebit{}
	for _, d := range all {
		if !d.InForce() {
			continue
		}
		if _, err := t.exec(ctx, `UPDATE voucher_debits SET reversed_at = ? WHERE id = ?`, us, d.ID); err != nil {
			return nil, err
		}
		if _, err := t.exec(ctx, `UPDATE vouchers SET balance_minor = balance_minor + ?, updated_at = ?,
			version = version + 1 WHERE id = ?`, d.AmountMinor, us, d.VoucherID); err != nil {
			return nil, err
		}
		d.ReversedAt = at
		reversed = append(reversed, d)
	}
	return reversed, nil
}

func (t *txn) VoucherDebitList(ctx context.Context, voucherID string) ([]persistence.VoucherDebit, error) {
	return queryList(ctx, t, t.scanDebit, `SELECT `+debitColumns+` FROM voucher_debits
		WHERE voucher_id = ? ORDER BY at, id`, voucherID)
}
