// Package schedule holds the schedule actor: the single writer of one staff
// member's calendar. It decides every claim in memory, without locks,
// persists accepted changes by group commit under an epoch fence, and
// answers only once a change is durable. Directory (package directory)
// owns the actors of a node: it activates them on demand and passivates
// idle ones.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/time/rate"

	"github.com/spa-engine/spa/actors/availability"
	"github.com/spa-engine/spa/actors/batch"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/persistence"
)

// Config tunes the schedule actors.
type Config struct {
	HoldTTL      time.Duration // how long a hold blocks its slot unconfirmed (10m)
	Horizon      time.Duration // how far ahead clients may book (90 days)
	MinNotice    time.Duration // how soon before its start a slot may be claimed (0)
	Step         time.Duration // slot grid (15m)
	IdleAfter    time.Duration // passivate after this long without a message (5m)
	WriteTimeout time.Duration // bound on one group-commit transaction (10s)
	// LapsesPerSecond bounds how many lapsed holds the node's calendars
	// record per second, together (100). A lapsed hold blocks nothing
	// whether recorded or not; recording it (status, transition, event,
	// what it spent given back) is writer work, and after a peak thousands
	// lapse at once: unbounded, they held the group commit for seconds
	// while claims waited (see expire).
	LapsesPerSecond int
}

// ClaimMargin is how long before a resource claim lapses a hold backed by
// it must be decided: a decided change waits at most for the batch in
// flight and then its own, each bounded by WriteTimeout.
func (c Config) ClaimMargin() time.Duration { return 2 * c.withDefaults().WriteTimeout }

// claimLapsing reports whether a change backed by a resource claim lapsing
// at until can no longer be made durable in time.
func (a *scheduleActor) claimLapsing(now, until time.Time) bool {
	return !until.IsZero() && !now.Add(a.deps.Config.ClaimMargin()).Before(until)
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
	def(&c.IdleAfter, 5*time.Minute)
	def(&c.WriteTimeout, 10*time.Second)
	if c.LapsesPerSecond <= 0 {
		c.LapsesPerSecond = 100
	}
	return c
}

// Deps are what every schedule actor of a node shares.
type Deps struct {
	Store   persistence.Store
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	Config  Config
	// Fence issues activation epochs (placement.go); nil: the database.
	Fence Fence
	// Writer writes the actors' batches together with other calendars'
	// (batch.Writer); nil: each batch alone.
	Writer *batch.Writer
	// Keys tunes the answers remembered under clients' Idempotency-Keys.
	Keys keyed.Config

	life   *batch.Kind   // set by withDefaults
	lapses *rate.Limiter // set by withDefaults: Config.LapsesPerSecond, shared by the node's actors
}

func (d Deps) withDefaults() Deps {
	d.Config = d.Config.withDefaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.lapses == nil {
		d.lapses = rate.NewLimiter(rate.Limit(d.Config.LapsesPerSecond), expireChunk)
	}
	m := d.Metrics
	d.life = &batch.Kind{Name: "schedule", IDKey: "staff", Log: d.Log, IdleAfter: d.Config.IdleAfter,
		Live: m.live, Fenced: m.fenced, Settled: func(o batch.Op, outcome string) { m.claim(o.Kind, outcome, o.Start) },
		Refuse: refusal, ErrRetry: ErrRetry, ErrNotLoaded: fmt.Errorf("%w: calendar did not load", ErrRetry),
		ErrUnknown: ErrUnknownStaff}
	return d
}

// CalendarID names a staff member's calendar in the fencing table.
func CalendarID(staffID string) string { return "staff/" + staffID }

// expireHolds is the timer's tick: record the holds that lapsed.
type expireHolds struct{}

// minTimer keeps a hold-expiry timer from spinning when the clock is
// fake or the expiry is already past.
const minTimer = 10 * time.Millisecond

// scheduleActor is one activation of a staff member's calendar.
type scheduleActor struct {
	deps    Deps
	staffID string
	staff   availability.Staff
	appts   map[string]persistence.Appointment // every appointment in the loaded window
	// byStart indexes appts' ids by start (UnixNano): a refused claim
	// looks there for its client's own hold of the slot instead of
	// walking the whole calendar (thousands of appointments when busy).
	byStart map[int64][]string
	holds   holdQueue                           // the holds by expiry (expiry.go)
	keys    keyed.Book[persistence.Appointment] // answers given under idempotency keys

	commits batch.Committer // group commit of accepted changes
	life    batch.Lifecycle
	timer   *time.Timer // next hold expiry
	timerAt time.Time   // when timer fires

	version uint64 // bumped by every change of appts (see touch)
	memo    memo   // what was computed from the calendar at version

	// Where the calendar view is published for the Directory's readers
	// (snapshot.go); nil without a directory.
	shelf *shelf
	slot  *slot
	gen   uint64 // the slot's generation when this activation loaded
}

