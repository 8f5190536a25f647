package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// bookingTests are the conformance tests of persistence.BookingStore.
var bookingTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"Services", testServices},
	{"Staff", testStaff},
	{"DateOverrides", testDateOverrides},
	{"TimeOff", testTimeOff},
	{"Resources", testResources},
	{"Calendars", testCalendars},
	{"CalendarActivateConcurrent", testCalendarActivateConcurrent},
	{"FencingSequential", testFencingSequential},
	{"Pipelined", testPipelined},
	{"PipelinedHolds", testPipelinedHolds},
	{"FencingInterleaved", testFencingInterleaved},
	{"Appointments", testAppointments},
	{"AppointmentList", testAppointmentList},
	{"AppointmentListByClient", testAppointmentListByClient},
	{"Transitions", testTransitions},
	{"BookingInvalid", testBookingInvalid},
}

// txVal runs fn in a transaction and returns its value and error.
func txVal[T any](t *testing.T, s persistence.Store, fn func(ctx context.Context, tx persistence.Tx) (T, error)) (T, error) {
	var v T
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		v, err = fn(ctx, tx)
		return err
	})
	return v, err
}

// mustVal is txVal failing the test on error.
func mustVal[T any](t *testing.T, s persistence.Store, fn func(ctx context.Context, tx persistence.Tx) (T, error)) T {
	t.Helper()
	v, err := txVal(t, s, fn)
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	return v
}

func wantLen[T any](t *testing.T, what string, got []T, err error, n int) {
	t.Helper()
	if err != nil || len(got) != n {
		t.Fatalf("%s = %+v, %v; want %d items", what, got, err, n)
	}
}

// putStaff stores a minimal active staff member (time off and overrides
// reference it).
func putStaff(t *testing.T, s persistence.Store, id string) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.StaffPut(ctx, persistence.StaffMember{ID: id, Name: id, TimeZone: "America/Bogota",
			Active: true, UpdatedAt: base})
		return err
	})
}

// ---- Catalogue ----

func testServices(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	put := func(sv persistence.Service) (persistence.Service, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Service, error) {
			return tx.ServicePut(ctx, sv)
		})
	}
	get := func(id string) (persistence.Service, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Service, error) {
			return tx.ServiceGet(ctx, id)
		})
	}
	list := func(activeOnly bool) ([]persistence.Service, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Service, error) {
			return tx.ServiceList(ctx, activeOnly)
		})
	}
	_, err := get("massage")
	wantErr(t, "get absent", err, persistence.ErrNotFound)
	got, err := list(false)
	wantLen(t, "list empty", got, err, 0)

	skills := []string{"swedish", "massage", "swedish"}
	sv := persistence.Service{
		ID: "massage", Name: "Masaje sueco", Category: "massage", Duration: 90 * time.Minute,
		PriceMinor: 18_000_000, BufferBefore: 5 * time.Minute, BufferAfter: 10*time.Minute + 30*time.Second,
		RequiredSkills: skills, ResourceID: "room-1", DepositPolicy: persistence.DepositPercent,
		DepositValue: 30, CancelCutoff: 24 * time.Hour, RescheduleCutoff: 12 * time.Hour, Active: true,
		UpdatedAt: base,
	}
	v1, err := put(sv)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	want := sv
	want.RequiredSkills, want.Version, want.UpdatedAt = []string{"massage", "swedish"}, 1, ct(base)
	wantEqual(t, "create", v1, want)
	wantEqual(t, "caller's skills", skills, []string{"swedish", "massage", "swedish"})
	g, err := get("massage")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	wantEqual(t, "get", g, want)

	_, err = put(sv)
	wantErr(t, "create existing", err, persistence.ErrConflict)
	future := v1
	future.Version = 7
	_, err = put(future)
	wantErr(t, "future version", err, persistence.ErrConflict)

	upd := v1
	upd.Name, upd.RequiredSkills, upd.ResourceID = "Masaje", nil, ""
	upd.DepositPolicy, upd.DepositValue, upd.DepositNoShows, upd.Active = persistence.DepositFixed, 5_000_000, 2, false
	upd.UpdatedAt = base.Add(time.Hour)
	v2, err := put(upd)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	want = upd
	want.Version, want.UpdatedAt = 2, ct(upd.UpdatedAt)
	wantEqual(t, "update", v2, want)
	g, _ = get("massage")
	wantEqual(t, "get after update", g, want)
	_, err = put(v1)
	wantErr(t, "stale version", err, persistence.ErrConflict)
	missing := v1
	missing.ID = "other"
	_, err = put(missing)
	wantErr(t, "update absent (ErrConflict, as StudioPut)", err, persistence.ErrConflict)

	for _, id := range []string{"facial", "zen", "aroma"} {
		if _, err := put(persistence.Service{ID: id, Name: id, Duration: 30 * time.Minute,
			DepositPolicy: persistence.DepositNone, Active: id != "zen", UpdatedAt: base}); err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	ids := func(ss []persistence.Service) (out []string) {
		for _, sv := range ss {
			out = append(out, sv.ID)
		}
		return out
	}
	all, err := list(false)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	wantEqual(t, "list all", ids(all), []string{"aroma", "facial", "massage", "zen"})
	wantEqual(t, "listed massage", all[2], v2)
	active, err := list(true)
	if err != nil {
		t.Fatalf("list active: %v", err)
	}
	wantEqual(t, "list active", ids(active), []string{"aroma", "facial"})
}

func testStaff(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	put := func(m persistence.StaffMember) (persistence.StaffMember, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.StaffMember, error) {
			return tx.StaffPut(ctx, m)
		})
	}
	get := func(id string) (persistence.StaffMember, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.StaffMember, error) {
			return tx.StaffGet(ctx, id)
		})
	}
	list := func(activeOnly bool) ([]persistence.StaffMember, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.StaffMember, error) {
			return tx.StaffList(ctx, activeOnly)
		})
	}
	_, err := get("ana")
	wantErr(t, "get absent", err, persistence.ErrNotFound)
	got, err := list(false)
	wantLen(t, "list empty", got, err, 0)

	m := persistence.StaffMember{ID: "ana", Name: "Ana", Skills: []string{"swedish", "facial"},
		TimeZone: "America/Bogota", Active: true, UpdatedAt: base}
	m.Weekly[time.Monday] = []persistence.ClockRange{{StartMinute: 14 * 60, EndMinute: 18 * 60}, {StartMinute: 9 * 60, EndMinute: 13 * 60}}
	m.Weekly[time.Saturday] = []persistence.ClockRange{{StartMinute: 0, EndMinute: persistence.MinutesPerDay}}
	v1, err := put(m)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	want := m
	want.Skills, want.Version, want.UpdatedAt = []string{"facial", "swedish"}, 1, ct(base)
	want.Weekly[time.Monday] = []persistence.ClockRange{{StartMinute: 9 * 60, EndMinute: 13 * 60}, {StartMinute: 14 * 60, EndMinute: 18 * 60}}
	wantEqual(t, "create", v1, want)
	g, err := get("ana")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	wantEqual(t, "get", g, want)

	_, err = put(m)
	wantErr(t, "create existing", err, persistence.ErrConflict)
	upd := v1
	upd.Skills, upd.Weekly, upd.Active, upd.TimeZone = nil, [7][]persistence.ClockRange{}, false, "UTC"
	upd.Weekly[time.Sunday] = []persistence.ClockRange{{StartMinute: 600, EndMinute: 601}}
	v2, err := put(upd)
	if err != nil || v2.Version != 2 {
		t.Fatalf("update = %+v, %v", v2, err)
	}
	g, _ = get("ana")
	wantEqual(t, "get after update", g, v2)
	_, err = put(v1)
	wantErr(t, "stale version", err, persistence.ErrConflict)
	missing := v1
	missing.ID = "nobody"
	_, err = put(missing)
	wantErr(t, "update absent", err, persistence.ErrConflict)

	putStaff(t, s, "bea")
	all, err := list(false)
	if err != nil || len(all) != 2 || all[0].ID != "ana" || all[1].ID != "bea" {
		t.Fatalf("list all = %+v, %v", all, err)
	}
	wantEqual(t, "listed ana", all[0], v2)
	active, err := list(true)
	if err != nil || len(active) != 1 || active[0].ID != "bea" {
		t.Fatalf("list active = %+v, %v", active, err)
	}
}

