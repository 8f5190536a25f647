package postgres

import (
	"context"
	"errors"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Booking: catalogue, calendars and appointments. Durations are whole
// seconds, lists JSON text (encoded by package persistence).

// rowScanner is a pgx.Row or pgx.CollectableRow.
type rowScanner interface{ Scan(dest ...any) error }

// queryList runs query and maps every row with scan.
func queryList[T any](ctx context.Context, t *txn, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, _ := t.tx.Query(ctx, query, args...)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
	if err != nil {
		return nil, mapErr(err)
	}
	return append([]T{}, out...), nil
}

// ---- Services ----

const serviceColumns = `id, name, category, duration_seconds, price_minor, buffer_before_seconds,
	buffer_after_seconds, required_skills, resource_id, deposit_policy, deposit_value,
	cancel_cutoff_seconds, reschedule_cutoff_seconds, active, version, updated_at`

func scanService(r rowScanner) (persistence.Service, error) {
	var s persistence.Service
	var dur, before, after, cancel, reschedule int64
	var skills, policy string
	var updated time.Time
	if err := r.Scan(&s.ID, &s.Name, &s.Category, &dur, &s.PriceMinor, &before, &after, &skills,
		&s.ResourceID, &policy, &s.DepositValue, &cancel, &reschedule, &s.Active, &s.Version, &updated); err != nil {
		return s, err
	}
	var err error
	s.RequiredSkills, err = persistence.DecodeStrings(skills)
	s.Duration, s.BufferBefore, s.BufferAfter = persistence.FromSeconds(dur), persistence.FromSeconds(before), persistence.FromSeconds(after)
	s.CancelCutoff, s.RescheduleCutoff = persistence.FromSeconds(cancel), persistence.FromSeconds(reschedule)
	s.DepositPolicy, s.UpdatedAt = persistence.DepositPolicy(policy), ts(updated)
	return s, err
}

func (t *txn) ServicePut(ctx context.Context, s persistence.Service) (persistence.Service, error) {
	s, err := persistence.NormalizeService(s)
	if err != nil {
		return persistence.Service{}, err
	}
	args := []any{s.Name, s.Category, persistence.Seconds(s.Duration), s.PriceMinor,
		persistence.Seconds(s.BufferBefore), persistence.Seconds(s.BufferAfter),
		persistence.EncodeStrings(s.RequiredSkills), s.ResourceID, string(s.DepositPolicy), s.DepositValue,
		persistence.Seconds(s.CancelCutoff), persistence.Seconds(s.RescheduleCutoff), s.Active,
		ts(s.UpdatedAt), s.ID}
	var n int
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO services (name, category, duration_seconds, price_minor,
			buffer_before_seconds, buffer_after_seconds, required_skills, resource_id, deposit_policy,
			deposit_value, cancel_cutoff_seconds, reschedule_cutoff_seconds, active, updated_at, id, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE services SET name = $1, category = $2, duration_seconds = $3, price_minor = $4,
			buffer_before_seconds = $5, buffer_after_seconds = $6, required_skills = $7, resource_id = $8,
			deposit_policy = $9, deposit_value = $10, cancel_cutoff_seconds = $11, reschedule_cutoff_seconds = $12,
			active = $13, updated_at = $14, version = version + 1 WHERE id = $15 AND version = $16`,
			append(args, s.Version)...)
	}
	if err != nil {
		return persistence.Service{}, err
	}
	if n == 0 {
		return persistence.Service{}, persistence.VersionConflict("service", s.ID, s.Version)
	}
	s.Version++
	return s, nil
}

func (t *txn) ServiceGet(ctx context.Context, id string) (persistence.Service, error) {
	s, err := scanService(t.tx.QueryRow(ctx, `SELECT `+serviceColumns+` FROM services WHERE id = $1`, id))
	if err != nil {
		return persistence.Service{}, mapErr(err)
	}
	return s, nil
}

func (t *txn) ServiceList(ctx context.Context, activeOnly bool) ([]persistence.Service, error) {
	return queryList(ctx, t, scanService, `SELECT `+serviceColumns+` FROM services
		WHERE active OR NOT $1 ORDER BY id`, activeOnly)
}

// ---- Staff ----

const staffColumns = `id, name, skills, time_zone, weekly, active, version, updated_at`

func scanStaff(r rowScanner) (persistence.StaffMember, error) {
	var s persistence.StaffMember
	var skills, weekly string
	var updated time.Time
	if err := r.Scan(&s.ID, &s.Name, &skills, &s.TimeZone, &weekly, &s.Active, &s.Version, &updated); err != nil {
		return s, err
	}
	var err1, err2 error
	s.Skills, err1 = persistence.DecodeStrings(skills)
	s.Weekly, err2 = persistence.DecodeWeekly(weekly)
	s.UpdatedAt = ts(updated)
	return s, errors.Join(err1, err2)
}

func (t *txn) StaffPut(ctx context.Context, s persistence.StaffMember) (persistence.StaffMember, error) {
	s, err := persistence.NormalizeStaff(s)
	if err != nil {
		return persistence.StaffMember{}, err
	}
	args := []any{s.Name, persistence.EncodeStrings(s.Skills), s.TimeZone, persistence.EncodeWeekly(s.Weekly),
		s.Active, ts(s.UpdatedAt), s.ID}
	var n int
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO staff (name, skills, time_zone, weekly, active, updated_at, id, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE staff SET name = $1, skills = $2, time_zone = $3, weekly = $4, active = $5,
			updated_at = $6, version = version + 1 WHERE id = $7 AND version = $8`, append(args, s.Version)...)
	}
	if err != nil {
		return persistence.StaffMember{}, err
	}
	if n == 0 {
		return persistence.StaffMember{}, persistence.VersionConflict("staff", s.ID, s.Version)
	}
	s.Version++
	return s, nil
}

