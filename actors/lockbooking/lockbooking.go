// Package lockbooking is the benchmark baseline: the booking path of the
// Django system the engine replaced, behind the schedule actors' door (a
// door.Door the gateway reaches through schedule.Client) so that both can
// be measured through the same HTTP API on the same database. It is not the production path and is enabled only by
// SPA_BOOKING_ENGINE=lock-baseline.
//
// Every request is one PostgreSQL transaction at READ COMMITTED that locks
// the staff member's row (SELECT ... FOR UPDATE), loads that member's
// hours, overrides, time off and the live appointments around the claim,
// decides with the same availability rules as the schedule actors
// (availability.Free, alternatives on a refusal), writes the appointment,
// its transition and its AppointmentChanged outbox event, and commits. Two
// claims on one staff member therefore queue on the row lock, and a
// refusal costs a transaction too: that is what the comparison measures.
package lockbooking

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/schedule"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/postgres"
)

// Config mirrors the schedule actors' rules so both engines decide alike;
// zero fields take the same defaults (hold 10m, horizon 90 days, step 15m,
// no minimum notice).
type Config struct {
	HoldTTL   time.Duration
	Horizon   time.Duration
	MinNotice time.Duration
	Step      time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// AfterOutboxCommit, when set, is called after a transaction that
	// wrote an outbox event has committed (the relay's wake-up).
	AfterOutboxCommit func()
	// Keys: answers to keyed requests are stored and read as the actors
	// do, but inside each request's locking transaction, as the old system
	// would have done.
	Keys keyed.Config
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HoldTTL, 10*time.Minute)
	def(&c.Horizon, 90*24*time.Hour)
	def(&c.Step, 15*time.Minute)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ErrNotPostgres: the baseline runs only on PostgreSQL, as the old system
// did; it refuses SQLite (an empty DATABASE_URL) and other URLs.
var ErrNotPostgres = errors.New("lockbooking: the lock-baseline booking engine needs PostgreSQL: set DATABASE_URL to a postgres:// URL (SQLite is not supported)")

// Engine answers schedule messages with one locking transaction each. It
// is a door.Door answering as the schedule actors do. Safe for concurrent
// use.
type Engine struct {
	pool *pgxpool.Pool
	cfg  Config
}

// Open connects its own pool to the PostgreSQL database at databaseURL
// (search_path and pool_max_conns in the URL are honoured, as by the main
// store). The schema must already be migrated.
func Open(ctx context.Context, databaseURL string, cfg Config) (*Engine, error) {
	u, err := url.Parse(databaseURL)
	if databaseURL == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, ErrNotPostgres
	}
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("lockbooking: parse url: %w", err)
	}
	if !strings.Contains(databaseURL, "pool_max_conns") {
		pc.MaxConns = int32(max(16, 4*runtime.GOMAXPROCS(0))) // as the main store
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("lockbooking: open: %w", err)
	}
	var version string
	if err := pool.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		pool.Close()
		return nil, fmt.Errorf("lockbooking: open: %w", err)
	}
	if strings.Contains(version, "CockroachDB") {
		pool.Close()
		return nil, errors.New("lockbooking: the baseline models PostgreSQL's READ COMMITTED row locks; CockroachDB is not supported")
	}
	return &Engine{pool: pool, cfg: cfg.withDefaults()}, nil
}

// Close closes the pool.
func (e *Engine) Close() { e.pool.Close() }

// Ask answers msg for staffID's calendar: Hold with *schedule.HoldReply,
// Confirm and Cancel with *schedule.Reply, SlotsQuery with
// *schedule.SlotsReply. The other schedule messages are answered with
// schedule.ErrInvalid (the baseline does not model them). Database
// failures come back as schedule.ErrRetry in the reply, as the actors'
// failed writes do; the error result is only for unknown message types.
func (e *Engine) Ask(ctx context.Context, staffID string, msg any) (any, error) {
	switch m := msg.(type) {
	case *schedule.Hold:
		return e.hold(ctx, staffID, m), nil
	case *schedule.Confirm:
		return e.change(ctx, staffID, m.AppointmentID, m.ActorID, m.Reason, m.Key, confirmRule), nil
	case *schedule.Cancel:
		return e.change(ctx, staffID, m.AppointmentID, m.ActorID, m.Reason, m.Key, cancelRule(m)), nil
	case *schedule.SlotsQuery:
		return e.slots(ctx, staffID, m), nil
	case *schedule.Complete, *schedule.NoShow, *schedule.Reschedule:
		return &schedule.Reply{Err: fmt.Errorf("%w: the lock baseline does not implement %T", schedule.ErrInvalid, msg)}, nil
	}
	return nil, fmt.Errorf("lockbooking: unknown message %T", msg)
}

