package catalogue

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var t0 = time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)

var boss = service.Caller{Claims: auth.Claims{Subject: "boss", Role: auth.RoleAdmin}, RequestID: "req-1"}

type fixture struct {
	t     *testing.T
	store persistence.Store
	svc   *Service
}

// newFixture is a Service on a fresh SQLite store, a fixed clock and a
// cache whose entries outlive the test, so only an invalidation reloads.
func newFixture(t *testing.T) *fixture {
	st := sqlitetest.Open(t, persistence.Options{})
	return &fixture{t: t, store: st, svc: New(Deps{Store: st, Now: func() time.Time { return t0 }, CacheTTL: time.Hour})}
}

// in runs fn in one transaction, as the gateway's idempotency wrapper
// does, and returns its error.
func (f *fixture) in(fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := f.t.Context()
	return f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

func (f *fixture) must(fn func(ctx context.Context, tx persistence.Tx) error) {
	f.t.Helper()
	if err := f.in(fn); err != nil {
		f.t.Fatal(err)
	}
}

// effects returns the audit entries (newest first) and pending events.
func (f *fixture) effects() (audit []persistence.AuditEntry, events []*messages.Event) {
	f.t.Helper()
	var out []persistence.OutboxEvent
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		if audit, err = tx.AuditList(ctx, persistence.AuditListParams{Limit: 1000}); err != nil {
			return err
		}
		out, err = tx.OutboxPending(ctx, 1000)
		return err
	})
	for _, o := range out {
		var ev messages.Event
		if err := proto.Unmarshal(o.Payload, &ev); err != nil {
			f.t.Fatal(err)
		}
		events = append(events, &ev)
	}
	return audit, events
}

func (f *fixture) changes() []*messages.CatalogueChanged {
	_, events := f.effects()
	var out []*messages.CatalogueChanged
	for _, ev := range events {
		var cc messages.CatalogueChanged
		if ev.Payload.UnmarshalTo(&cc) == nil {
			out = append(out, &cc)
		}
	}
	return out
}

func massage(version int64) ServiceInput {
	return ServiceInput{ID: "massage-60", Name: " Masaje relajante ", Category: "massage", DurationMinutes: 60,
		PriceMinor: 12_000_000, BufferAfterMinutes: 15, RequiredSkills: []string{"massage", "aromatherapy", "massage"},
		DepositPolicy: "percent", DepositValue: 30, CancelCutoffMinutes: 1440, Active: true, Version: version}
}

func TestPutServiceAuditsAnnouncesAndConflicts(t *testing.T) {
	f := newFixture(t)
	var stored persistence.Service
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = f.svc.PutService(ctx, tx, boss, massage(0))
		return err
	})
	if stored.Version != 1 || stored.Name != "Masaje relajante" || !slices.Equal(stored.RequiredSkills, []string{"aromatherapy", "massage"}) ||
		stored.Duration != time.Hour || !stored.UpdatedAt.Equal(t0) {
		t.Fatalf("stored %+v", stored)
	}
	audit, _ := f.effects()
	if len(audit) != 1 || audit[0].Action != "service.put" || audit[0].Subject != "service/massage-60" ||
		audit[0].ActorID != "boss" || audit[0].ActorRole != "admin" || audit[0].RequestID != "req-1" {
		t.Fatalf("audit %+v", audit)
	}
	var detail ServiceJSON
	if err := json.Unmarshal(audit[0].Detail, &detail); err != nil || detail.Version != 1 || detail.DurationMinutes != 60 {
		t.Fatalf("audit detail %s: %v", audit[0].Detail, err)
	}
	if got := f.changes(); len(got) != 1 || got[0].Kind != "service" || got[0].Id != "massage-60" || got[0].Version != 1 {
		t.Fatalf("events %v", got)
	}

	// A stale version: 409 version_conflict naming the version sent, and
	// nothing written.
	err := f.in(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.PutService(ctx, tx, boss, massage(0))
		return err
	})
	if servicetest.Code(err) != fault.CodeVersionConflict || err.(*fault.Error).Details.(map[string]any)["version"] != int64(0) {
		t.Fatalf("stale put: %v", err)
	}
	if audit, _ := f.effects(); len(audit) != 1 {
		t.Fatalf("a refused put was audited: %d entries", len(audit))
	}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.PutService(ctx, tx, boss, massage(1))
		return err
	})
	if got := f.changes(); len(got) != 2 || got[1].Version != 2 {
		t.Fatalf("events after update %v", got)
	}
}