func (t *txn) StaffGet(ctx context.Context, id string) (persistence.StaffMember, error) {
	s, err := scanStaff(t.tx.QueryRow(ctx, `SELECT `+staffColumns+` FROM staff WHERE id = $1`, id))
	if err != nil {
		return persistence.StaffMember{}, mapErr(err)
	}
	return s, nil
}

func (t *txn) StaffList(ctx context.Context, activeOnly bool) ([]persistence.StaffMember, error) {
	return queryList(ctx, t, scanStaff, `SELECT `+staffColumns+` FROM staff
		WHERE active OR NOT $1 ORDER BY id`, activeOnly)
}

// ---- Date overrides ----

func (t *txn) DateOverridePut(ctx context.Context, o persistence.DateOverride) error {
	o, err := persistence.NormalizeDateOverride(o)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO staff_date_overrides (staff_id, date, closed, ranges) VALUES ($1, $2, $3, $4)
		ON CONFLICT (staff_id, date) DO UPDATE SET closed = excluded.closed, ranges = excluded.ranges`,
		o.StaffID, o.Date, o.Closed, persistence.EncodeRanges(o.Ranges))
	return err
}

func (t *txn) DateOverrideDelete(ctx context.Context, staffID, date string) error {
	n, err := t.exec(ctx, `DELETE FROM staff_date_overrides WHERE staff_id = $1 AND date = $2`, staffID, date)
	if err == nil && n == 0 {
		err = mapErr(pgx.ErrNoRows)
	}
	return err
}

func (t *txn) DateOverrideList(ctx context.Context, staffID, fromDate, toDate string) ([]persistence.DateOverride, error) {
	if err := persistence.CheckDateRange(fromDate, toDate); err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r rowScanner) (persistence.DateOverride, error) {
		var o persistence.DateOverride
		var ranges string
		if err := r.Scan(&o.StaffID, &o.Date, &o.Closed, &ranges); err != nil {
			return o, err
		}
		var err error
		o.Ranges, err = persistence.DecodeRanges(ranges)
		return o, err
	}, `SELECT staff_id, date, closed, ranges FROM staff_date_overrides
		WHERE staff_id = $1 AND date >= $2 AND date < $3 ORDER BY date`, staffID, fromDate, toDate)
}

// ---- Time off ----

func (t *txn) TimeOffAdd(ctx context.Context, o persistence.TimeOff) error {
	o, err := persistence.NormalizeTimeOff(o)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO time_off (id, staff_id, start_at, end_at, reason) VALUES ($1, $2, $3, $4, $5)`,
		o.ID, o.StaffID, ts(o.Start), ts(o.End), o.Reason)
	return err
}

func (t *txn) TimeOffDelete(ctx context.Context, id string) error {
	n, err := t.exec(ctx, `DELETE FROM time_off WHERE id = $1`, id)
	if err == nil && n == 0 {
		err = mapErr(pgx.ErrNoRows)
	}
	return err
}

func (t *txn) TimeOffList(ctx context.Context, staffID string, from, to time.Time) ([]persistence.TimeOff, error) {
	from, to, err := persistence.CheckTimeRange(from, to)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r rowScanner) (persistence.TimeOff, error) {
		var o persistence.TimeOff
		var start, end time.Time
		err := r.Scan(&o.ID, &o.StaffID, &start, &end, &o.Reason)
		o.Start, o.End = ts(start), ts(end)
		return o, err
	}, `SELECT id, staff_id, start_at, end_at, reason FROM time_off
		WHERE staff_id = $1 AND start_at < $2 AND end_at > $3 ORDER BY start_at, id`,
		staffID, ts(to), ts(from))
}

