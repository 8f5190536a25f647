package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Booking: catalogue, calendars and appointments. Durations are whole
// seconds, lists JSON text (encoded by package persistence).

// ---- Services ----

const serviceColumns = `id, name, category, duration_seconds, price_minor, buffer_before_seconds,
	buffer_after_seconds, required_skills, resource_id, deposit_policy, deposit_value, deposit_no_shows,
	cancel_cutoff_seconds, reschedule_cutoff_seconds, active, version, updated_at`

func (t *txn) scanService(r row) (persistence.Service, error) {
	var s persistence.Service
	var dur, before, after, cancel, reschedule int64
	var skills, policy string
	if err := r.Scan(&s.ID, &s.Name, &s.Category, &dur, &s.PriceMinor, &before, &after, &skills,
		&s.ResourceID, &policy, &s.DepositValue, &s.DepositNoShows, &cancel, &reschedule, &s.Active, &s.Version, t.at(&s.UpdatedAt)); err != nil {
		return s, err
	}
	var err error
	s.RequiredSkills, err = persistence.DecodeStrings(skills)
	s.Duration, s.BufferBefore, s.BufferAfter = persistence.FromSeconds(dur), persistence.FromSeconds(before), persistence.FromSeconds(after)
	s.CancelCutoff, s.RescheduleCutoff = persistence.FromSeconds(cancel), persistence.FromSeconds(reschedule)
	s.DepositPolicy = persistence.DepositPolicy(policy)
	return s, err
}