func testDateOverrides(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	putStaff(t, s, "ana")
	putStaff(t, s, "bea")
	put := func(o persistence.DateOverride) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.DateOverridePut(ctx, o) })
	}
	list := func(staff, from, to string) ([]persistence.DateOverride, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.DateOverride, error) {
			return tx.DateOverrideList(ctx, staff, from, to)
		})
	}
	del := func(staff, date string) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.DateOverrideDelete(ctx, staff, date)
		})
	}
	got, err := list("ana", "2025-03-01", "2025-04-01")
	wantLen(t, "list empty", got, err, 0)

	closed := persistence.DateOverride{StaffID: "ana", Date: "2025-03-15", Closed: true}
	extra := persistence.DateOverride{StaffID: "ana", Date: "2025-03-16",
		Ranges: []persistence.ClockRange{{StartMinute: 780, EndMinute: 900}, {StartMinute: 600, EndMinute: 720}}}
	later := persistence.DateOverride{StaffID: "ana", Date: "2025-03-20", Closed: true}
	other := persistence.DateOverride{StaffID: "bea", Date: "2025-03-16", Closed: true}
	for _, o := range []persistence.DateOverride{later, extra, closed, other} {
		if err := put(o); err != nil {
			t.Fatalf("put %+v: %v", o, err)
		}
	}
	extraWant := extra
	extraWant.Ranges = []persistence.ClockRange{{StartMinute: 600, EndMinute: 720}, {StartMinute: 780, EndMinute: 900}}
	got, err = list("ana", "2025-03-15", "2025-03-20")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	wantEqual(t, "list [15, 20)", got, []persistence.DateOverride{closed, extraWant})
	got, _ = list("ana", "2025-03-16", "2025-03-21")
	wantEqual(t, "list [16, 21)", got, []persistence.DateOverride{extraWant, later})
	got, err = list("ana", "2025-03-15", "2025-03-15")
	wantLen(t, "empty range", got, err, 0)

	// Replace: the closed day gets hours.
	reopened := persistence.DateOverride{StaffID: "ana", Date: "2025-03-15",
		Ranges: []persistence.ClockRange{{StartMinute: 480, EndMinute: 600}}}
	if err := put(reopened); err != nil {
		t.Fatalf("replace: %v", err)
	}
	got, _ = list("ana", "2025-03-15", "2025-03-16")
	wantEqual(t, "after replace", got, []persistence.DateOverride{reopened})

	if err := del("ana", "2025-03-16"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantErr(t, "delete absent", del("ana", "2025-03-16"), persistence.ErrNotFound)
	got, _ = list("ana", "2025-03-01", "2025-04-01")
	wantEqual(t, "after delete", got, []persistence.DateOverride{reopened, later})
	got, _ = list("bea", "2025-03-01", "2025-04-01")
	wantEqual(t, "other staff untouched", got, []persistence.DateOverride{other})

	wantErr(t, "override of an unknown staff member",
		put(persistence.DateOverride{StaffID: "nobody", Date: "2025-03-15", Closed: true}), persistence.ErrNotFound)
}

func testTimeOff(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	putStaff(t, s, "ana")
	putStaff(t, s, "bea")
	add := func(o persistence.TimeOff) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.TimeOffAdd(ctx, o) })
	}
	list := func(staff string, from, to time.Time) ([]persistence.TimeOff, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.TimeOff, error) {
			return tx.TimeOffList(ctx, staff, from, to)
		})
	}
	del := func(id string) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.TimeOffDelete(ctx, id) })
	}
	got, err := list("ana", base, base.Add(24*time.Hour))
	wantLen(t, "list empty", got, err, 0)

	t2 := persistence.TimeOff{ID: newID(), StaffID: "ana", Start: base.Add(5 * time.Hour), End: base.Add(6 * time.Hour), Reason: "dentist"}
	t1 := persistence.TimeOff{ID: newID(), StaffID: "ana", Start: base.Add(time.Hour), End: base.Add(3 * time.Hour), Reason: "errand"}
	tb := persistence.TimeOff{ID: newID(), StaffID: "bea", Start: base, End: base.Add(24 * time.Hour)}
	for _, o := range []persistence.TimeOff{t2, t1, tb} {
		if err := add(o); err != nil {
			t.Fatalf("add: %v", err)
		}
	}
	for _, o := range []*persistence.TimeOff{&t1, &t2, &tb} {
		o.Start, o.End = ct(o.Start), ct(o.End)
	}
	wantErr(t, "duplicate ID", add(t1), persistence.ErrConflict)
	wantErr(t, "unknown staff member", add(persistence.TimeOff{ID: newID(), StaffID: "nobody",
		Start: base, End: base.Add(time.Hour)}), persistence.ErrNotFound)

	got, err = list("ana", base, base.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	wantEqual(t, "list all, by start", got, []persistence.TimeOff{t1, t2})
	// Between them, touching both: t1 ends at from, t2 starts at to.
	got, err = list("ana", t1.End, t2.Start)
	wantLen(t, "touching boundaries", got, err, 0)
	got, _ = list("ana", t1.End.Add(-time.Microsecond), t2.Start.Add(time.Microsecond))
	wantEqual(t, "one microsecond into each", got, []persistence.TimeOff{t1, t2})
	got, _ = list("ana", t1.Start.Add(30*time.Minute), t1.Start.Add(40*time.Minute))
	wantEqual(t, "inside one", got, []persistence.TimeOff{t1})

	if err := del(t1.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	wantErr(t, "delete absent", del(t1.ID), persistence.ErrNotFound)
	got, _ = list("ana", base, base.Add(24*time.Hour))
	wantEqual(t, "after delete", got, []persistence.TimeOff{t2})
	got, _ = list("bea", base, base.Add(time.Hour))
	wantEqual(t, "other staff", got, []persistence.TimeOff{tb})
}

func testResources(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	put := func(r persistence.Resource) (persistence.Resource, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Resource, error) {
			return tx.ResourcePut(ctx, r)
		})
	}
	get := func(id string) (persistence.Resource, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Resource, error) {
			return tx.ResourceGet(ctx, id)
		})
	}
	list := func(activeOnly bool) ([]persistence.Resource, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Resource, error) {
			return tx.ResourceList(ctx, activeOnly)
		})
	}
	_, err := get("sauna")
	wantErr(t, "get absent", err, persistence.ErrNotFound)
	got, err := list(false)
	wantLen(t, "list empty", got, err, 0)

	r := persistence.Resource{ID: "sauna", Name: "Sauna", Capacity: 4, Active: true, UpdatedAt: base}
	v1, err := put(r)
	want := r
	want.Version, want.UpdatedAt = 1, ct(base)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	wantEqual(t, "create", v1, want)
	g, _ := get("sauna")
	wantEqual(t, "get", g, want)
	_, err = put(r)
	wantErr(t, "create existing", err, persistence.ErrConflict)

	upd := v1
	upd.Capacity, upd.Active, upd.Name = 6, false, "Sauna grande"
	v2, err := put(upd)
	if err != nil || v2.Version != 2 {
		t.Fatalf("update = %+v, %v", v2, err)
	}
	g, _ = get("sauna")
	wantEqual(t, "get after update", g, v2)
	_, err = put(v1)
	wantErr(t, "stale version", err, persistence.ErrConflict)
	missing := v1
	missing.ID = "spa-pool"
	_, err = put(missing)
	wantErr(t, "update absent", err, persistence.ErrConflict)

	if _, err := put(persistence.Resource{ID: "room-1", Name: "Cabina 1", Capacity: 1, Active: true}); err != nil {
		t.Fatalf("create room: %v", err)
	}
	all, err := list(false)
	if err != nil || len(all) != 2 || all[0].ID != "room-1" || all[1].ID != "sauna" {
		t.Fatalf("list all = %+v, %v", all, err)
	}
	wantEqual(t, "listed sauna", all[1], v2)
	active, err := list(true)
	if err != nil || len(active) != 1 || active[0].ID != "room-1" {
		t.Fatalf("list active = %+v, %v", active, err)
	}
}