func newActor(deps Deps, staffID string) actor.Producer { return newActorOn(deps, staffID, nil) }

// newActorOn is newActor publishing its calendar on sh (nil: nowhere).
func newActorOn(deps Deps, staffID string, sh *shelf) actor.Producer {
	if deps.life == nil { // an actor spawned without a directory (tests)
		deps = deps.withDefaults()
	}
	return func() actor.Actor {
		return &scheduleActor{deps: deps, staffID: staffID, life: batch.NewLifecycle(deps.life, staffID), shelf: sh}
	}
}

// Receive is the actor's one message switch; a.life handles the lifecycle
// (package batch).
func (a *scheduleActor) Receive(c actor.Context) {
	if _, ok := c.Message().(batch.Done); ok && a.slot != nil {
		// A failed batch answers its callers before the actor stops
		// deciding, and its changes never happened: no read may see them
		// after that answer. publish shows the calendar again if it stands.
		a.slot.withdraw()
	}
	switch m := c.Message().(type) {
	case *actor.Started:
		if a.shelf != nil { // before loading: see shelf.enlist
			a.slot, a.gen = a.shelf.enlist(a.staffID)
		}
		if a.life.Start(c, a.activate) {
			a.armExpiry(c)
		}
	case *actor.Stopped:
		a.life.Receive(c, &a.commits) // counts the activation out
		if a.timer != nil {
			a.timer.Stop()
		}
		if a.slot != nil {
			a.shelf.release(a.staffID, a.slot)
			a.slot = nil
		}
	case expireHolds:
		if a.life.Deciding() {
			a.expire(c)
		}
	case *Hold:
		a.life.Guard(c, func() { a.unlessReplay(c, m.Key, holdAnswer, func() { a.hold(c, m) }) })
	case *Confirm:
		a.life.Guard(c, func() { a.unlessReplay(c, m.Key, changeAnswer, func() { a.confirm(c, m) }) })
	case *Cancel:
		a.life.Guard(c, func() { a.unlessReplay(c, m.Key, changeAnswer, func() { a.cancel(c, m) }) })
	case *CheckIn:
		a.life.Guard(c, func() { a.unlessReplay(c, m.Key, changeAnswer, func() { a.checkIn(c, m) }) })
	case *Complete:
		a.life.Guard(c, func() {
			a.unlessReplay(c, m.Key, changeAnswer, func() {
				a.close(c, m.AppointmentID, m.ActorID, m.Reason, m.Key, persistence.StatusCompleted)
			})
		})
	case *NoShow:
		a.life.Guard(c, func() {
			a.unlessReplay(c, m.Key, changeAnswer, func() {
				a.close(c, m.AppointmentID, m.ActorID, m.Reason, m.Key, persistence.StatusNoShow)
			})
		})
	case *Reschedule:
		a.life.Guard(c, func() { a.unlessReplay(c, m.Key, changeAnswer, func() { a.reschedule(c, m) }) })
	case *SlotsQuery:
		a.life.Guard(c, func() { a.slots(c, m) })
	default:
		a.life.Receive(c, &a.commits)
	}
	a.publish()
}

// publish shows the calendar as it stands after the message to the
// Directory's readers, or withdraws it once the actor no longer decides
// (a failed load, a failed batch, passivation): then reads go through the
// mailbox to the next activation, as they would have.
func (a *scheduleActor) publish() {
	if a.slot == nil {
		return
	}
	if !a.life.Deciding() {
		a.slot.withdraw()
		return
	}
	a.cachedCalendar(a.deps.Now()) // rebuilt if the message changed it or a hold lapsed
	a.slot.show(a.memo.view)
}