func TestPutServiceRefusals(t *testing.T) {
	f := newFixture(t)
	put := func(in ServiceInput) error {
		return f.in(func(ctx context.Context, tx persistence.Tx) error {
			_, err := f.svc.PutService(ctx, tx, boss, in)
			return err
		})
	}
	bad := ServiceInput{ID: "x", Name: "", Category: "x", DurationMinutes: 3, PriceMinor: -1, BufferBeforeMinutes: -5,
		RequiredSkills: []string{"Bad Skill"}, DepositPolicy: "fixed", DepositValue: 10, Version: -1}
	got := servicetest.Fields(put(bad))
	for _, want := range []string{"name", "duration_minutes", "price_minor", "buffer_before_minutes", "required_skills", "deposit_value", "version"} {
		if !slices.Contains(got, want) {
			t.Errorf("no error for %s in %v", want, got)
		}
	}
	for _, n := range []int{-1, persistence.MaxDepositNoShows + 1} {
		in := ServiceInput{ID: "x", Name: "x", Category: "x", DurationMinutes: 30, PriceMinor: 100, DepositPolicy: "fixed", DepositValue: 10, DepositNoShows: n}
		if names := servicetest.Fields(put(in)); !slices.Equal(names, []string{"deposit_no_shows"}) {
			t.Fatalf("deposit_no_shows %d: %v", n, names)
		}
	}
	if names := servicetest.Fields(put(ServiceInput{ID: "x", Name: "x", Category: "x", DurationMinutes: 30, DepositNoShows: 2})); !slices.Equal(names, []string{"deposit_no_shows"}) {
		t.Fatalf("deposit_no_shows without a deposit: %v", names)
	}
	sauna := ServiceInput{ID: "sauna-30", Name: "Sauna", Category: "wet", DurationMinutes: 30, ResourceID: "sauna", Active: true}
	if names := servicetest.Fields(put(sauna)); !slices.Equal(names, []string{"resource_id"}) {
		t.Fatalf("unknown resource: %v", names)
	}
	if names := servicetest.Fields(put(ServiceInput{ID: "Not_A_Slug!"})); !slices.Equal(names, []string{"id"}) {
		t.Fatalf("bad id: %v", names)
	}
	if names := servicetest.Fields(put(ServiceInput{ID: "x", Name: "x", Category: "x", DurationMinutes: 30, DepositPolicy: "later"})); !slices.Equal(names, []string{"deposit_policy"}) {
		t.Fatalf("bad policy: %v", names)
	}
	if audit, events := f.effects(); len(audit) != 0 || len(events) != 0 {
		t.Fatalf("refusals left effects: %d audit, %d events", len(audit), len(events))
	}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.PutResource(ctx, tx, boss, ResourceInput{ID: "sauna", Name: "Sauna", Capacity: 4, Active: true})
		return err
	})
	if err := put(sauna); err != nil {
		t.Fatalf("service with its resource: %v", err)
	}
}

// TestCacheInvalidatedByChanges: the booking path's read model (whose
// entries here outlive the test) sees every change the Service makes at
// once, and a change made behind its back only after an invalidation.
func TestCacheInvalidatedByChanges(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	cache := f.svc.Cache()
	services, staff, err := cache.Snapshot(ctx)
	if err != nil || len(services) != 0 || len(staff) != 0 {
		t.Fatalf("empty snapshot: %v %v %v", services, staff, err)
	}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		if _, err := f.svc.PutService(ctx, tx, boss, massage(0)); err != nil {
			return err
		}
		_, err := f.svc.PutStaff(ctx, tx, boss, StaffInput{ID: "ana", Name: "Ana", TimeZone: "America/Bogota", Active: true})
		return err
	})
	services, staff, err = cache.Snapshot(ctx)
	if err != nil || services["massage-60"].Version != 1 || len(staff) != 1 || staff[0].ID != "ana" {
		t.Fatalf("after puts: %v %v %v", services, staff, err)
	}
	// A write that bypasses the Service (another node's) stays unseen
	// within the ttl...
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.StaffPut(ctx, persistence.StaffMember{ID: "eva", Name: "Eva", TimeZone: "America/Bogota", Active: true, UpdatedAt: t0})
		return err
	})
	if _, staff, _ = cache.Snapshot(ctx); len(staff) != 1 {
		t.Fatalf("cache reloaded without invalidation: %v", staff)
	}
	// ...and any change through the Service drops the cache, time off
	// included.
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.AddTimeOff(ctx, tx, boss, TimeOffInput{StaffID: "ana", Start: t0, End: t0.Add(time.Hour), Reason: "doctor"})
		return err
	})
	if _, staff, _ = cache.Snapshot(ctx); len(staff) != 2 {
		t.Fatalf("cache not invalidated by a change: %v", staff)
	}
}