// ---- Calendars and fencing ----

func activate(t *testing.T, s persistence.Store, cal string) int64 {
	t.Helper()
	return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
		return tx.CalendarActivate(ctx, cal)
	})
}

func checkEpoch(t *testing.T, s persistence.Store, cal string, epoch int64) error {
	return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.CalendarCheckEpoch(ctx, cal, epoch)
	})
}

func testCalendars(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const cal = "staff/ana"
	wantErr(t, "check before any activation", checkEpoch(t, s, cal, 0), persistence.ErrFenced)
	wantErr(t, "check epoch 1 before any activation", checkEpoch(t, s, cal, 1), persistence.ErrFenced)
	for want := int64(1); want <= 3; want++ {
		if got := activate(t, s, cal); got != want {
			t.Fatalf("activation %d returned epoch %d", want, got)
		}
	}
	if err := checkEpoch(t, s, cal, 3); err != nil {
		t.Fatalf("check with the current epoch: %v", err)
	}
	wantErr(t, "check with an older epoch", checkEpoch(t, s, cal, 2), persistence.ErrFenced)
	wantErr(t, "check with the first epoch", checkEpoch(t, s, cal, 1), persistence.ErrFenced)
	wantErr(t, "check with a future epoch", checkEpoch(t, s, cal, 4), persistence.ErrFenced)

	// A rolled back activation does not count.
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.CalendarActivate(ctx, cal); err != nil {
			return err
		}
		return errBoom
	})
	wantErr(t, "rolled back activation", err, errBoom)
	if err := checkEpoch(t, s, cal, 3); err != nil {
		t.Fatalf("check after a rolled back activation: %v", err)
	}
	// Calendars are independent.
	if got := activate(t, s, "resource/sauna"); got != 1 {
		t.Fatalf("first activation of another calendar: epoch %d", got)
	}
	if got := activate(t, s, cal); got != 4 {
		t.Fatalf("fourth activation: epoch %d", got)
	}
}

// testCalendarActivateConcurrent activates one calendar from 8 goroutines
// at once: every activation gets its own epoch.
func testCalendarActivateConcurrent(t *testing.T, open Opener) {
	const workers = 8
	s := migrated(t, open, persistence.Options{})
	start := make(chan struct{})
	epochs := make([]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			<-start
			epochs[i], errs[i] = txVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
				return tx.CalendarActivate(ctx, "staff/ana")
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("activation %d: %v", i, err)
		}
	}
	slices.Sort(epochs)
	wantEqual(t, "epochs of concurrent activations", epochs, []int64{1, 2, 3, 4, 5, 6, 7, 8})
	if err := checkEpoch(t, s, "staff/ana", workers); err != nil {
		t.Fatalf("check with the last epoch: %v", err)
	}
}

// day is midnight UTC of base's date; appointments are placed after it.
var day = time.Date(2025, 3, 14, 0, 0, 0, 0, time.UTC)

func at(hour, minute int) time.Time {
	return day.Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute)
}

// appt is a confirmed appointment of staff with client c1 in [start, end).
func appt(id, staff string, start, end time.Time) persistence.Appointment {
	return persistence.Appointment{ID: id, StaffID: staff, ServiceID: "massage", ClientID: "c1",
		Start: start, End: end, Status: persistence.StatusConfirmed, PriceMinor: 100_000,
		CreatedAt: base, UpdatedAt: base}
}

// testPipelined: inside Pipelined, writes behave as if each ran when
// called: a later read sees them, and the epoch check's fencing, a unique
// violation and a held idempotency key are Pipelined's errors, with
// nothing of the transaction kept.
func testPipelined(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const cal = "staff/ana"
	stale := activate(t, s, cal)
	epoch := activate(t, s, cal)
	key := persistence.IdempotencyRecord{Scope: "sub:u1", Key: "k1", Owner: cal, RequestHash: []byte{1},
		State: persistence.IdempotencyCompleted, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	var seen persistence.Appointment
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.Pipelined(ctx, func() error {
			if err := tx.CalendarCheckEpoch(ctx, cal, epoch); err != nil {
				return err
			}
			if err := tx.IdempotencyClaim(ctx, key, errBoom); err != nil {
				return err
			}
			if err := tx.AppointmentInsert(ctx, appt("a-1", "ana", at(9, 0), at(10, 0))); err != nil {
				return err
			}
			var err error
			seen, err = tx.AppointmentGet(ctx, "a-1") // a read after held writes
			return err
		})
	})
	if seen.ID != "a-1" {
		t.Fatalf("read inside Pipelined = %+v; want a-1", seen)
	}
	inserted := func(id string) bool {
		var ok bool
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.AppointmentGet(ctx, id)
			ok = err == nil
			if errors.Is(err, persistence.ErrNotFound) {
				err = nil
			}
			return err
		})
		return ok
	}
	if !inserted("a-1") {
		t.Fatal("a-1 not committed")
	}
	attempt := func(name string, want error, fn func(ctx context.Context, tx persistence.Tx) error) {
		t.Helper()
		err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			return tx.Pipelined(ctx, func() error {
				if err := fn(ctx, tx); err != nil {
					return err
				}
				return tx.AppointmentInsert(ctx, appt("a-2", "ana", at(11, 0), at(12, 0)))
			})
		})
		wantErr(t, name, err, want)
		if inserted("a-2") {
			t.Fatalf("%s: a-2 written by a failed transaction", name)
		}
	}
	attempt("stale epoch", persistence.ErrFenced, func(ctx context.Context, tx persistence.Tx) error {
		return tx.CalendarCheckEpoch(ctx, cal, stale)
	})
	attempt("duplicate appointment", persistence.ErrConflict, func(ctx context.Context, tx persistence.Tx) error {
		return tx.AppointmentInsert(ctx, appt("a-1", "ana", at(13, 0), at(14, 0)))
	})
	again := key
	again.CreatedAt = base.Add(time.Minute)
	attempt("held key", errBoom, func(ctx context.Context, tx persistence.Tx) error {
		return tx.IdempotencyClaim(ctx, again, errBoom)
	})
}