// activate takes a new epoch, which fences every older activation, and only
// then loads the calendar, so the load sees everything older activations
// committed.
func (a *scheduleActor) activate() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.deps.Config.WriteTimeout)
	defer cancel()
	now := a.deps.Now()
	return a.deps.Store.InTx(ctx, func(tx persistence.Tx) error {
		epoch, err := a.deps.takeEpoch(ctx, tx, CalendarID(a.staffID))
		if err != nil {
			return err
		}
		m, err := tx.StaffGet(ctx, a.staffID)
		if errors.Is(err, persistence.ErrNotFound) || (err == nil && !m.Active) {
			return ErrUnknownStaff
		}
		if err != nil {
			return err
		}
		from, to := now.Add(-48*time.Hour), now.Add(a.deps.Config.Horizon+48*time.Hour)
		overrides, err := tx.DateOverrideList(ctx, a.staffID, from.Format(time.DateOnly), to.Format(time.DateOnly))
		if err != nil {
			return err
		}
		timeOff, err := tx.TimeOffList(ctx, a.staffID, from, to)
		if err != nil {
			return err
		}
		// Every status, not only live ones: ids of expired or cancelled
		// appointments must still be recognised when a request is retried.
		appts, err := tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: a.staffID, From: from, To: to})
		if err != nil {
			return err
		}
		staff, err := StaffCalendar(m, overrides, timeOff)
		if err != nil {
			return err
		}
		keys, err := keyed.Load[persistence.Appointment](ctx, tx, a.deps.Keys, CalendarID(a.staffID), now)
		if err != nil {
			return err
		}
		a.staff, a.keys = staff, keys
		a.commits = batch.Committer{Store: a.deps.Store, Calendar: CalendarID(a.staffID), Epoch: epoch,
			Timeout: a.deps.Config.WriteTimeout, Flushed: func(n int) { a.deps.Metrics.batchSize.Observe(float64(n)) },
			Writer: a.deps.Writer}
		a.appts = make(map[string]persistence.Appointment, len(appts))
		a.byStart = make(map[int64][]string, len(appts))
		a.holds = nil
		for _, ap := range appts {
			a.put(ap)
		}
		a.touch()
		return nil
	})
}

// StaffCalendar maps a stored staff member, with their date overrides and
// time off, onto the availability engine's view (no appointments yet). The
// lock-based benchmark baseline uses it too, so both engines decide by the
// same calendar.
func StaffCalendar(m persistence.StaffMember, overrides []persistence.DateOverride, timeOff []persistence.TimeOff) (availability.Staff, error) {
	loc, err := time.LoadLocation(m.TimeZone)
	if err != nil {
		return availability.Staff{}, fmt.Errorf("staff %s: time zone: %w", m.ID, err)
	}
	ranges := func(in []persistence.ClockRange) ([]availability.ClockRange, error) {
		out := make([]availability.ClockRange, 0, len(in))
		for _, r := range in {
			cr, err := availability.NewClockRange(availability.Clock(r.StartMinute), availability.Clock(r.EndMinute))
			if err != nil {
				return nil, err
			}
			out = append(out, cr)
		}
		return out, nil
	}
	days := map[time.Weekday][]availability.ClockRange{}
	for d, rs := range m.Weekly {
		if days[time.Weekday(d)], err = ranges(rs); err != nil {
			return availability.Staff{}, err
		}
	}
	hours, err := availability.NewWeeklyHours(days)
	if err != nil {
		return availability.Staff{}, err
	}
	s := availability.Staff{ID: m.ID, Active: m.Active, Skills: m.Skills, Location: loc, Hours: hours}
	for _, o := range overrides {
		t, err := time.Parse(time.DateOnly, o.Date)
		if err != nil {
			return availability.Staff{}, err
		}
		d := availability.DateOf(t)
		if o.Closed {
			s.Overrides = append(s.Overrides, availability.ClosedOn(d))
			continue
		}
		rs, err := ranges(o.Ranges)
		if err != nil {
			return availability.Staff{}, err
		}
		ov, err := availability.OpenOn(d, rs...)
		if err != nil {
			return availability.Staff{}, err
		}
		s.Overrides = append(s.Overrides, ov)
	}
	for _, t := range timeOff {
		s.TimeOff = append(s.TimeOff, availability.Interval{Start: t.Start, End: t.End})
	}
	return s, nil
}

// calendar returns the staff member with every appointment that blocks
// time, pending ones included: a claim accepted but not yet written is
// taken.
func (a *scheduleActor) calendar(now time.Time, except string) availability.Staff {
	s := a.staff
	s.Busy = make([]availability.Busy, 0, len(a.appts))
	s.Load = 0
	for id, ap := range a.appts {
		if id == except {
			continue
		}
		// Load is booked work in the window, for fair assignment: no-shows
		// and cancellations do not count.
		if ap.Live(now) || ap.Status == persistence.StatusCompleted {
			s.Load++
		}
		if !ap.Live(now) {
			continue
		}
		hold := time.Time{}
		if ap.Status == persistence.StatusHeld {
			hold = ap.HoldExpiresAt
		}
		s.Busy = append(s.Busy, availability.Busy{Start: ap.Start, End: ap.End,
			BufferBefore: ap.BufferBefore, BufferAfter: ap.BufferAfter, HoldExpiresAt: hold})
	}
	return s
}