func (t *txn) ServicePut(ctx context.Context, s persistence.Service) (persistence.Service, error) {
	s, err := persistence.NormalizeService(s)
	if err != nil {
		return persistence.Service{}, err
	}
	args := []any{s.Name, s.Category, persistence.Seconds(s.Duration), s.PriceMinor,
		persistence.Seconds(s.BufferBefore), persistence.Seconds(s.BufferAfter),
		persistence.EncodeStrings(s.RequiredSkills), s.ResourceID, string(s.DepositPolicy), s.DepositValue, s.DepositNoShows,
		persistence.Seconds(s.CancelCutoff), persistence.Seconds(s.RescheduleCutoff), s.Active,
		t.ts(s.UpdatedAt), s.ID}
	var n int
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO services (name, category, duration_seconds, price_minor,
			buffer_before_seconds, buffer_after_seconds, required_skills, resource_id, deposit_policy,
			deposit_value, deposit_no_shows, cancel_cutoff_seconds, reschedule_cutoff_seconds, active, updated_at, id, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE services SET name = ?, category = ?, duration_seconds = ?, price_minor = ?,
			buffer_before_seconds = ?, buffer_after_seconds = ?, required_skills = ?, resource_id = ?,
			deposit_policy = ?, deposit_value = ?, deposit_no_shows = ?, cancel_cutoff_seconds = ?, reschedule_cutoff_seconds = ?,
			active = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
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
	s, err := t.scanService(t.queryRow(ctx, `SELECT `+serviceColumns+` FROM services WHERE id = ?`, id))
	if err != nil {
		return persistence.Service{}, t.mapErr(err)
	}
	return s, nil
}

func (t *txn) ServiceList(ctx context.Context, activeOnly bool) ([]persistence.Service, error) {
	return queryList(ctx, t, t.scanService, `SELECT `+serviceColumns+` FROM services
		WHERE active OR NOT ? ORDER BY id`, activeOnly)
}

// ---- Staff ----

const staffColumns = `id, name, skills, time_zone, weekly, active, version, updated_at`

func (t *txn) scanStaff(r row) (persistence.StaffMember, error) {
	var s persistence.StaffMember
	var skills, weekly string
	if err := r.Scan(&s.ID, &s.Name, &skills, &s.TimeZone, &weekly, &s.Active, &s.Version, t.at(&s.UpdatedAt)); err != nil {
		return s, err
	}
	var err1, err2 error
	s.Skills, err1 = persistence.DecodeStrings(skills)
	s.Weekly, err2 = persistence.DecodeWeekly(weekly)
	return s, errors.Join(err1, err2)
}

func (t *txn) StaffPut(ctx context.Context, s persistence.StaffMember) (persistence.StaffMember, error) {
	s, err := persistence.NormalizeStaff(s)
	if err != nil {
		return persistence.StaffMember{}, err
	}
	args := []any{s.Name, persistence.EncodeStrings(s.Skills), s.TimeZone, persistence.EncodeWeekly(s.Weekly),
		s.Active, t.ts(s.UpdatedAt), s.ID}
	var n int
	if s.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO staff (name, skills, time_zone, weekly, active, updated_at, id, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE staff SET name = ?, skills = ?, time_zone = ?, weekly = ?, active = ?,
			updated_at = ?, version = version + 1 WHERE id = ? AND version = ?`, append(args, s.Version)...)
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
	s, err := t.scanStaff(t.queryRow(ctx, `SELECT `+staffColumns+` FROM staff WHERE id = ?`, id))
	if err != nil {
		return persistence.StaffMember{}, t.mapErr(err)
	}
	return s, nil
}

func (t *txn) StaffList(ctx context.Context, activeOnly bool) ([]persistence.StaffMember, error) {
	return queryList(ctx, t, t.scanStaff, `SELECT `+staffColumns+` FROM staff
		WHERE active OR NOT ? ORDER BY id`, activeOnly)
}

// ---- Date overrides ----

func (t *txn) DateOverridePut(ctx context.Context, o persistence.DateOverride) error {
	o, err := persistence.NormalizeDateOverride(o)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO staff_date_overrides (staff_id, date, closed, ranges) VALUES (?, ?, ?, ?)
		ON CONFLICT (staff_id, date) DO UPDATE SET closed = excluded.closed, ranges = excluded.ranges`,
		o.StaffID, o.Date, o.Closed, persistence.EncodeRanges(o.Ranges))
	return err
}

func (t *txn) DateOverrideDelete(ctx context.Context, staffID, date string) error {
	n, err := t.exec(ctx, `DELETE FROM staff_date_overrides WHERE staff_id = ? AND date = ?`, staffID, date)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) DateOverrideList(ctx context.Context, staffID, fromDate, toDate string) ([]persistence.DateOverride, error) {
	if err := persistence.CheckDateRange(fromDate, toDate); err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r row) (persistence.DateOverride, error) {
		var o persistence.DateOverride
		var ranges string
		if err := r.Scan(&o.StaffID, &o.Date, &o.Closed, &ranges); err != nil {
			return o, err
		}
		var err error
		o.Ranges, err = persistence.DecodeRanges(ranges)
		return o, err
	}, `SELECT staff_id, date, closed, ranges FROM staff_date_overrides
		WHERE staff_id = ? AND date >= ? AND date < ? ORDER BY date`, staffID, fromDate, toDate)
}

// ---- Time off ----

func (t *txn) TimeOffAdd(ctx context.Context, o persistence.TimeOff) error {
	o, err := persistence.NormalizeTimeOff(o)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO time_off (id, staff_id, start_at, end_at, reason) VALUES (?, ?, ?, ?, ?)`,
		o.ID, o.StaffID, t.ts(o.Start), t.ts(o.End), o.Reason)
	return err
}

func (t *txn) TimeOffDelete(ctx context.Context, id string) error {
	n, err := t.exec(ctx, `DELETE FROM time_off WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = t.notFound()
	}
	return err
}

func (t *txn) TimeOffList(ctx context.Context, staffID string, from, to time.Time) ([]persistence.TimeOff, error) {
	from, to, err := persistence.CheckTimeRange(from, to)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, func(r row) (persistence.TimeOff, error) {
		var o persistence.TimeOff
		err := r.Scan(&o.ID, &o.StaffID, t.at(&o.Start), t.at(&o.End), &o.Reason)
		return o, err
	}, `SELECT id, staff_id, start_at, end_at, reason FROM time_off
		WHERE staff_id = ? AND start_at < ? AND end_at > ? ORDER BY start_at, id`,
		staffID, t.ts(to), t.ts(from))
}