// testPipelinedHolds: a group commit's holds, each an idempotency claim,
// an appointment, its transition and its event, written in one pipelined
// transaction (the drivers that pipeline send the inserts of each kind as
// one statement) are all stored, each transition with its appointment;
// one held key or one duplicate appointment among them fails them all.
func testPipelinedHolds(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const n = 7
	hold := func(ctx context.Context, tx persistence.Tx, i int, id string, held error) error {
		k := persistence.IdempotencyRecord{Scope: "sub:u1", Key: id, Owner: "staff/ana", RequestHash: []byte{byte(i)},
			State: persistence.IdempotencyCompleted, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
		if err := tx.IdempotencyClaim(ctx, k, held); err != nil {
			return err
		}
		a := appt(id, "ana", at(8+i, 0), at(8+i, 30))
		if err := tx.AppointmentInsert(ctx, a); err != nil {
			return err
		}
		tr := persistence.Transition{ID: "t-" + id, AppointmentID: id, To: a.Status, At: base, ActorID: "c1"}
		if err := tx.TransitionAppend(ctx, tr); err != nil {
			return err
		}
		return tx.OutboxAppend(ctx, persistence.OutboxEvent{ID: "e-" + id, Subject: "spa.test", Type: "t", Payload: []byte(id), CreatedAt: base})
	}
	holds := func(ids []string, held error) func(ctx context.Context, tx persistence.Tx) error {
		return func(ctx context.Context, tx persistence.Tx) error {
			return tx.Pipelined(ctx, func() error {
				for i, id := range ids {
					if err := hold(ctx, tx, i, id, held); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("h-%d", i))
	}
	mustTx(t, s, holds(ids, errBoom))
	stored := func() (appts, transitions, events, keys int) {
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			appts, transitions, events, keys = 0, 0, 0, 0
			for _, id := range append(slices.Clone(ids), "h-x") {
				if _, err := tx.AppointmentGet(ctx, id); err == nil {
					appts++
				}
				trs, err := tx.TransitionList(ctx, id)
				if err != nil {
					return err
				}
				transitions += len(trs)
				if r, err := tx.IdempotencyGet(ctx, "sub:u1", id, base); err == nil && r.Owner == "staff/ana" {
					keys++
				}
			}
			pending, err := tx.OutboxPending(ctx, 100)
			events = len(pending)
			return err
		})
		return
	}
	if a, tr, e, k := stored(); a != n || tr != n || e != n || k != n {
		t.Fatalf("%d holds in one pipelined transaction: %d appointments, %d transitions, %d events, %d keys stored", n, a, tr, e, k)
	}
	// Another batch whose third key is held (written above), or whose last
	// appointment repeats one: it fails, and none of its holds is kept.
	wantErr(t, "a held key among the batch", txErr(t, s, holds([]string{"h-x", "h-y", "h-0"}, errBoom)), errBoom)
	err := txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.Pipelined(ctx, func() error {
			for i, id := range []string{"h-x", "h-y"} {
				if err := hold(ctx, tx, i, id, errBoom); err != nil {
					return err
				}
			}
			return tx.AppointmentInsert(ctx, appt("h-3", "ana", at(20, 0), at(21, 0)))
		})
	})
	wantErr(t, "a duplicate appointment among the batch", err, persistence.ErrConflict)
	if a, tr, e, k := stored(); a != n || tr != n || e != n || k != n {
		t.Fatalf("after the failed batches: %d appointments, %d transitions, %d events, %d keys stored; want %d each", a, tr, e, k, n)
	}
}

// testFencingSequential: once a newer activation has bumped the epoch, the
// older activation's next write transaction is fenced and writes nothing.
func testFencingSequential(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	const cal = "staff/ana"
	epochA := activate(t, s, cal)
	write := func(epoch int64, a persistence.Appointment) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
			if err := tx.CalendarCheckEpoch(ctx, cal, epoch); err != nil {
				return err
			}
			return tx.AppointmentInsert(ctx, a)
		})
	}
	if err := write(epochA, appt("a-1", "ana", at(9, 0), at(10, 0))); err != nil {
		t.Fatalf("write of the only activation: %v", err)
	}
	epochB := activate(t, s, cal)
	if epochB <= epochA {
		t.Fatalf("second activation: epoch %d after %d", epochB, epochA)
	}
	wantErr(t, "write of the older activation", write(epochA, appt("a-2", "ana", at(10, 0), at(11, 0))),
		persistence.ErrFenced)
	_, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Appointment, error) {
		return tx.AppointmentGet(ctx, "a-2")
	})
	wantErr(t, "fenced write", err, persistence.ErrNotFound)
	if err := write(epochB, appt("b-1", "ana", at(10, 0), at(11, 0))); err != nil {
		t.Fatalf("write of the newer activation: %v", err)
	}
}

// testFencingInterleaved races an old activation A's write transaction
// against a new activation B: A checks its epoch (and, in one variant,
// inserts) inside an open transaction; then B activates and loads the
// calendar; then A inserts an overlapping appointment and commits. Either A
// is fenced, or A committed before B's activation and B's load sees A's
// appointment: never may B's load miss an appointment that exists.
//
// On PostgreSQL and CockroachDB the transactions really run concurrently
// and A must be fenced (its commit fails serialization, and the retry sees
// the new epoch). On SQLite, BEGIN IMMEDIATE makes B wait for A's write
// lock, so A commits first and B must see its appointment.
func testFencingInterleaved(t *testing.T, open Opener) {
	for _, insertFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("insertBeforeActivation=%v", insertFirst), func(t *testing.T) {
			fencingRace(t, open, insertFirst)
		})
	}
}