func (a *scheduleActor) query(sv persistence.Service, now time.Time) availability.Query {
	return queryOf(a.deps.Config, sv, now)
}

func queryOf(cfg Config, sv persistence.Service, now time.Time) availability.Query {
	return availability.Query{
		Service: availability.Service{ID: sv.ID, Duration: sv.Duration, BufferBefore: sv.BufferBefore,
			BufferAfter: sv.BufferAfter, RequiredSkills: sv.RequiredSkills},
		Now: now, MinNotice: cfg.MinNotice, Horizon: cfg.Horizon, Step: cfg.Step,
	}
}

// alternatives proposes up to five other starts of this staff member,
// nearest first, within a day of the refused one.
func (a *scheduleActor) alternatives(q availability.Query, s availability.Staff, start time.Time) []availability.Slot {
	wanted := availability.Slot{Start: start, StaffID: a.staffID}
	q.From, q.To = start.Add(-24*time.Hour), start.Add(24*time.Hour)
	return availability.Alternatives(q, []availability.Staff{s}, nil, wanted, 5)
}

func (a *scheduleActor) hold(c actor.Context, m *Hold) {
	began, now := time.Now(), a.deps.Now()
	if m.AppointmentID == "" || m.ClientID == "" {
		c.Respond(&HoldReply{Err: fmt.Errorf("%w: a hold needs an appointment id and a client", ErrInvalid)})
		return
	}
	if prev, dup := a.appts[m.AppointmentID]; dup {
		// A retry of the same request (ids derive from idempotency keys)
		// gets the appointment it made; anything else reusing the id is
		// refused. The answer waits, like a refusal, for what is pending
		// (the hold itself may be): were it fenced, the appointment never
		// existed and the retry is told to retry again.
		if prev.ClientID == m.ClientID && prev.ServiceID == m.Service.ID && prev.Start.Equal(m.Start) {
			again := &HoldReply{Appointment: prev}
			a.commits.Refuse(c, again, func(err error) {
				*again = HoldReply{Err: fmt.Errorf("%w: %w", ErrRetry, err)}
			})
			return
		}
		c.Respond(&HoldReply{Err: fmt.Errorf("%w: appointment id %s already used", ErrInvalid, m.AppointmentID)})
		return
	}
	if a.claimLapsing(now, m.ClaimUntil) {
		c.Respond(&HoldReply{Err: fmt.Errorf("%w: the resource claim lapses too soon", ErrRetry)})
		return
	}
	q := a.query(m.Service, now)
	s := a.cachedCalendar(now)
	free, err := a.freeAt(q, s, m.Service, m.Start)
	if err != nil {
		c.Respond(&HoldReply{Err: fmt.Errorf("%w: %w", ErrInvalid, err)})
		return
	}
	if !free {
		if prev, ok := a.heldBy(m, now); ok {
			// The client holds this very slot already (a second device, a
			// retry under a new key): the holder wins its own slot and gets
			// its hold back; only others are refused. It waits, like a
			// refusal, for what is pending (the hold may be).
			a.deps.Metrics.claim("hold", "own_hold", began)
			again := &HoldReply{Appointment: prev}
			a.commits.Refuse(c, again, func(err error) {
				*again = HoldReply{Err: fmt.Errorf("%w: %w", ErrRetry, err)}
			})
			return
		}
		a.deps.Metrics.claim("hold", "slot_taken", began)
		refusal := &HoldReply{Err: ErrSlotTaken, Alternatives: a.alternativesAt(now, m.Service, m.Start)}
		a.refuse(c, refusal, &refusal.Err)
		return
	}
	ap := persistence.Appointment{
		ID: m.AppointmentID, StaffID: a.staffID, ResourceID: m.Service.ResourceID, ServiceID: m.Service.ID,
		ClientID: m.ClientID, Start: m.Start.UTC(), End: m.Start.Add(m.Service.Duration).UTC(),
		BufferBefore: m.Service.BufferBefore, BufferAfter: m.Service.BufferAfter,
		Status: persistence.StatusHeld, HoldExpiresAt: persistence.CanonicalTime(now.Add(a.deps.Config.HoldTTL)),
		PriceMinor: m.Service.PriceMinor, DepositMinor: deposit(m.Service),
		Version: 1, CreatedAt: persistence.CanonicalTime(now), UpdatedAt: persistence.CanonicalTime(now),
	}
	a.put(ap) // taken from now on, before it is durable
	a.touchHeld(ap)
	a.armExpiryBy(c, ap.HoldExpiresAt)
	sender := c.Sender()
	remember := a.keys.Remember(m.Key, ap, now)
	a.commits.Enqueue(c, batch.Op{Kind: "hold", Start: began,
		Apply: func(ctx context.Context, tx persistence.Tx) error {
			if err := remember(ctx, tx); err != nil {
				return err
			}
			if err := tx.AppointmentInsert(ctx, ap); err != nil {
				return err
			}
			// No reason: a reason is the client's free text, sealed under
			// their key (two reads more per hold), and a hold has none.
			return record(ctx, tx, nil, ap, m.ActorID, "")
		},
		Reply: func(err error) { c.Send(sender, &HoldReply{Appointment: ap, Err: err}) },
	})
}