func TestStaffOverridesAndTimeOff(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ana := StaffInput{ID: "ana", Name: "Ana", Skills: []string{"massage"}, TimeZone: "America/Bogota", Active: true,
		WeeklyHours: map[string][]ClockRange{"monday": {{Start: "14:00", End: "19:00"}, {Start: "09:00", End: "13:00"}}}}
	var m persistence.StaffMember
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		m, err = f.svc.PutStaff(ctx, tx, boss, ana)
		return err
	})
	if v := StaffView(m); !slices.Equal(v.WeeklyHours["monday"], []ClockRange{{Start: "09:00", End: "13:00"}, {Start: "14:00", End: "19:00"}}) {
		t.Fatalf("hours %+v", v.WeeklyHours)
	}
	// Touching and overlapping ranges are one shift.
	bea := StaffInput{ID: "bea", Name: "Bea", TimeZone: "America/Bogota", Active: true,
		WeeklyHours: map[string][]ClockRange{"monday": {{Start: "12:00", End: "15:00"}, {Start: "09:00", End: "12:00"}},
			"tuesday": {{Start: "09:00", End: "13:00"}, {Start: "12:00", End: "14:00"}}}}
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		m, err = f.svc.PutStaff(ctx, tx, boss, bea)
		return err
	})
	if v := StaffView(m); !slices.Equal(v.WeeklyHours["monday"], []ClockRange{{Start: "09:00", End: "15:00"}}) ||
		!slices.Equal(v.WeeklyHours["tuesday"], []ClockRange{{Start: "09:00", End: "14:00"}}) {
		t.Fatalf("merged hours %+v", v.WeeklyHours)
	}
	for name, tc := range map[string]struct {
		in   StaffInput
		want []string
	}{
		"bad clock": {StaffInput{ID: "b", Name: "B", TimeZone: "America/Bogota",
			WeeklyHours: map[string][]ClockRange{"monday": {{Start: "09:00", End: "13:00"}, {Start: "12:00", End: "25:00"}}}}, []string{"weekly_hours.monday[1]"}},
		"inverted": {StaffInput{ID: "b", Name: "B", TimeZone: "America/Bogota",
			WeeklyHours: map[string][]ClockRange{"monday": {{Start: "13:00", End: "09:00"}}}}, []string{"weekly_hours.monday[0]"}},
		"bad day":  {StaffInput{ID: "b", Name: "B", TimeZone: "America/Bogota", WeeklyHours: map[string][]ClockRange{"funday": nil}}, []string{"weekly_hours"}},
		"bad zone": {StaffInput{ID: "b", Name: "B", TimeZone: "Local"}, []string{"time_zone"}},
	} {
		err := f.in(func(ctx context.Context, tx persistence.Tx) error {
			_, err := f.svc.PutStaff(ctx, tx, boss, tc.in)
			return err
		})
		if got := servicetest.Fields(err); !slices.Equal(got, tc.want) {
			t.Errorf("%s: fields %v, want %v", name, got, tc.want)
		}
	}

	putOverride := func(in OverrideInput) error {
		return f.in(func(ctx context.Context, tx persistence.Tx) error {
			_, err := f.svc.PutOverride(ctx, tx, boss, in)
			return err
		})
	}
	if err := putOverride(OverrideInput{StaffID: "ana", Date: "2026-12-24", Closed: true}); err != nil {
		t.Fatal(err)
	}
	if got := servicetest.Fields(putOverride(OverrideInput{StaffID: "ana", Date: "2026-12-21", Closed: true,
		Ranges: []ClockRange{{Start: "10:00", End: "16:00"}}})); !slices.Equal(got, []string{"ranges"}) {
		t.Fatalf("closed with ranges: %v", got)
	}
	if got := servicetest.Fields(putOverride(OverrideInput{StaffID: "ana", Date: "2026-13-01", Closed: true})); !slices.Equal(got, []string{"date"}) {
		t.Fatalf("bad date: %v", got)
	}
	if c := servicetest.Code(putOverride(OverrideInput{StaffID: "nobody", Date: "2026-12-24", Closed: true})); c != fault.CodeNotFound {
		t.Fatalf("unknown staff: %q", c)
	}
	if _, err := f.svc.Overrides(ctx, "ana", "2026-12-01", "2028-02-01"); !slices.Equal(servicetest.Fields(err), []string{"to"}) {
		t.Fatalf("span over 400 days: %v", err)
	}
	if list, err := f.svc.Overrides(ctx, "ana", "2026-12-01", "2027-01-01"); err != nil || len(list) != 1 || !list[0].Closed {
		t.Fatalf("overrides %v %v", list, err)
	}
	deleteOverride := func() error {
		return f.in(func(ctx context.Context, tx persistence.Tx) error {
			return f.svc.DeleteOverride(ctx, tx, boss, "ana", "2026-12-24")
		})
	}
	if err := deleteOverride(); err != nil {
		t.Fatal(err)
	}
	if c := servicetest.Code(deleteOverride()); c != fault.CodeNotFound {
		t.Fatalf("delete twice: %q", c)
	}

	var off persistence.TimeOff
	f.must(func(ctx context.Context, tx persistence.Tx) (err error) {
		off, err = f.svc.AddTimeOff(ctx, tx, boss, TimeOffInput{StaffID: "ana", Start: t0, End: t0.Add(2 * time.Hour), Reason: " doctor "})
		return err
	})
	if off.Reason != "doctor" {
		t.Fatalf("time off %+v", off)
	}
	for name, in := range map[string]TimeOffInput{
		"inverted": {StaffID: "ana", Start: t0, End: t0.Add(-time.Hour)},
		"too long": {StaffID: "ana", Start: t0, End: t0.Add(400 * 24 * time.Hour)},
	} {
		err := f.in(func(ctx context.Context, tx persistence.Tx) error {
			_, err := f.svc.AddTimeOff(ctx, tx, boss, in)
			return err
		})
		if got := servicetest.Fields(err); !slices.Equal(got, []string{"end"}) {
			t.Errorf("%s: %v", name, got)
		}
	}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.PutStaff(ctx, tx, boss, StaffInput{ID: "eva", Name: "Eva", TimeZone: "America/Bogota", Active: true})
		return err
	})
	deleteOff := func(staff, id string) error {
		return f.in(func(ctx context.Context, tx persistence.Tx) error {
			return f.svc.DeleteTimeOff(ctx, tx, boss, staff, id)
		})
	}
	if c := servicetest.Code(deleteOff("eva", off.ID)); c != fault.CodeNotFound {
		t.Fatalf("deleted through another staff member's path: %q", c)
	}
	if c := servicetest.Code(deleteOff("ana", "not-a-ulid")); c != fault.CodeNotFound {
		t.Fatalf("bad id: %q", c)
	}
	if err := deleteOff("ana", off.ID); err != nil {
		t.Fatal(err)
	}
	if list, err := f.svc.TimeOff(ctx, "ana", t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil || len(list) != 0 {
		t.Fatalf("time off after delete: %v %v", list, err)
	}

	var n int
	for _, c := range f.changes() {
		if c.Kind == "staff" && c.Id == "ana" {
			n++
		}
	}
	// put, override put and delete, time off add and delete.
	if n != 5 {
		t.Fatalf("CatalogueChanged events for ana: %d, want 5", n)
	}
}