func fencingRace(t *testing.T, open Opener, insertFirst bool) {
	s := migrated(t, open, persistence.Options{})
	ctx := t.Context()
	const cal = "staff/ana"
	epochA := activate(t, s, cal)
	mine := appt("a-1", "ana", at(10, 0), at(11, 0))

	checked, proceed := make(chan struct{}), make(chan struct{})
	aDone := make(chan struct{})
	var aErr error
	var aAttempts int
	go func() {
		defer close(aDone)
		aErr = s.InTx(ctx, func(tx persistence.Tx) error {
			aAttempts++
			if err := tx.CalendarCheckEpoch(ctx, cal, epochA); err != nil {
				return err
			}
			if insertFirst {
				if err := tx.AppointmentInsert(ctx, mine); err != nil {
					return err
				}
			}
			if aAttempts == 1 {
				close(checked)
				select {
				case <-proceed:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if !insertFirst {
				return tx.AppointmentInsert(ctx, mine)
			}
			return nil
		})
	}()
	select {
	case <-checked:
	case <-aDone:
		t.Fatalf("A ended before the interleaving: %v", aErr)
	}

	bDone := make(chan struct{})
	var epochB int64
	var loaded []persistence.Appointment
	var bErr error
	go func() {
		defer close(bDone)
		epochB, bErr = txVal(t, s, func(ctx context.Context, tx persistence.Tx) (int64, error) {
			return tx.CalendarActivate(ctx, cal)
		})
		if bErr != nil {
			return
		}
		loaded, bErr = txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Appointment, error) {
			if err := tx.CalendarCheckEpoch(ctx, cal, epochB); err != nil {
				return nil, err
			}
			return tx.AppointmentList(ctx, persistence.AppointmentRange{StaffID: "ana",
				From: at(0, 0), To: at(24, 0), LiveAt: at(8, 0)})
		})
	}()
	concurrent := s.Dialect() != persistence.DialectSQLite
	wait := 300 * time.Millisecond // SQLite: B is certainly waiting for A's lock by then
	if concurrent {
		wait = 10 * time.Second // B waits for nothing; this bounds a hang
	}
	bWaited := false
	select {
	case <-bDone:
	case <-time.After(wait):
		bWaited = true
	}
	close(proceed)
	<-aDone
	<-bDone
	if bErr != nil {
		t.Fatalf("B: %v", bErr)
	}
	stored, getErr := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Appointment, error) {
		return tx.AppointmentGet(ctx, mine.ID)
	})
	exists := getErr == nil
	if getErr != nil && !errors.Is(getErr, persistence.ErrNotFound) {
		t.Fatalf("get A's appointment: %v", getErr)
	}
	seen := slices.ContainsFunc(loaded, func(a persistence.Appointment) bool { return a.ID == mine.ID })
	t.Logf("A: %d attempts, %v; B: epoch %d, waited for A %v, loaded %d; A's appointment stored %v",
		aAttempts, aErr, epochB, bWaited, len(loaded), exists)

	// The invariant, whatever the dialect.
	if exists && !seen {
		t.Fatalf("split brain: A's appointment %+v is stored, but B (epoch %d) loaded %+v", stored, epochB, loaded)
	}
	switch {
	case aErr == nil && !exists:
		t.Fatal("A committed but its appointment is not stored")
	case aErr != nil && !errors.Is(aErr, persistence.ErrFenced):
		t.Fatalf("A: %v, want success or ErrFenced", aErr)
	case aErr != nil && exists:
		t.Fatalf("A failed (%v) but its appointment is stored", aErr)
	}
	// The outcome each dialect must produce.
	if concurrent {
		if bWaited {
			t.Fatal("B's activation and load waited for A's open transaction")
		}
		wantErr(t, "A after B activated and loaded", aErr, persistence.ErrFenced)
	} else {
		if !bWaited || aErr != nil || !seen {
			t.Fatalf("SQLite: B waited %v, A %v, B saw A's appointment %v; want B to wait, A to commit, B to see it",
				bWaited, aErr, seen)
		}
	}
}

// ---- Appointments ----

func testAppointments(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	insert := func(a persistence.Appointment) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.AppointmentInsert(ctx, a) })
	}
	get := func(id string) (persistence.Appointment, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Appointment, error) {
			return tx.AppointmentGet(ctx, id)
		})
	}
	update := func(a persistence.Appointment) (persistence.Appointment, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Appointment, error) {
			return tx.AppointmentUpdate(ctx, a)
		})
	}
	_, err := get("a-1")
	wantErr(t, "get absent", err, persistence.ErrNotFound)

	held := persistence.Appointment{
		ID: newID(), StaffID: "ana", ResourceID: "room-1", ServiceID: "massage", ClientID: "c1",
		Start: base, End: base.Add(90 * time.Minute), BufferBefore: 5 * time.Minute, BufferAfter: 10 * time.Minute,
		Status: persistence.StatusHeld, HoldExpiresAt: base.Add(-10 * time.Minute).Add(15 * time.Minute),
		PriceMinor: 18_000_000, DepositMinor: 5_400_000, Version: 9, CreatedAt: base.Add(-time.Hour),
		UpdatedAt: base.Add(-time.Hour),
	}
	if err := insert(held); err != nil {
		t.Fatalf("insert: %v", err)
	}
	want := held
	want.Start, want.End, want.HoldExpiresAt = ct(held.Start), ct(held.End), ct(held.HoldExpiresAt)
	want.CreatedAt, want.UpdatedAt, want.Version = ct(held.CreatedAt), ct(held.UpdatedAt), 1
	g, err := get(held.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	wantEqual(t, "get held (inserted at version 1)", g, want)
	wantErr(t, "duplicate insert", insert(held), persistence.ErrConflict)

	walkIn := appt(newID(), "bea", base, base.Add(time.Hour)) // no resource, no hold
	if err := insert(walkIn); err != nil {
		t.Fatalf("insert walk-in: %v", err)
	}
	g, _ = get(walkIn.ID)
	wantWalkIn := walkIn
	wantWalkIn.Start, wantWalkIn.End, wantWalkIn.Version = ct(walkIn.Start), ct(walkIn.End), 1
	wantWalkIn.CreatedAt, wantWalkIn.UpdatedAt = ct(base), ct(base)
	wantEqual(t, "get walk-in (zero HoldExpiresAt, no resource)", g, wantWalkIn)

	// Confirm: clear the hold. CreatedAt stays as first stored.
	confirm := want
	confirm.Status, confirm.HoldExpiresAt, confirm.UpdatedAt = persistence.StatusConfirmed, time.Time{}, base
	confirm.CreatedAt = base.Add(time.Hour)
	v2, err := update(confirm)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	want2 := confirm
	want2.Version, want2.UpdatedAt, want2.CreatedAt = 2, ct(base), want.CreatedAt
	wantEqual(t, "update", v2, want2)
	g, _ = get(held.ID)
	wantEqual(t, "get after update", g, want2)

	// Reschedule, moving staff and resource.
	move := v2
	move.StaffID, move.ResourceID = "bea", ""
	move.Start, move.End = base.Add(24*time.Hour), base.Add(25*time.Hour)
	v3, err := update(move)
	if err != nil || v3.Version != 3 {
		t.Fatalf("reschedule = %+v, %v", v3, err)
	}
	g, _ = get(held.ID)
	wantEqual(t, "get after reschedule", g, v3)

	// Check-in: the arrival time round-trips.
	arrive := v3
	arrive.CheckedInAt = base.Add(24*time.Hour - 7*time.Minute + 123*time.Nanosecond)
	v4, err := update(arrive)
	if err != nil || !v4.CheckedInAt.Equal(ct(arrive.CheckedInAt)) {
		t.Fatalf("check in = %+v, %v", v4, err)
	}
	g, _ = get(held.ID)
	wantEqual(t, "get after check-in", g, v4)
	v3 = v4

	_, err = update(v2)
	wantErr(t, "stale version", err, persistence.ErrConflict)
	future := v3
	future.Version = 10
	_, err = update(future)
	wantErr(t, "future version", err, persistence.ErrConflict)
	missing := v3
	missing.ID = newID()
	_, err = update(missing)
	wantErr(t, "update absent", err, persistence.ErrNotFound)
	zero := v3
	zero.Version = 0
	_, err = update(zero)
	wantErr(t, "update from version 0", err, persistence.ErrInvalid)
}