// put stores ap in the calendar, keeping byStart in step when it is new
// or moved.
func (a *scheduleActor) put(ap persistence.Appointment) {
	prev, known := a.appts[ap.ID]
	if !known || !prev.Start.Equal(ap.Start) {
		if known {
			k := prev.Start.UnixNano()
			a.byStart[k] = slices.DeleteFunc(a.byStart[k], func(id string) bool { return id == ap.ID })
			if len(a.byStart[k]) == 0 {
				delete(a.byStart, k)
			}
		}
		k := ap.Start.UnixNano()
		a.byStart[k] = append(a.byStart[k], ap.ID)
	}
	a.queueHold(prev, known, ap)
	a.appts[ap.ID] = ap
}

// heldBy finds m's client's live hold of the very slot m asks for (same
// service, same start). Only refused claims look, so the scan of the
// calendar costs nothing on the winning path.
func (a *scheduleActor) heldBy(m *Hold, now time.Time) (persistence.Appointment, bool) {
	for _, id := range a.byStart[m.Start.UnixNano()] {
		if ap := a.appts[id]; ap.ClientID == m.ClientID && ap.Status == persistence.StatusHeld && ap.HoldExpiresAt.After(now) &&
			ap.ServiceID == m.Service.ID && ap.Start.Equal(m.Start) {
			return ap, true
		}
	}
	return persistence.Appointment{}, false
}

// unlessReplay answers a change whose key this activation answered before
// with that answer (or ErrReused, for a different request under the key),
// and otherwise lets decide run. The stored answer waits, like a refusal,
// for what is pending: it may be the change itself, and were its batch
// fenced, the answer never happened and the retry must retry again.
func (a *scheduleActor) unlessReplay(c actor.Context, key *keyed.Key, answer func(persistence.Appointment, error) (any, func(error)), decide func()) {
	ap, found, err := a.keys.Find(key, a.deps.Now())
	if !found {
		decide()
		return
	}
	reply, setErr := answer(ap, err)
	if err != nil {
		c.Respond(reply)
		return
	}
	a.commits.Refuse(c, reply, func(err error) { setErr(fmt.Errorf("%w: %w", ErrRetry, err)) })
}

// holdAnswer and changeAnswer build a replayed answer of each reply type,
// and how to turn it into a failure.
func holdAnswer(ap persistence.Appointment, err error) (any, func(error)) {
	r := &HoldReply{Appointment: ap, Err: err, Replayed: err == nil}
	return r, func(err error) { *r = HoldReply{Err: err} }
}

func changeAnswer(ap persistence.Appointment, err error) (any, func(error)) {
	r := &Reply{Appointment: ap, Err: err, Replayed: err == nil}
	return r, func(err error) { *r = Reply{Err: err} }
}

// refuse sends a slot_taken refusal once every change accepted before it
// is durable (batch.Refuse): the slot may be taken by one of them, and were
// their batch fenced it never was, so the caller gets a retryable error,
// never a false refusal. errp is the reply's error field. With nothing
// pending (a hot calendar's usual case) the refusal is answered at once,
// without the closures waiting would take.
func (a *scheduleActor) refuse(c actor.Context, reply any, errp *error) {
	if !a.commits.Pending() {
		c.Respond(reply)
		return
	}
	a.commits.Refuse(c, reply, func(err error) { *errp = fmt.Errorf("%w: %w", ErrRetry, err) })
}

// deposit is what the client pays to confirm, in minor units.
func deposit(sv persistence.Service) int64 {
	switch sv.DepositPolicy {
	case persistence.DepositPercent:
		return sv.PriceMinor * sv.DepositValue / 100
	case persistence.DepositFixed:
		return sv.DepositValue
	}
	return 0
}