var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// inTx runs fn in one READ COMMITTED transaction and commits it.
func (e *Engine) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := e.pool.BeginTx(ctx, readCommitted)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// decided marks an error that is the answer, not a failure.
type decided struct{ err error }

func (d decided) Error() string { return d.err.Error() }
func (d decided) Unwrap() error { return d.err }

// replyErr turns a transaction's error into the reply's error: decisions
// pass through, failures become retryable.
func replyErr(err error) error {
	var d decided
	if errors.As(err, &d) {
		return d.err
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", schedule.ErrRetry, err)
}

// answered reads the answer stored under a keyed request's key, before
// the staff lock, so keys do not lengthen the critical section: found
// reports a replay (or, with an error, a refusal of the key). A duplicate
// that commits meanwhile is caught by the key's primary key when this one
// writes (keyed.ErrElsewhere: the caller reads that answer).
func (e *Engine) answered(ctx context.Context, tx pgx.Tx, k *keyed.Key, now time.Time) (ap persistence.Appointment, found bool, err error) {
	if k == nil {
		return ap, false, nil
	}
	ap, found, err = keyed.Stored[persistence.Appointment](ctx, postgres.Tx(tx), e.cfg.Keys, k, now)
	if err != nil && found {
		err = decided{err}
	}
	return ap, found, err
}

// remember stores a keyed request's answer in its transaction.
func (e *Engine) remember(ctx context.Context, tx pgx.Tx, staffID string, k *keyed.Key, ap persistence.Appointment, now time.Time) error {
	if k == nil {
		return nil
	}
	return keyed.Write(ctx, postgres.Tx(tx), e.cfg.Keys, schedule.CalendarID(staffID), k, ap, now)
}

const staffColumns = `id, name, skills, time_zone, weekly, active, version, updated_at`

// lockStaff takes the staff row lock and reads the member.
func lockStaff(ctx context.Context, tx pgx.Tx, staffID string, lock bool) (persistence.StaffMember, error) {
	var m persistence.StaffMember
	var skills, weekly string
	q := `SELECT ` + staffColumns + ` FROM staff WHERE id = $1`
	if lock {
		q += ` FOR UPDATE`
	}
	err := tx.QueryRow(ctx, q, staffID).Scan(&m.ID, &m.Name, &skills, &m.TimeZone, &weekly, &m.Active, &m.Version, &m.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !m.Active) {
		return m, decided{schedule.ErrUnknownStaff}
	}
	if err != nil {
		return m, err
	}
	var err1, err2 error
	m.Skills, err1 = persistence.DecodeStrings(skills)
	m.Weekly, err2 = persistence.DecodeWeekly(weekly)
	return m, errors.Join(err1, err2)
}

// calendar loads what the decision needs around [from, to): overrides,
// time off and live appointments, as the availability engine's Staff.
func (e *Engine) calendar(ctx context.Context, tx pgx.Tx, m persistence.StaffMember, from, to, now time.Time) (availability.Staff, error) {
	var overrides []persistence.DateOverride
	rows, _ := tx.Query(ctx, `SELECT date, closed, ranges FROM staff_date_overrides
		WHERE staff_id = $1 AND date >= $2 AND date < $3 ORDER BY date`,
		m.ID, from.Add(-48*time.Hour).Format(time.DateOnly), to.Add(48*time.Hour).Format(time.DateOnly))
	var o persistence.DateOverride
	var ranges string
	_, err := pgx.ForEachRow(rows, []any{&o.Date, &o.Closed, &ranges}, func() error {
		rs, err := persistence.DecodeRanges(ranges)
		o.StaffID, o.Ranges = m.ID, rs
		overrides = append(overrides, o)
		return err
	})
	if err != nil {
		return availability.Staff{}, err
	}
	var timeOff []persistence.TimeOff
	rows, _ = tx.Query(ctx, `SELECT start_at, end_at FROM time_off
		WHERE staff_id = $1 AND start_at < $2 AND end_at > $3`, m.ID, to, from)
	var t persistence.TimeOff
	if _, err := pgx.ForEachRow(rows, []any{&t.Start, &t.End}, func() error {
		timeOff = append(timeOff, t)
		return nil
	}); err != nil {
		return availability.Staff{}, err
	}
	s, err := schedule.StaffCalendar(m, overrides, timeOff)
	if err != nil {
		return s, err
	}
	// Live appointments near the window; buffers are at most a day in
	// practice, so a day's margin catches every padded overlap.
	rows, _ = tx.Query(ctx, `SELECT start_at, end_at, buffer_before_seconds, buffer_after_seconds, status, hold_expires_at
		FROM appointments WHERE staff_id = $1 AND start_at < $2 AND end_at > $3
		AND (status = 'confirmed' OR (status = 'held' AND hold_expires_at > $4))`,
		m.ID, to.Add(24*time.Hour), from.Add(-24*time.Hour), now)
	var b availability.Busy
	var before, after int64
	var status string
	var hold *time.Time
	_, err = pgx.ForEachRow(rows, []any{&b.Start, &b.End, &before, &after, &status, &hold}, func() error {
		b.BufferBefore, b.BufferAfter, b.HoldExpiresAt = persistence.FromSeconds(before), persistence.FromSeconds(after), time.Time{}
		if status == string(persistence.StatusHeld) && hold != nil {
			b.HoldExpiresAt = *hold
		}
		s.Busy = append(s.Busy, b)
		return nil
	})
	s.Load = len(s.Busy)
	return s, err
}

// query builds the availability query with the actors' rules.
func (e *Engine) query(sv persistence.Service, now time.Time) availability.Query {
	return availability.Query{
		Service: availability.Service{ID: sv.ID, Duration: sv.Duration, BufferBefore: sv.BufferBefore,
			BufferAfter: sv.BufferAfter, RequiredSkills: sv.RequiredSkills},
		Now: now, MinNotice: e.cfg.MinNotice, Horizon: e.cfg.Horizon, Step: e.cfg.Step,
	}
}

// alternatives proposes up to five other starts, nearest first, searched
// as the actor does: within three hours, else within a day.
func alternatives(q availability.Query, s availability.Staff, start time.Time) []availability.Slot {
	wanted := availability.Slot{Start: start, StaffID: s.ID}
	var out []availability.Slot
	for _, span := range []time.Duration{3 * time.Hour, 24 * time.Hour} {
		q.From, q.To = start.Add(-span), start.Add(span)
		if out = availability.Alternatives(q, []availability.Staff{s}, nil, wanted, 5); len(out) == 5 {
			break
		}
	}
	return out
}

const appointmentColumns = `id, staff_id, resource_id, service_id, client_id, start_at, end_at,
	buffer_before_seconds, buffer_after_seconds, status, hold_expires_at, price_minor, deposit_minor,
	version, created_at, updated_at`

func scanAppointment(row pgx.Row) (persistence.Appointment, error) {
	var a persistence.Appointment
	var before, after int64
	var status string
	var hold *time.Time
	err := row.Scan(&a.ID, &a.StaffID, &a.ResourceID, &a.ServiceID, &a.ClientID, &a.Start, &a.End, &before, &after,
		&status, &hold, &a.PriceMinor, &a.DepositMinor, &a.Version, &a.CreatedAt, &a.UpdatedAt)
	a.BufferBefore, a.BufferAfter, a.Status = persistence.FromSeconds(before), persistence.FromSeconds(after), persistence.AppointmentStatus(status)
	if hold != nil {
		a.HoldExpiresAt = hold.UTC()
	}
	a.Start, a.End, a.CreatedAt, a.UpdatedAt = a.Start.UTC(), a.End.UTC(), a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, err
}

func (e *Engine) hold(ctx context.Context, staffID string, m *schedule.Hold) *schedule.HoldReply {
	if m.AppointmentID == "" || m.ClientID == "" {
		return &schedule.HoldReply{Err: fmt.Errorf("%w: a hold needs an appointment id and a client", schedule.ErrInvalid)}
	}
	var reply schedule.HoldReply
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		now := e.cfg.Now()
		reply = schedule.HoldReply{}
		if ap, found, err := e.answered(ctx, tx, m.Key, now); found || err != nil {
			reply.Appointment, reply.Replayed = ap, err == nil
			return err
		}
		member, err := lockStaff(ctx, tx, staffID, true)
		if err != nil {
			return err
		}
		prev, err := scanAppointment(tx.QueryRow(ctx, `SELECT `+appointmentColumns+` FROM appointments WHERE id = $1`, m.AppointmentID))
		switch {
		case err == nil && prev.StaffID == staffID && prev.ClientID == m.ClientID && prev.ServiceID == m.Service.ID && prev.Start.Equal(m.Start):
			reply.Appointment = prev // a retry gets what it made
			return nil
		case err == nil:
			return decided{fmt.Errorf("%w: appointment id %s already used", schedule.ErrInvalid, m.AppointmentID)}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		s, err := e.calendar(ctx, tx, member, m.Start.Add(-24*time.Hour), m.Start.Add(24*time.Hour+m.Service.Duration), now)
		if err != nil {
			return err
		}
		q := e.query(m.Service, now)
		free, err := availability.Free(q, s, nil, m.Start)
		if err != nil {
			return decided{fmt.Errorf("%w: %w", schedule.ErrInvalid, err)}
		}
		if !free {
			reply.Alternatives = alternatives(q, s, m.Start)
			return decided{schedule.ErrSlotTaken}
		}
		ap := persistence.Appointment{
			ID: m.AppointmentID, StaffID: staffID, ResourceID: m.Service.ResourceID, ServiceID: m.Service.ID,
			ClientID: m.ClientID, Start: m.Start.UTC(), End: m.Start.Add(m.Service.Duration).UTC(),
			BufferBefore: m.Service.BufferBefore, BufferAfter: m.Service.BufferAfter,
			Status: persistence.StatusHeld, HoldExpiresAt: now.Add(e.cfg.HoldTTL).UTC(),
			PriceMinor: m.Service.PriceMinor, DepositMinor: deposit(m.Service),
			Version: 1, CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
		}
		if ap, err = persistence.NormalizeAppointment(ap); err != nil {
			return decided{fmt.Errorf("%w: %w", schedule.ErrInvalid, err)}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO appointments (`+appointmentColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $15)`,
			ap.ID, ap.StaffID, ap.ResourceID, ap.ServiceID, ap.ClientID, ap.Start, ap.End,
			persistence.Seconds(ap.BufferBefore), persistence.Seconds(ap.BufferAfter), string(ap.Status),
			ap.HoldExpiresAt, ap.PriceMinor, ap.DepositMinor, ap.CreatedAt, ap.UpdatedAt); err != nil {
			return err
		}
		if err := record(ctx, tx, nil, ap, m.ActorID, ""); err != nil { // no reason, as the schedule actor
			return err
		}
		if err := e.remember(ctx, tx, staffID, m.Key, ap, now); err != nil {
			return err
		}
		reply.Appointment = ap
		return nil
	})
	reply.Err = replyErr(err)
	if reply.Err == nil {
		e.afterOutbox()
	}
	if reply.Err != nil && !errors.Is(reply.Err, schedule.ErrSlotTaken) {
		reply.Alternatives = nil
	}
	return &reply
}

func (e *Engine) afterOutbox() {
	if e.cfg.AfterOutboxCommit != nil {
		e.cfg.AfterOutboxCommit()
	}
}

// deposit is what the client pays to confirm, in minor units (the actor's
// rule).
func deposit(sv persistence.Service) int64 {
	switch sv.DepositPolicy {
	case persistence.DepositPercent:
		return sv.PriceMinor * sv.DepositValue / 100
	case persistence.DepositFixed:
		return sv.DepositValue
	}
	return 0
}

// rule decides a status change of a loaded appointment: the new version,
// or a refusal; ok false with a nil error answers ap unchanged.
type rule func(ap persistence.Appointment, now time.Time) (after persistence.Appointment, change bool, err error)

func confirmRule(ap persistence.Appointment, now time.Time) (persistence.Appointment, bool, error) {
	switch {
	case ap.Status == persistence.StatusConfirmed:
		return ap, false, nil // confirming twice is harmless
	case ap.Status == persistence.StatusExpired:
		return ap, false, schedule.ErrHoldExpired
	case ap.Status != persistence.StatusHeld:
		return ap, false, schedule.ErrTransition
	case !ap.Live(now):
		return ap, false, schedule.ErrHoldExpired
	}
	ap.Status, ap.HoldExpiresAt = persistence.StatusConfirmed, time.Time{}
	return ap, true, nil
}

func cancelRule(m *schedule.Cancel) rule {
	return func(ap persistence.Appointment, now time.Time) (persistence.Appointment, bool, error) {
		if !ap.Live(now) {
			return ap, false, schedule.ErrTransition
		}
		if !m.Override && ap.Status == persistence.StatusConfirmed && m.Cutoff > 0 && ap.Start.Sub(now) < m.Cutoff {
			return ap, false, schedule.ErrCutoff
		}
		ap.Status = persistence.StatusCancelled
		return ap, true, nil
	}
}

// change applies a status change under the staff row lock.
func (e *Engine) change(ctx context.Context, staffID, id, actorID, reason string, key *keyed.Key, decide rule) *schedule.Reply {
	var reply schedule.Reply
	wrote := false
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		now := e.cfg.Now()
		reply, wrote = schedule.Reply{}, false
		if ap, found, err := e.answered(ctx, tx, key, now); found || err != nil {
			reply.Appointment, reply.Replayed = ap, err == nil
			return err
		}
		if _, err := lockStaff(ctx, tx, staffID, true); err != nil {
			return err
		}
		before, err := scanAppointment(tx.QueryRow(ctx, `SELECT `+appointmentColumns+` FROM appointments WHERE id = $1 AND staff_id = $2`, id, staffID))
		if errors.Is(err, pgx.ErrNoRows) {
			return decided{schedule.ErrNotFound}
		}
		if err != nil {
			return err
		}
		after, changed, err := decide(before, now)
		reply.Appointment = after
		if err != nil || !changed {
			return decided{err}
		}
		after.Version, after.UpdatedAt = before.Version+1, persistence.CanonicalTime(now)
		tag, err := tx.Exec(ctx, `UPDATE appointments SET status = $1, hold_expires_at = $2, version = $3, updated_at = $4
			WHERE id = $5 AND version = $6`,
			string(after.Status), nullTS(after.HoldExpiresAt), after.Version, after.UpdatedAt, after.ID, before.Version)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("appointment %s changed under the lock", id)
		}
		reply.Appointment, wrote = after, true
		if err := e.remember(ctx, tx, staffID, key, after, now); err != nil {
			return err
		}
		return record(ctx, tx, &before, after, actorID, reason)
	})
	var d decided
	if errors.As(err, &d) && d.err == nil {
		err = nil
	}
	reply.Err = replyErr(err)
	if reply.Err == nil && wrote {
		e.afterOutbox()
	}
	return &reply
}

func nullTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = persistence.CanonicalTime(t)
	return &t
}

func (e *Engine) slots(ctx context.Context, staffID string, m *schedule.SlotsQuery) *schedule.SlotsReply {
	var reply schedule.SlotsReply
	err := e.inTx(ctx, func(tx pgx.Tx) error {
		now := e.cfg.Now()
		member, err := lockStaff(ctx, tx, staffID, false) // reads do not lock
		if err != nil {
			return err
		}
		s, err := e.calendar(ctx, tx, member, m.From, m.To, now)
		if err != nil {
			return err
		}
		q := e.query(m.Service, now)
		q.From, q.To = m.From, m.To
		out, err := availability.Slots(q, []availability.Staff{s}, nil)
		if err != nil {
			return decided{err}
		}
		reply.Slots, reply.Load = out, s.Load
		return nil
	})
	reply.Err = replyErr(err)
	return &reply
}

// record writes a change's transition (when the status changed) and its
// AppointmentChanged event, as the schedule actor does.
func record(ctx context.Context, tx pgx.Tx, before *persistence.Appointment, after persistence.Appointment, actorID, reason string) error {
	ev := persistence.AppointmentChangedEvent(before, after, reason)
	if before == nil || before.Status != after.Status {
		if _, err := tx.Exec(ctx, `INSERT INTO appointment_transitions (id, appointment_id, from_status, to_status, at, actor_id, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ulid.Make().String(), after.ID, ev.FromStatus, string(after.Status), persistence.CanonicalTime(after.UpdatedAt), actorID, reason); err != nil {
			return err
		}
	}
	out, err := persistence.NewOutboxEvent("appointment/"+after.ID, "", actorID, ev, after.UpdatedAt)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO outbox (id, subject, type, payload, created_at)
		VALUES ($1, $2, $3, $4, $5)`, out.ID, out.Subject, out.Type, out.Payload, persistence.CanonicalTime(out.CreatedAt))
	return err
}