// calendarFixture stores a day of appointments for the list tests and
// returns them by ID. LiveAt is 12:00 (see the comments).
func calendarFixture(t *testing.T, s persistence.Store) map[string]persistence.Appointment {
	t.Helper()
	liveAt := at(12, 0)
	x := map[string]persistence.Appointment{}
	add := func(a persistence.Appointment) {
		x[a.ID] = a
	}
	x1 := appt("x1", "ana", at(9, 0), at(10, 0)) // ends where [10:00, ...) starts
	x1.ResourceID = "room-2"
	add(x1)
	x2 := appt("x2", "ana", at(10, 0), at(11, 0))
	x2.ResourceID = "room-1"
	add(x2)
	x3 := appt("x3", "ana", at(10, 0), at(10, 30)) // same start as x2: ordered by ID
	x3.Status, x3.HoldExpiresAt, x3.ClientID = persistence.StatusHeld, liveAt.Add(time.Microsecond), "c2"
	add(x3)
	x4 := appt("x4", "ana", at(11, 0), at(12, 0)) // hold expired before LiveAt
	x4.Status, x4.HoldExpiresAt = persistence.StatusHeld, liveAt.Add(-time.Minute)
	add(x4)
	x5 := appt("x5", "ana", at(12, 0), at(13, 0))
	x5.Status = persistence.StatusCancelled
	add(x5)
	x6 := appt("x6", "ana", at(13, 0), at(14, 0)) // hold expires exactly at LiveAt: not live
	x6.Status, x6.HoldExpiresAt = persistence.StatusHeld, liveAt
	add(x6)
	x7 := appt("x7", "ana", at(15, 0), at(16, 0))
	x7.Status = persistence.StatusCompleted
	add(x7)
	y1 := appt("y1", "bea", at(10, 0), at(11, 0))
	y1.ResourceID, y1.ClientID = "room-1", "c2"
	add(y1)
	y2 := appt("y2", "bea", day.Add(-30*time.Minute), at(0, 30)) // spans midnight
	add(y2)
	// Insert in an order unrelated to the expected orders.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, id := range []string{"x6", "y1", "x3", "x1", "x7", "x5", "y2", "x2", "x4"} {
			if err := tx.AppointmentInsert(ctx, x[id]); err != nil {
				return fmt.Errorf("insert %s: %w", id, err)
			}
		}
		return nil
	})
	for id, a := range x {
		a.Start, a.End, a.HoldExpiresAt = ct(a.Start), ct(a.End), ct(a.HoldExpiresAt)
		a.CreatedAt, a.UpdatedAt, a.Version = ct(a.CreatedAt), ct(a.UpdatedAt), 1
		x[id] = a
	}
	return x
}

func pickAppts(x map[string]persistence.Appointment, ids ...string) []persistence.Appointment {
	out := []persistence.Appointment{}
	for _, id := range ids {
		out = append(out, x[id])
	}
	return out
}

func testAppointmentList(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	x := calendarFixture(t, s)
	liveAt := at(12, 0)
	list := func(r persistence.AppointmentRange) ([]persistence.Appointment, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Appointment, error) {
			return tx.AppointmentList(ctx, r)
		})
	}
	for _, c := range []struct {
		name string
		r    persistence.AppointmentRange
		want []string
	}{
		{"whole day", persistence.AppointmentRange{StaffID: "ana", From: at(0, 0), To: at(24, 0)},
			[]string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"}},
		{"from the end of x1 to the start of x5", persistence.AppointmentRange{StaffID: "ana", From: at(10, 0), To: at(12, 0)},
			[]string{"x2", "x3", "x4"}},
		{"last microsecond of x1", persistence.AppointmentRange{StaffID: "ana", From: at(10, 0).Add(-time.Microsecond), To: at(10, 0)},
			[]string{"x1"}},
		{"inside x2", persistence.AppointmentRange{StaffID: "ana", From: at(10, 40), To: at(10, 50)},
			[]string{"x2"}},
		{"instant (From == To): what covers it", persistence.AppointmentRange{StaffID: "ana", From: at(10, 15), To: at(10, 15)},
			[]string{"x2", "x3"}},
		{"instant where x2 ends and x4 starts", persistence.AppointmentRange{StaffID: "ana", From: at(11, 0), To: at(11, 0)},
			nil},
		{"gap", persistence.AppointmentRange{StaffID: "ana", From: at(14, 0), To: at(15, 0)},
			nil},
		{"live at noon", persistence.AppointmentRange{StaffID: "ana", From: at(0, 0), To: at(24, 0), LiveAt: liveAt},
			[]string{"x1", "x2", "x3"}},
		{"live before any hold expires", persistence.AppointmentRange{StaffID: "ana", From: at(0, 0), To: at(24, 0), LiveAt: at(8, 0)},
			[]string{"x1", "x2", "x3", "x4", "x6"}},
		{"resource", persistence.AppointmentRange{ResourceID: "room-1", From: at(0, 0), To: at(24, 0)},
			[]string{"x2", "y1"}},
		{"spanning midnight", persistence.AppointmentRange{StaffID: "bea", From: at(0, 0), To: at(1, 0)},
			[]string{"y2"}},
		{"unknown staff", persistence.AppointmentRange{StaffID: "nobody", From: at(0, 0), To: at(24, 0)},
			nil},
	} {
		got, err := list(c.r)
		if err != nil {
			t.Fatalf("AppointmentList %s: %v", c.name, err)
		}
		wantEqual(t, "AppointmentList "+c.name, got, pickAppts(x, c.want...))
		if !c.r.LiveAt.IsZero() {
			for _, a := range got {
				if !a.Live(c.r.LiveAt) {
					t.Fatalf("AppointmentList %s: %s is not Live", c.name, a.ID)
				}
			}
		}
	}
	// The LiveAt filter agrees with Appointment.Live.
	var live []string
	for _, id := range []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"} {
		if x[id].Live(liveAt) {
			live = append(live, id)
		}
	}
	wantEqual(t, "Live at noon", live, []string{"x1", "x2", "x3"})

	for name, r := range map[string]persistence.AppointmentRange{
		"no calendar":   {From: at(0, 0), To: at(24, 0)},
		"two calendars": {StaffID: "ana", ResourceID: "room-1", From: at(0, 0), To: at(24, 0)},
		"reversed":      {StaffID: "ana", From: at(12, 0), To: at(11, 0)},
	} {
		_, err := list(r)
		wantErr(t, "AppointmentList "+name, err, persistence.ErrInvalid)
	}
}