func TestResources(t *testing.T) {
	f := newFixture(t)
	put := func(in ResourceInput) (r persistence.Resource, err error) {
		err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
			r, err = f.svc.PutResource(ctx, tx, boss, in)
			return err
		})
		return r, err
	}
	if _, err := put(ResourceInput{ID: "room", Capacity: 0}); !slices.Equal(servicetest.Fields(err), []string{"name", "capacity"}) {
		t.Fatalf("fields %v", err)
	}
	if r, err := put(ResourceInput{ID: "room", Name: "Room 1", Capacity: 1, Active: true}); err != nil || r.Version != 1 {
		t.Fatalf("put: %+v %v", r, err)
	}
	if _, err := put(ResourceInput{ID: "room", Name: "Room 1", Capacity: 2, Active: true}); servicetest.Code(err) != fault.CodeVersionConflict {
		t.Fatalf("stale: %v", err)
	}
	if list, err := f.svc.Resources(t.Context()); err != nil || len(list) != 1 || list[0].Capacity != 1 {
		t.Fatalf("resources %v %v", list, err)
	}
	if got := f.changes(); len(got) != 1 || got[0].Kind != "resource" || got[0].Id != "room" {
		t.Fatalf("events %v", got)
	}
}

func TestReadsHideInactiveFromThePublic(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	old := ServiceInput{ID: "old", Name: "Old", Category: "x", DurationMinutes: 30}
	f.must(func(ctx context.Context, tx persistence.Tx) error {
		if _, err := f.svc.PutService(ctx, tx, boss, massage(0)); err != nil {
			return err
		}
		_, err := f.svc.PutService(ctx, tx, boss, old)
		return err
	})
	if _, err := f.svc.Service(ctx, "old", true); servicetest.Code(err) != fault.CodeNotFound || err.(*fault.Error).Message != "service not found" {
		t.Fatalf("inactive service is public: %v", err)
	}
	if sv, err := f.svc.Service(ctx, "old", false); err != nil || sv.Active {
		t.Fatalf("admin read: %+v %v", sv, err)
	}
	if list, _ := f.svc.Services(ctx, true); len(list) != 1 {
		t.Fatalf("public list %v", list)
	}
	if list, _ := f.svc.Services(ctx, false); len(list) != 2 {
		t.Fatalf("admin list %v", list)
	}
	if _, err := f.svc.StaffMember(ctx, "nobody"); servicetest.Code(err) != fault.CodeNotFound {
		t.Fatalf("absent staff: %v", err)
	}
}