// ---- Resources ----

const resourceColumns = `id, name, capacity, active, version, updated_at`

func (t *txn) scanResource(r row) (persistence.Resource, error) {
	var res persistence.Resource
	err := r.Scan(&res.ID, &res.Name, &res.Capacity, &res.Active, &res.Version, t.at(&res.UpdatedAt))
	return res, err
}

func (t *txn) ResourcePut(ctx context.Context, r persistence.Resource) (persistence.Resource, error) {
	r, err := persistence.NormalizeResource(r)
	if err != nil {
		return persistence.Resource{}, err
	}
	args := []any{r.Name, r.Capacity, r.Active, t.ts(r.UpdatedAt), r.ID}
	var n int
	if r.Version == 0 {
		n, err = t.exec(ctx, `INSERT INTO resources (name, capacity, active, updated_at, id, version)
			VALUES (?, ?, ?, ?, ?, 1)`, args...)
	} else {
		n, err = t.exec(ctx, `UPDATE resources SET name = ?, capacity = ?, active = ?, updated_at = ?,
			version = version + 1 WHERE id = ? AND version = ?`, append(args, r.Version)...)
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
	r, err := t.scanResource(t.queryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE id = ?`, id))
	if err != nil {
		return persistence.Resource{}, t.mapErr(err)
	}
	return r, nil
}

func (t *txn) ResourceList(ctx context.Context, activeOnly bool) ([]persistence.Resource, error) {
	return queryList(ctx, t, t.scanResource, `SELECT `+resourceColumns+` FROM resources
		WHERE active OR NOT ? ORDER BY id`, activeOnly)
}

// ---- Calendars ----

func (t *txn) CalendarActivate(ctx context.Context, calendarID string) (int64, error) {
	if err := persistence.CheckCalendarID(calendarID); err != nil {
		return 0, err
	}
	var epoch int64
	err := t.queryRow(ctx, `INSERT INTO calendars (id, epoch) VALUES (?, 1)
		ON CONFLICT (id) DO UPDATE SET epoch = calendars.epoch + 1 RETURNING epoch`, calendarID).Scan(&epoch)
	return epoch, t.mapErr(err)
}

// CalendarActivateAt upserts only over a stored epoch not above epoch;
// no row changed means a later owner's epoch is stored.
func (t *txn) CalendarActivateAt(ctx context.Context, calendarID string, epoch int64) error {
	if err := persistence.CheckCalendarID(calendarID); err != nil {
		return err
	}
	if epoch < 1 {
		return t.errorf("calendar epoch %d: %w", epoch, persistence.ErrInvalid)
	}
	n, err := t.exec(ctx, `INSERT INTO calendars (id, epoch) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch WHERE calendars.epoch <= excluded.epoch`, calendarID, epoch)
	if err != nil {
		return err
	}
	if n == 0 {
		return t.errorf("calendar %q is past epoch %d: %w", calendarID, epoch, persistence.ErrFenced)
	}
	return nil
}

func (t *txn) CalendarCheckEpoch(ctx context.Context, calendarID string, epoch int64) error {
	return t.later(ctx, Stmt{Query: `SELECT epoch FROM calendars WHERE id = ?`, Args: []any{calendarID},
		Row: func(r Row) error {
			var stored int64
			err := r.Scan(&stored)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return t.mapErr(err)
			}
			return persistence.CheckEpoch(calendarID, epoch, stored, err == nil)
		}})
}

// ---- Appointments ----

const appointmentColumns = `id, staff_id, resource_id, service_id, client_id, start_at, end_at,
	buffer_before_seconds, buffer_after_seconds, status, hold_expires_at, price_minor, deposit_minor,
	version, created_at, updated_at, checked_in_at`

func (t *txn) scanAppointment(r row) (persistence.Appointment, error) {
	var a persistence.Appointment
	var before, after int64
	var status string
	err := r.Scan(&a.ID, &a.StaffID, &a.ResourceID, &a.ServiceID, &a.ClientID, t.at(&a.Start), t.at(&a.End),
		&before, &after, &status, t.at(&a.HoldExpiresAt), &a.PriceMinor, &a.DepositMinor, &a.Version,
		t.at(&a.CreatedAt), t.at(&a.UpdatedAt), t.at(&a.CheckedInAt))
	a.BufferBefore, a.BufferAfter = persistence.FromSeconds(before), persistence.FromSeconds(after)
	a.Status = persistence.AppointmentStatus(status)
	return a, err
}

var appointmentInsert = newInsert("appointments", `INSERT INTO appointments (`+appointmentColumns+`) VALUES `,
	`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, "")

func (t *txn) AppointmentInsert(ctx context.Context, a persistence.Appointment) error {
	a, err := persistence.NormalizeAppointment(a)
	if err != nil {
		return err
	}
	return t.later(ctx, Stmt{Insert: appointmentInsert,
		Args: []any{a.ID, a.StaffID, a.ResourceID, a.ServiceID, a.ClientID, t.ts(a.Start), t.ts(a.End),
			persistence.Seconds(a.BufferBefore), persistence.Seconds(a.BufferAfter), string(a.Status),
			t.nullTS(a.HoldExpiresAt), a.PriceMinor, a.DepositMinor, a.Version,
			t.ts(a.CreatedAt), t.ts(a.UpdatedAt), t.nullTS(a.CheckedInAt)}})
}

func (t *txn) AppointmentUpdate(ctx context.Context, a persistence.Appointment) (persistence.Appointment, error) {
	a, err := persistence.NormalizeAppointmentUpdate(a)
	if err != nil {
		return persistence.Appointment{}, err
	}
	err = t.queryRow(ctx, `UPDATE appointments SET staff_id = ?, resource_id = ?, service_id = ?,
		client_id = ?, start_at = ?, end_at = ?, buffer_before_seconds = ?, buffer_after_seconds = ?,
		status = ?, hold_expires_at = ?, price_minor = ?, deposit_minor = ?, updated_at = ?,
		checked_in_at = ?, version = version + 1 WHERE id = ? AND version = ? RETURNING created_at`,
		a.StaffID, a.ResourceID, a.ServiceID, a.ClientID, t.ts(a.Start), t.ts(a.End),
		persistence.Seconds(a.BufferBefore), persistence.Seconds(a.BufferAfter), string(a.Status),
		t.nullTS(a.HoldExpiresAt), a.PriceMinor, a.DepositMinor, t.ts(a.UpdatedAt),
		t.nullTS(a.CheckedInAt), a.ID, a.Version).Scan(t.at(&a.CreatedAt))
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		switch err = t.queryRow(ctx, `SELECT 1 FROM appointments WHERE id = ?`, a.ID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return persistence.Appointment{}, persistence.AppointmentMissing(a.ID)
		case err == nil:
			return persistence.Appointment{}, persistence.VersionConflict("appointment", a.ID, a.Version)
		}
	}
	if err != nil {
		return persistence.Appointment{}, t.mapErr(err)
	}
	a.Version++
	return a, nil
}

func (t *txn) AppointmentGet(ctx context.Context, id string) (persistence.Appointment, error) {
	a, err := t.scanAppointment(t.queryRow(ctx, `SELECT `+appointmentColumns+` FROM appointments
		WHERE id = ?`, id))
	if err != nil {
		return persistence.Appointment{}, t.mapErr(err)
	}
	return a, nil
}

func (t *txn) AppointmentList(ctx context.Context, r persistence.AppointmentRange) ([]persistence.Appointment, error) {
	r, err := persistence.NormalizeAppointmentRange(r)
	if err != nil {
		return nil, err
	}
	// The resource index holds only appointments that use one (resource_id
	// <> ''), so the query names that condition for the planner to use it.
	which := `staff_id = ?`
	id := r.StaffID
	if r.ResourceID != "" {
		which, id = `resource_id = ? AND resource_id <> ''`, r.ResourceID
	}
	q := `SELECT ` + appointmentColumns + ` FROM appointments
		WHERE ` + which + ` AND start_at < ? AND end_at > ?`
	args := []any{id, t.ts(r.To), t.ts(r.From)}
	if !r.LiveAt.IsZero() {
		q += ` AND (status = ? OR (status = ? AND hold_expires_at > ?))`
		args = append(args, string(persistence.StatusConfirmed), string(persistence.StatusHeld), t.ts(r.LiveAt))
	}
	return queryList(ctx, t, t.scanAppointment, q+` ORDER BY start_at, id`, args...)
}

func (t *txn) AppointmentListByClient(ctx context.Context, clientID string, from, to time.Time, limit int) ([]persistence.Appointment, error) {
	from, to, err := persistence.CheckClientQuery(clientID, from, to, limit)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, t, t.scanAppointment, `SELECT `+appointmentColumns+` FROM appointments
		WHERE client_id = ? AND start_at >= ? AND start_at < ? ORDER BY start_at, id LIMIT ?`,
		clientID, t.ts(from), t.ts(to), limit)
}