// ---- Resources ----

const resourceColumns = `id, name, capacity, active, version, updated_at`

func scanResource(r rowScanner) (persistence.Resource, error) {
	var res persistence.Resource
	var updated time.Time
	err := r.Scan(&res.ID, &res.Name, &res.Capacity, &res.Active, &res.Version, &updated)
	res.UpdatedAt = ts(updated)
	return res, err
}

func (t *txn) ResourcePut(ctx context.Context, r persistence.Resource) (persistence.Resource, error) {
	r, err := persistence.NormalizeResource(r)
	if err != nil {
		return persistence.Resource{}, err
	}
	args := []any{r.Name, r.Capacity, r.Active, ts(r.UpdatedAt), r.ID}
	var n int
	if r.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO resources (name, capacity, active, updated_at, id, version)
			VALUES ($1, $2, $3, $4, $5, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE resources SET name = $1, capacity = $2, active = $3, updated_at = $4,
			version = version + 1 WHERE id = $5 AND version = $6`, append(args, r.Version)...)
	}
	if err != nil {
		return persistence.Resource{}, err
	}
	if n == 0 {
		return persistence.Resource{}, persistence.VersionConflict("resource", r.ID, r.Version)
	}
	r.Version++
	return r, nil
}

func (t *txn) ResourceGet(ctx context.Context, id string) (persistence.Resource, error) {
	r, err := scanResource(t.tx.QueryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE id = $1`, id))
	if err != nil {
		return persistence.Resource{}, mapErr(err)
	}
	return r, nil
}

func (t *txn) ResourceList(ctx context.Context, activeOnly bool) ([]persistence.Resource, error) {
	return queryList(ctx, t, scanResource, `SELECT `+resourceColumns+` FROM resources
		WHERE active OR NOT $1 ORDER BY id`, activeOnly)
}

// ---- Calendars ----

func (t *txn) CalendarActivate(ctx context.Context, calendarID string) (int64, error) {
	if err := persistence.CheckCalendarID(calendarID); err != nil {
		return 0, err
	}
	var epoch int64
	err := t.tx.QueryRow(ctx, `INSERT INTO calendars (id, epoch) VALUES ($1, 1)
		ON CONFLICT (id) DO UPDATE SET epoch = calendars.epoch + 1 RETURNING epoch`, calendarID).Scan(&epoch)
	return epoch, mapErr(err)
}

func (t *txn) CalendarCheckEpoch(ctx context.Context, calendarID string, epoch int64) error {
	var stored int64
	err := t.tx.QueryRow(ctx, `SELECT epoch FROM calendars WHERE id = $1`, calendarID).Scan(&stored)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return mapErr(err)
	}
	return persistence.CheckEpoch(calendarID, epoch, stored, err == nil)
}

// ---- Appointments ----

const appointmentColumns = `id, staff_id, resource_id, service_id, client_id, start_at, end_at,
	buffer_before_seconds, buffer_after_seconds, status, hold_expires_at, price_minor, deposit_minor,
	version, created_at, updated_at, checked_in_at`

func scanAppointment(r rowScanner) (persistence.Appointment, error) {
	var a persistence.Appointment
	var before, after int64
	var start, end, created, updated time.Time
	var hold, checkedIn *time.Time
	var status string
	err := r.Scan(&a.ID, &a.StaffID, &a.ResourceID, &a.ServiceID, &a.ClientID, &start, &end, &before, &after,
		&status, &hold, &a.PriceMinor, &a.DepositMinor, &a.Version, &created, &updated, &checkedIn)
	a.Start, a.End, a.HoldExpiresAt = ts(start), ts(end), fromNullTS(hold)
	a.CheckedInAt = fromNullTS(checkedIn)
	a.BufferBefore, a.BufferAfter = persistence.FromSeconds(before), persistence.FromSeconds(after)
	a.Status, a.CreatedAt, a.UpdatedAt = persistence.AppointmentStatus(status), ts(created), ts(updated)
	return a, err
}