func testAppointmentListByClient(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	x := calendarFixture(t, s)
	list := func(client string, from, to time.Time, limit int) ([]persistence.Appointment, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Appointment, error) {
			return tx.AppointmentListByClient(ctx, client, from, to, limit)
		})
	}
	for _, c := range []struct {
		name     string
		client   string
		from, to time.Time
		limit    int
		want     []string
	}{
		{"whole day", "c1", at(0, 0), at(24, 0), 100, []string{"x1", "x2", "x4", "x5", "x6", "x7"}},
		{"limit", "c1", at(0, 0), at(24, 0), 2, []string{"x1", "x2"}},
		{"starting in [10:00, 12:00)", "c1", at(10, 0), at(12, 0), 10, []string{"x2", "x4"}},
		{"started before from", "c1", at(9, 30), at(10, 0), 10, nil},
		{"other client", "c2", at(0, 0), at(24, 0), 10, []string{"x3", "y1"}},
		{"with the previous day", "c1", day.Add(-time.Hour), at(9, 30), 10, []string{"y2", "x1"}},
		{"unknown client", "c9", at(0, 0), at(24, 0), 10, nil},
	} {
		got, err := list(c.client, c.from, c.to, c.limit)
		if err != nil {
			t.Fatalf("AppointmentListByClient %s: %v", c.name, err)
		}
		wantEqual(t, "AppointmentListByClient "+c.name, got, pickAppts(x, c.want...))
	}
	for _, limit := range []int{0, -1, persistence.MaxAppointmentListLimit + 1} {
		_, err := list("c1", at(0, 0), at(24, 0), limit)
		wantErr(t, fmt.Sprint("AppointmentListByClient limit ", limit), err, persistence.ErrInvalid)
	}
	_, err := list("", at(0, 0), at(24, 0), 10)
	wantErr(t, "AppointmentListByClient without client", err, persistence.ErrInvalid)
	_, err = list("c1", at(12, 0), at(11, 0), 10)
	wantErr(t, "AppointmentListByClient reversed", err, persistence.ErrInvalid)

	// No-shows: x1 (09:00) and y2 (the day before) marked, x3 (c2's) too.
	for _, id := range []string{"x1", "y2", "x3"} {
		ap := x[id]
		ap.Status, ap.HoldExpiresAt = persistence.StatusNoShow, time.Time{}
		mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Appointment, error) {
			return tx.AppointmentUpdate(ctx, ap)
		})
	}
	for _, c := range []struct {
		client string
		since  time.Time
		want   int
	}{{"c1", day.Add(-time.Hour), 2}, {"c1", at(0, 0), 1}, {"c1", at(9, 0), 1}, {"c1", at(9, 1), 0}, {"c2", day.Add(-time.Hour), 1}, {"c9", time.Time{}, 0}} {
		n := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (int, error) {
			return tx.AppointmentNoShows(ctx, c.client, c.since)
		})
		if n != c.want {
			t.Errorf("AppointmentNoShows(%s, since %v) = %d, want %d", c.client, c.since, n, c.want)
		}
	}
}

func testTransitions(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	a := appt(newID(), "ana", at(10, 0), at(11, 0))
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.AppointmentInsert(ctx, a) })
	appendT := func(tr persistence.Transition) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.TransitionAppend(ctx, tr) })
	}
	list := func(id string) ([]persistence.Transition, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Transition, error) {
			return tx.TransitionList(ctx, id)
		})
	}
	got, err := list(a.ID)
	wantLen(t, "list empty", got, err, 0)
	var ts []persistence.Transition
	steps := [][2]persistence.AppointmentStatus{{"", persistence.StatusHeld},
		{persistence.StatusHeld, persistence.StatusConfirmed}, {persistence.StatusConfirmed, persistence.StatusCompleted}}
	for i, st := range steps {
		ts = append(ts, persistence.Transition{ID: fmt.Sprintf("%s-%02d", a.ID, i), AppointmentID: a.ID,
			From: st[0], To: st[1], At: base.Add(time.Duration(i) * time.Minute), ActorID: "user-1",
			Reason: fmt.Sprint("step ", i)})
	}
	ts[2].ActorID, ts[2].Reason = "system", ""
	for _, i := range []int{0, 1, 2} {
		if err := appendT(ts[i]); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	for i := range ts {
		ts[i].At = ct(ts[i].At)
	}
	got, err = list(a.ID)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	wantEqual(t, "transitions in order", got, ts)
	wantErr(t, "duplicate ID", appendT(ts[1]), persistence.ErrConflict)
	wantErr(t, "transition of an unknown appointment", appendT(persistence.Transition{ID: newID(),
		AppointmentID: "nope", To: persistence.StatusHeld, At: base}), persistence.ErrNotFound)
	got, err = list("nope")
	wantLen(t, "list of an unknown appointment", got, err, 0)
}