func (t *txn) AppointmentNoShows(ctx context.Context, clientID string, since time.Time) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT count(*) FROM appointments WHERE client_id = ? AND start_at >= ? AND status = ?`,
		clientID, t.ts(since), string(persistence.StatusNoShow)).Scan(&n)
	return n, t.mapErr(err)
}

// ---- Transitions ----

var transitionInsert = newInsert("appointment_transitions", `INSERT INTO appointment_transitions
	(id, appointment_id, from_status, to_status, at, actor_id, reason) VALUES `, `(?, ?, ?, ?, ?, ?, ?)`, "", "appointments")

func (t *txn) TransitionAppend(ctx context.Context, tr persistence.Transition) error {
	tr, err := persistence.NormalizeTransition(tr)
	if err != nil {
		return err
	}
	reason := tr.Reason
	if reason != "" && t.personal != nil { // free text, often about the client: sealed under the client's key
		var clientID string
		if err := t.queryRow(ctx, `SELECT client_id FROM appointments WHERE id = ?`, tr.AppointmentID).Scan(&clientID); err != nil {
			return t.mapErr(err)
		}
		if reason, err = t.sealText(ctx, clientID, transitionReasonPlace(tr.ID), reason); err != nil {
			return err
		}
	}
	return t.later(ctx, Stmt{Insert: transitionInsert,
		Args: []any{tr.ID, tr.AppointmentID, string(tr.From), string(tr.To), t.ts(tr.At), tr.ActorID, reason}})
}

func (t *txn) TransitionList(ctx context.Context, appointmentID string) ([]persistence.Transition, error) {
	trs, err := queryList(ctx, t, func(r row) (persistence.Transition, error) {
		var tr persistence.Transition
		var from, to string
		err := r.Scan(&tr.ID, &tr.AppointmentID, &from, &to, t.at(&tr.At), &tr.ActorID, &tr.Reason)
		tr.From, tr.To = persistence.AppointmentStatus(from), persistence.AppointmentStatus(to)
		return tr, err
	}, `SELECT id, appointment_id, from_status, to_status, at, actor_id, reason FROM appointment_transitions
		WHERE appointment_id = ? ORDER BY id`, appointmentID)
	if err != nil || !slices.ContainsFunc(trs, func(tr persistence.Transition) bool { return strings.HasPrefix(tr.Reason, sealedTextMark) }) {
		return trs, err
	}
	var clientID string
	if err := t.queryRow(ctx, `SELECT client_id FROM appointments WHERE id = ?`, appointmentID).Scan(&clientID); err != nil {
		return nil, t.mapErr(err)
	}
	return trs, t.openReasons(ctx, len(trs), func(i int) (string, string, *string) {
		return clientID, transitionReasonPlace(trs[i].ID), &trs[i].Reason
	})
}