// change applies a status change in memory now and writes it in the next
// batch, with the answer under key (nil: none); the reply waits for the
// write.
func (a *scheduleActor) change(c actor.Context, kind string, before persistence.Appointment, after persistence.Appointment, actorID, reason string, key *keyed.Key) {
	a.changeAnd(c, kind, before, after, actorID, reason, key, nil)
}

// changeAnd is change with also (nil: nothing) written in the same
// transaction, after the change, at the change's time: what must happen
// if and only if the change does, such as giving back what a cancelled
// appointment spent. Should also fail, the batch fails with it, the
// change is answered as retryable and nothing of it is kept.
func (a *scheduleActor) changeAnd(c actor.Context, kind string, before persistence.Appointment, after persistence.Appointment, actorID, reason string, key *keyed.Key,
	also func(ctx context.Context, tx persistence.Tx, at time.Time) error) {
	began, now := time.Now(), a.deps.Now()
	after.Version = before.Version + 1
	after.UpdatedAt = persistence.CanonicalTime(now) // as stored, so memory and database agree
	a.put(after)
	if inView(before, now) || inView(after, now) {
		a.touch()
	} // else the view at now stands: recording a lapsed hold (cachedCalendar drops it)
	remember := a.keys.Remember(key, after, now)
	sender := c.Sender() // nil for the actor's own timer
	a.commits.Enqueue(c, batch.Op{Kind: kind, Start: began,
		Apply: func(ctx context.Context, tx persistence.Tx) error {
			if err := remember(ctx, tx); err != nil {
				return err
			}
			stored := after
			stored.Version = before.Version // AppointmentUpdate checks the stored version
			if _, err := tx.AppointmentUpdate(ctx, stored); err != nil {
				return err
			}
			if err := record(ctx, tx, &before, after, actorID, reason); err != nil {
				return err
			}
			if also != nil {
				return also(ctx, tx, after.UpdatedAt)
			}
			return nil
		},
		Reply: func(err error) {
			if sender != nil {
				c.Send(sender, &Reply{Appointment: after, Err: err})
			}
		},
	})
}

// armExpiry sets the timer for the earliest live hold's expiry. Expired
// holds block nothing whether or not this has run; the timer only records
// them (status expired, a transition, an event that frees the slot for
// the waitlist).
func (a *scheduleActor) armExpiry(c actor.Context) {
	if a.timer != nil {
		a.timer.Stop()
		a.timer, a.timerAt = nil, time.Time{}
	}
	if next, ok := a.nextHold(); ok {
		a.armExpiryBy(c, next.HoldExpiresAt)
	}
}