// testBookingInvalid checks that malformed input is refused with
// ErrInvalid and writes nothing.
func testBookingInvalid(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	putStaff(t, s, "ana")
	svc := persistence.Service{ID: "massage", Name: "Masaje", Duration: time.Hour,
		DepositPolicy: persistence.DepositNone, Active: true, UpdatedAt: base}
	withService := func(f func(*persistence.Service)) persistence.Service { v := svc; f(&v); return v }
	staff := persistence.StaffMember{ID: "bea", Name: "Bea", TimeZone: "America/Bogota", UpdatedAt: base}
	withStaff := func(f func(*persistence.StaffMember)) persistence.StaffMember { v := staff; f(&v); return v }
	ap := appt("a-1", "ana", at(10, 0), at(11, 0))
	withAppt := func(f func(*persistence.Appointment)) persistence.Appointment { v := ap; f(&v); return v }
	rng := func(s, e int) []persistence.ClockRange {
		return []persistence.ClockRange{{StartMinute: s, EndMinute: e}}
	}

	cases := map[string]func(context.Context, persistence.Tx) error{}
	for name, sv := range map[string]persistence.Service{
		"empty ID":             withService(func(v *persistence.Service) { v.ID = "" }),
		"zero duration":        withService(func(v *persistence.Service) { v.Duration = 0 }),
		"negative duration":    withService(func(v *persistence.Service) { v.Duration = -time.Hour }),
		"partial minute":       withService(func(v *persistence.Service) { v.Duration = 90 * time.Second }),
		"negative buffer":      withService(func(v *persistence.Service) { v.BufferAfter = -time.Minute }),
		"fractional cutoff":    withService(func(v *persistence.Service) { v.CancelCutoff = 1500 * time.Millisecond }),
		"negative price":       withService(func(v *persistence.Service) { v.PriceMinor = -1 }),
		"unknown policy":       withService(func(v *persistence.Service) { v.DepositPolicy = "later" }),
		"empty policy":         withService(func(v *persistence.Service) { v.DepositPolicy = "" }),
		"percent 0":            withService(func(v *persistence.Service) { v.DepositPolicy, v.DepositValue = persistence.DepositPercent, 0 }),
		"percent 101":          withService(func(v *persistence.Service) { v.DepositPolicy, v.DepositValue = persistence.DepositPercent, 101 }),
		"negative fixed":       withService(func(v *persistence.Service) { v.DepositPolicy, v.DepositValue = persistence.DepositFixed, -5 }),
		"value without policy": withService(func(v *persistence.Service) { v.DepositValue = 10 }),
		"no-shows, no policy":  withService(func(v *persistence.Service) { v.DepositNoShows = 2 }),
		"negative no-shows": withService(func(v *persistence.Service) {
			v.DepositPolicy, v.DepositValue, v.DepositNoShows = persistence.DepositFixed, 5, -1
		}),
		"empty skill":      withService(func(v *persistence.Service) { v.RequiredSkills = []string{"a", ""} }),
		"negative version": withService(func(v *persistence.Service) { v.Version = -1 }),
	} {
		cases["ServicePut "+name] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.ServicePut(ctx, sv)
			return err
		}
	}
	for name, m := range map[string]persistence.StaffMember{
		"empty ID":          withStaff(func(v *persistence.StaffMember) { v.ID = "" }),
		"no time zone":      withStaff(func(v *persistence.StaffMember) { v.TimeZone = "" }),
		"local time zone":   withStaff(func(v *persistence.StaffMember) { v.TimeZone = "Local" }),
		"unknown time zone": withStaff(func(v *persistence.StaffMember) { v.TimeZone = "Mars/Olympus_Mons" }),
		"reversed range":    withStaff(func(v *persistence.StaffMember) { v.Weekly[1] = rng(600, 540) }),
		"empty range":       withStaff(func(v *persistence.StaffMember) { v.Weekly[1] = rng(600, 600) }),
		"past midnight":     withStaff(func(v *persistence.StaffMember) { v.Weekly[5] = rng(1200, 1441) }),
		"negative minute":   withStaff(func(v *persistence.StaffMember) { v.Weekly[0] = rng(-1, 60) }),
		"bad range beside a good one": withStaff(func(v *persistence.StaffMember) {
			v.Weekly[2] = []persistence.ClockRange{{StartMinute: 600, EndMinute: 720}, {StartMinute: 740, EndMinute: 730}}
		}),
		"empty skill": withStaff(func(v *persistence.StaffMember) { v.Skills = []string{""} }),
	} {
		cases["StaffPut "+name] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.StaffPut(ctx, m)
			return err
		}
	}
	for name, r := range map[string]persistence.Resource{
		"empty ID":          {Name: "x", Capacity: 1},
		"negative capacity": {ID: "sauna", Capacity: -1},
		"zero capacity":     {ID: "sauna", Capacity: 0},
	} {
		cases["ResourcePut "+name] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.ResourcePut(ctx, r)
			return err
		}
	}
	for name, o := range map[string]persistence.DateOverride{
		"bad date":           {StaffID: "ana", Date: "2025-3-15", Closed: true},
		"impossible date":    {StaffID: "ana", Date: "2025-02-30", Closed: true},
		"closed with ranges": {StaffID: "ana", Date: "2025-03-15", Closed: true, Ranges: rng(600, 700)},
		"neither":            {StaffID: "ana", Date: "2025-03-15"},
		"bad range":          {StaffID: "ana", Date: "2025-03-15", Ranges: rng(700, 600)},
		"no staff":           {Date: "2025-03-15", Closed: true},
	} {
		cases["DateOverridePut "+name] = func(ctx context.Context, tx persistence.Tx) error {
			return tx.DateOverridePut(ctx, o)
		}
	}
	cases["DateOverrideList reversed"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.DateOverrideList(ctx, "ana", "2025-03-20", "2025-03-10")
		return err
	}
	cases["DateOverrideList bad date"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.DateOverrideList(ctx, "ana", "2025-03-01", "April")
		return err
	}
	for name, o := range map[string]persistence.TimeOff{
		"end before start": {ID: "t1", StaffID: "ana", Start: base, End: base.Add(-time.Hour)},
		"empty":            {ID: "t1", StaffID: "ana", Start: base, End: base},
		"no start":         {ID: "t1", StaffID: "ana", End: base},
		"no ID":            {StaffID: "ana", Start: base, End: base.Add(time.Hour)},
		"no staff":         {ID: "t1", Start: base, End: base.Add(time.Hour)},
	} {
		cases["TimeOffAdd "+name] = func(ctx context.Context, tx persistence.Tx) error { return tx.TimeOffAdd(ctx, o) }
	}
	cases["TimeOffList reversed"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TimeOffList(ctx, "ana", base, base.Add(-time.Hour))
		return err
	}
	cases["CalendarActivate empty ID"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.CalendarActivate(ctx, "")
		return err
	}
	for name, a := range map[string]persistence.Appointment{
		"end before start":    withAppt(func(v *persistence.Appointment) { v.End = v.Start.Add(-time.Minute) }),
		"end at start":        withAppt(func(v *persistence.Appointment) { v.End = v.Start }),
		"unknown status":      withAppt(func(v *persistence.Appointment) { v.Status = "pending" }),
		"empty status":        withAppt(func(v *persistence.Appointment) { v.Status = "" }),
		"held without expiry": withAppt(func(v *persistence.Appointment) { v.Status = persistence.StatusHeld }),
		"no ID":               withAppt(func(v *persistence.Appointment) { v.ID = "" }),
		"no staff":            withAppt(func(v *persistence.Appointment) { v.StaffID = "" }),
		"no service":          withAppt(func(v *persistence.Appointment) { v.ServiceID = "" }),
		"no client":           withAppt(func(v *persistence.Appointment) { v.ClientID = "" }),
		"negative price":      withAppt(func(v *persistence.Appointment) { v.PriceMinor = -1 }),
		"negative deposit":    withAppt(func(v *persistence.Appointment) { v.DepositMinor = -1 }),
		"negative buffer":     withAppt(func(v *persistence.Appointment) { v.BufferBefore = -time.Minute }),
		"fractional buffer":   withAppt(func(v *persistence.Appointment) { v.BufferAfter = 1500 * time.Millisecond }),
	} {
		cases["AppointmentInsert "+name] = func(ctx context.Context, tx persistence.Tx) error {
			return tx.AppointmentInsert(ctx, a)
		}
		cases["AppointmentUpdate "+name] = func(ctx context.Context, tx persistence.Tx) error {
			a.Version = 1
			_, err := tx.AppointmentUpdate(ctx, a)
			return err
		}
	}
	for name, tr := range map[string]persistence.Transition{
		"unknown to":   {ID: "t1", AppointmentID: "a-1", To: "pending"},
		"empty to":     {ID: "t1", AppointmentID: "a-1"},
		"unknown from": {ID: "t1", AppointmentID: "a-1", From: "pending", To: persistence.StatusHeld},
		"no ID":        {AppointmentID: "a-1", To: persistence.StatusHeld},
		"no appt":      {ID: "t1", To: persistence.StatusHeld},
	} {
		cases["TransitionAppend "+name] = func(ctx context.Context, tx persistence.Tx) error {
			return tx.TransitionAppend(ctx, tr)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		wantErr(t, name, txErr(t, s, cases[name]), persistence.ErrInvalid)
	}

	// Nothing was written.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if ss, err := tx.ServiceList(ctx, false); err != nil || len(ss) != 0 {
			return fmt.Errorf("services: %v, %v", ss, err)
		}
		if ms, err := tx.StaffList(ctx, false); err != nil || len(ms) != 1 {
			return fmt.Errorf("staff: %v, %v", ms, err)
		}
		if rs, err := tx.ResourceList(ctx, false); err != nil || len(rs) != 0 {
			return fmt.Errorf("resources: %v, %v", rs, err)
		}
		if os, err := tx.DateOverrideList(ctx, "ana", "2000-01-01", "2100-01-01"); err != nil || len(os) != 0 {
			return fmt.Errorf("overrides: %v, %v", os, err)
		}
		if ts, err := tx.TimeOffList(ctx, "ana", time.Time{}, base.Add(1000*time.Hour)); err != nil || len(ts) != 0 {
			return fmt.Errorf("time off: %v, %v", ts, err)
		}
		if _, err := tx.AppointmentGet(ctx, "a-1"); !errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("appointment: %v", err)
		}
		if _, err := tx.CalendarActivate(ctx, "staff/ana"); err != nil {
			return err
		}
		return tx.CalendarCheckEpoch(ctx, "staff/ana", 1)
	})
}