func (t *txn) AppointmentInsert(ctx context.Context, a persistence.Appointment) error {
	a, err := persistence.NormalizeAppointment(a)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO appointments (`+appointmentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		a.ID, a.StaffID, a.ResourceID, a.ServiceID, a.ClientID, ts(a.Start), ts(a.End),
		persistence.Seconds(a.BufferBefore), persistence.Seconds(a.BufferAfter), string(a.Status),
		nullTS(a.HoldExpiresAt), a.PriceMinor, a.DepositMinor, a.Version,
		ts(a.CreatedAt), ts(a.UpdatedAt), nullTS(a.CheckedInAt))
	return err
}

func (t *txn) AppointmentUpdate(ctx context.Context, a persistence.Appointment) (persistence.Appointment, error) {
	a, err := persistence.NormalizeAppointmentUpdate(a)
	if err != nil {
		return persistence.Appointment{}, err
	}
	var created time.Time
	err = t.tx.QueryRow(ctx, `UPDATE appointments SET staff_id = $1, resource_id = $2, service_id = $3,
		client_id = $4, start_at = $5, end_at = $6, buffer_before_seconds = $7, buffer_after_seconds = $8,
		status = $9, hold_expires_at = $10, price_minor = $11, deposit_minor = $12, updated_at = $13,
		checked_in_at = $14, version = version + 1 WHERE id = $15 AND version = $16 RETURNING created_at`,
		a.StaffID, a.ResourceID, a.ServiceID, a.ClientID, ts(a.Start), ts(a.End),
		persistence.Seconds(a.BufferBefore), persistence.Seconds(a.BufferAfter), string(a.Status),
		nullTS(a.HoldExpiresAt), a.PriceMinor, a.DepositMinor, ts(a.UpdatedAt),
		nullTS(a.CheckedInAt), a.ID, a.Version).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		var one int
		switch err = t.tx.QueryRow(ctx, `SELECT 1 FROM appointments WHERE id = $1`, a.ID).Scan(&one); {
		case errors.Is(err, pgx.ErrNoRows):
			return persistence.Appointment{}, persistence.AppointmentMissing(a.ID)
		case err == nil:
			return persistence.Appointment{}, persistence.VersionConflict("appointment", a.ID, a.Version)
		}
	}
	if err != nil {
		return persistence.Appointment{}, mapErr(err)
	}
	a.Version++
	a.CreatedAt = ts(created)
	return a, nil
}

func (t *txn) AppointmentGet(ctx context.Context, id string) (persistence.Appointment, error) {
	a, err := scanAppointment(t.tx.QueryRow(ctx, `SELECT `+appointmentColumns+` FROM appointments
		WHERE id = $1`, id))
	if err != nil {
		return persistence.Appointment{}, mapErr(err)
	}
	return a, nil
}

func (t *txn) AppointmentList(ctx context.Context, r persistence.AppointmentRange) ([]persistence.Appointment, error) {
	r, err := persistence.NormalizeAppointmentRange(r)
	if err != nil {
		return nil, err
	}
	column, id := "staff_id", r.StaffID
	if r.ResourceID != "" {
		column, id = "resource_id", r.ResourceID
	}
	q := `SELECT ` + appointmentColumns + ` FROM appointments
		WHERE ` + column + ` = $1 AND start_at < $2 AND end_at > $3`
	args := []any{id, ts(r.To), ts(r.From)}
	if !r.LiveAt.IsZero() {
		q += ` AND (status = $4 OR (status = $5 AND hold_expires_at > $6))`
		args = append(args, string(persistence.StatusConfirmed), string(persistence.StatusHeld), ts(r.LiveAt))
	}
	return queryList(ctx, t, scanAppointment, q+` ORDER BY start_at, id`, args...)
}

func (t *txn) AppointmentListByClient(ctx context.Context, clientID string, from, to time.Time, limit int) ([]persistence.Appointment, error) {
	from, to, err := persistence.CheckClientQuery(clientID, from, to, limit)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, scanAppointment, `SELECT `+appointmentColumns+` FROM appointments
		WHERE client_id = $1 AND start_at >= $2 AND start_at < $3 ORDER BY start_at, id LIMIT $4`,
		clientID, ts(from), ts(to), limit)
}

// ---- Transitions ----

func (t *txn) TransitionAppend(ctx context.Context, tr persistence.Transition) error {
	tr, err := persistence.NormalizeTransition(tr)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO appointment_transitions
		(id, appointment_id, from_status, to_status, at, actor_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		tr.ID, tr.AppointmentID, string(tr.From), string(tr.To), ts(tr.At), tr.ActorID, tr.Reason)
	return err
}

func (t *txn) TransitionList(ctx context.Context, appointmentID string) ([]persistence.Transition, error) {
	return queryList(ctx, t, func(r rowScanner) (persistence.Transition, error) {
		var tr persistence.Transition
		var from, to string
		var at time.Time
		err := r.Scan(&tr.ID, &tr.AppointmentID, &from, &to, &at, &tr.ActorID, &tr.Reason)
		tr.From, tr.To, tr.At = persistence.AppointmentStatus(from), persistence.AppointmentStatus(to), ts(at)
		return tr, err
	}, `SELECT id, appointment_id, from_status, to_status, at, actor_id, reason FROM appointment_transitions
		WHERE appointment_id = $1 ORDER BY id`, appointmentID)
}