// armExpiryBy makes the timer fire by t (a new hold's expiry) without
// walking the calendar: a timer already due by then stays, since a new
// hold cannot make an earlier one lapse later. A timer that has fired
// meanwhile has its expireHolds queued, which re-arms from the calendar.
func (a *scheduleActor) armExpiryBy(c actor.Context, t time.Time) {
	if a.timer != nil && !a.timerAt.After(t) {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	self, root := c.Self(), c.ActorSystem().Root
	a.timer, a.timerAt = time.AfterFunc(max(t.Sub(a.deps.Now()), minTimer), func() { root.Send(self, expireHolds{}) }), t
}

// expireChunk bounds the lapses one pass records. After a peak a popular
// calendar has thousands of holds lapsing together; written as one batch
// they were one transaction of thousands of statements, which ran past
// the store's deadline, failed, and failed again after every reload,
// while the calendar's claims answered 503 (reproduced: a 20 s spread,
// holds of a minute, then 600 claims/s). A chunk is a batch of ordinary
// size that shares the group commit with the claims, and the node records
// at most Config.LapsesPerSecond lapses a second over all its calendars.
const expireChunk = 64

// lapseRetry is how soon a pass refused by the node's lapse rate tries
// again.
const lapseRetry = 100 * time.Millisecond

// expire records the holds that have lapsed, expireChunk at a time and
// within the node's lapse rate: when more remain, the next pass runs once
// this one's changes are written (or failed), so chunks do not pile up in
// one batch meanwhile. Then it re-arms the timer.
func (a *scheduleActor) expire(c actor.Context) {
	now := a.deps.Now()
	budget := expireChunk
	if a.deps.lapses != nil { // what the node's lapse rate allows now
		budget = min(budget, int(a.deps.lapses.Tokens()))
	}
	if next, ok := a.nextHold(); ok && !next.HoldExpiresAt.After(now) && budget < 1 {
		a.rearmExpiry(c, now.Add(lapseRetry))
		return
	}
	lapsed := a.lapsedHolds(now, budget)
	more := len(lapsed) > budget
	if more {
		a.requeue(lapsed[budget:])
		lapsed = lapsed[:budget]
	}
	if len(lapsed) > 0 && a.deps.lapses != nil && !a.deps.lapses.AllowN(time.Now(), len(lapsed)) {
		a.requeue(lapsed) // another calendar took the tokens meanwhile
		a.rearmExpiry(c, now.Add(lapseRetry))
		return
	}
	for _, ap := range lapsed {
		after := ap
		after.Status = persistence.StatusExpired
		// A lapsed hold gives back the package session and voucher
		// debits it spent, in the write that records the lapse.
		a.changeAnd(c, "expire", ap, after, "system", "hold expired", nil, giveBack(ap.ID))
	}
	if more {
		self, root := c.Self(), c.ActorSystem().Root
		again := func(error) { root.Send(self, expireHolds{}) }
		if !a.commits.AfterPending(again) {
			again(nil)
		}
		return // the next pass re-arms the timer
	}
	a.armExpiry(c)
}

// rearmExpiry replaces the timer (fired, or due later) with one due at t.
func (a *scheduleActor) rearmExpiry(c actor.Context, t time.Time) {
	if a.timer != nil {
		a.timer.Stop()
		a.timer, a.timerAt = nil, time.Time{}
	}
	a.armExpiryBy(c, t)
}

func (a *scheduleActor) find(c actor.Context, id string) (persistence.Appointment, bool) {
	ap, ok := a.appts[id]
	if !ok {
		c.Respond(&Reply{Err: ErrNotFound})
	}
	return ap, ok
}

func (a *scheduleActor) confirm(c actor.Context, m *Confirm) {
	ap, ok := a.find(c, m.AppointmentID)
	if !ok {
		return
	}
	now := a.deps.Now()
	switch {
	case ap.Status == persistence.StatusConfirmed:
		c.Respond(&Reply{Appointment: ap}) // confirming twice is harmless
		return
	case ap.Status == persistence.StatusExpired:
		c.Respond(&Reply{Appointment: ap, Err: ErrHoldExpired})
		return
	case ap.Status != persistence.StatusHeld:
		c.Respond(&Reply{Appointment: ap, Err: ErrTransition})
		return
	case !ap.Live(now):
		c.Respond(&Reply{Appointment: ap, Err: ErrHoldExpired})
		return
	}
	after := ap
	after.Status, after.HoldExpiresAt = persistence.StatusConfirmed, time.Time{}
	a.change(c, "confirm", ap, after, m.ActorID, m.Reason, m.Key)
}

func (a *scheduleActor) cancel(c actor.Context, m *Cancel) {
	ap, ok := a.find(c, m.AppointmentID)
	if !ok {
		return
	}
	now := a.deps.Now()
	if !ap.Live(now) {
		c.Respond(&Reply{Appointment: ap, Err: ErrTransition})
		return
	}
	if !m.Override && ap.Status == persistence.StatusConfirmed && m.Cutoff > 0 && ap.Start.Sub(now) < m.Cutoff {
		c.Respond(&Reply{Appointment: ap, Err: ErrCutoff})
		return
	}
	after := ap
	after.Status = persistence.StatusCancelled
	var also func(context.Context, persistence.Tx, time.Time) error
	if givesBack(ap, m.Cutoff, now) {
		also = giveBack(ap.ID)
	}
	a.changeAnd(c, "cancel", ap, after, m.ActorID, m.Reason, m.Key, also)
}

// givesBack decides whether cancelling ap at now gives back the package
// session and voucher debits it spent: a hold always (it was never a
// booking, and letting it lapse would give them back anyway), a booking
// when it is cancelled no closer to its start than the service's
// cancellation cut-off. A later cancellation keeps them even when staff
// override the cut-off to cancel. Decided here, on the actor's clock and
// the cut-off the cancel was checked against, and applied in the
// cancel's own transaction, so the decision and the give-back are one
// durable fact with the cancellation.
func givesBack(ap persistence.Appointment, cutoff time.Duration, now time.Time) bool {
	return ap.Status == persistence.StatusHeld || cutoff <= 0 || ap.Start.Sub(now) >= cutoff
}

// giveBack returns what gives back the appointment's package session and
// voucher debits (idempotent: persistence.ReleaseCredits).
func giveBack(appointmentID string) func(context.Context, persistence.Tx, time.Time) error {
	return func(ctx context.Context, tx persistence.Tx, at time.Time) error {
		return persistence.ReleaseCredits(ctx, tx, appointmentID, at)
	}
}

func (a *scheduleActor) checkIn(c actor.Context, m *CheckIn) {
	ap, ok := a.find(c, m.AppointmentID)
	if !ok {
		return
	}
	now := a.deps.Now()
	switch {
	case ap.Status == persistence.StatusConfirmed && !ap.CheckedInAt.IsZero():
		c.Respond(&Reply{Appointment: ap})
	case ap.Status != persistence.StatusConfirmed || now.Before(ap.Start.Add(-checkInOpens)) || !now.Before(ap.End):
		c.Respond(&Reply{Appointment: ap, Err: ErrTransition})
	default:
		after := ap
		after.CheckedInAt = persistence.CanonicalTime(now)
		a.change(c, "check_in", ap, after, m.ActorID, "checked in", m.Key)
	}
}

func (a *scheduleActor) close(c actor.Context, id, actorID, reason string, key *keyed.Key, to persistence.AppointmentStatus) {
	ap, ok := a.find(c, id)
	if !ok {
		return
	}
	if ap.Status != persistence.StatusConfirmed || a.deps.Now().Before(ap.Start) {
		c.Respond(&Reply{Appointment: ap, Err: ErrTransition})
		return
	}
	after := ap
	after.Status = to
	a.change(c, string(to), ap, after, actorID, reason, key)
}

func (a *scheduleActor) reschedule(c actor.Context, m *Reschedule) {
	ap, ok := a.find(c, m.AppointmentID)
	if !ok {
		return
	}
	now := a.deps.Now()
	if !ap.Live(now) || ap.ServiceID != m.Service.ID {
		c.Respond(&Reply{Appointment: ap, Err: ErrTransition})
		return
	}
	if !m.Override && ap.Status == persistence.StatusConfirmed && m.Service.RescheduleCutoff > 0 && ap.Start.Sub(now) < m.Service.RescheduleCutoff {
		c.Respond(&Reply{Appointment: ap, Err: ErrCutoff})
		return
	}
	if a.claimLapsing(now, m.ClaimUntil) {
		c.Respond(&Reply{Appointment: ap, Err: fmt.Errorf("%w: the resource claim lapses too soon", ErrRetry)})
		return
	}
	q := a.query(m.Service, now)
	s := a.calendar(now, ap.ID) // its own old slot does not block the move
	free, err := availability.Free(q, s, nil, m.Start)
	if err != nil {
		c.Respond(&Reply{Err: err})
		return
	}
	if !free {
		a.deps.Metrics.claim("reschedule", "slot_taken", time.Now())
		refusal := &Reply{Appointment: ap, Err: ErrSlotTaken, Alternatives: a.alternatives(q, s, m.Start)}
		a.refuse(c, refusal, &refusal.Err)
		return
	}
	after := ap
	after.Start, after.End = m.Start.UTC(), m.Start.Add(m.Service.Duration).UTC()
	a.change(c, "reschedule", ap, after, m.ActorID, "rescheduled", m.Key)
}

// slots answers through the memo; the reply's Slots are shared and
// read-only. The Directory answers most queries from the published
// snapshot instead (snapshot.go); the ones that reach the actor found
// none exact, and their answer publishes one.
func (a *scheduleActor) slots(c actor.Context, m *SlotsQuery) {
	out, load, err := a.slotsIn(a.deps.Now(), m.Service, m.From, m.To)
	c.Respond(&SlotsReply{Slots: out, Load: load, Err: err})
}

// record writes, with a change, its transition (when the status changed)
// and its AppointmentChanged event, so the history and the notification
// commit with the change itself. before is nil for a new appointment.
func record(ctx context.Context, tx persistence.Tx, before *persistence.Appointment, after persistence.Appointment, actorID, reason string) error {
	ev := persistence.AppointmentChangedEvent(before, after, reason)
	if before == nil || before.Status != after.Status {
		if err := tx.TransitionAppend(ctx, persistence.Transition{ID: newID(), AppointmentID: after.ID,
			From: persistence.AppointmentStatus(ev.FromStatus), To: after.Status, At: after.UpdatedAt, ActorID: actorID, Reason: reason}); err != nil {
			return err
		}
	}
	if err := persistence.SealAppointmentReason(ctx, tx, ev); err != nil {
		return err
	}
	out, err := persistence.NewOutboxEvent("appointment/"+after.ID, "", actorID, ev, after.UpdatedAt)
	if err != nil {
		return err
	}
	return tx.OutboxAppend(ctx, out)
}
