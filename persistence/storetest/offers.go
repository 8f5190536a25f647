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

// offersTests are the conformance tests of persistence.OffersStore.
var offersTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"Waitlist", testWaitlist},
	{"WaitlistMatch", testWaitlistMatch},
	{"WaitlistExpire", testWaitlistExpire},
	{"WaitlistAddConcurrent", testWaitlistAddConcurrent},
	{"Packages", testPackages},
	{"PackageRedeem", testPackageRedeem},
	{"PackageRedeemConcurrent", testPackageRedeemConcurrent},
	{"Vouchers", testVouchers},
	{"VoucherDebit", testVoucherDebit},
	{"VoucherDebitConcurrent", testVoucherDebitConcurrent},
	{"AppointmentCredits", testAppointmentCredits},
	{"OffersInvalid", testOffersInvalid},
}

// ---- Waitlist ----

// wait is a waiting entry of client c for massage with any staff member in
// [from, to), created at base + created minutes.
func wait(id, c string, from, to time.Time, created int) persistence.WaitlistEntry {
	at := base.Add(time.Duration(created) * time.Minute)
	return persistence.WaitlistEntry{ID: id, ClientID: c, ServiceID: "massage", From: from, To: to,
		Status: persistence.WaitlistWaiting, CreatedAt: at, UpdatedAt: at}
}

// stored is e as the store returns it at version.
func stored(e persistence.WaitlistEntry, version int64) persistence.WaitlistEntry {
	e.From, e.To, e.CreatedAt, e.UpdatedAt = ct(e.From), ct(e.To), ct(e.CreatedAt), ct(e.UpdatedAt)
	e.Version = version
	return e
}

func addWaits(t *testing.T, s persistence.Store, es ...persistence.WaitlistEntry) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, e := range es {
			if err := tx.WaitlistAdd(ctx, e); err != nil {
				return fmt.Errorf("add %s: %w", e.ID, err)
			}
		}
		return nil
	})
}

func waitIDs(es []persistence.WaitlistEntry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func testWaitlist(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	add := func(e persistence.WaitlistEntry) error {
		return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.WaitlistAdd(ctx, e) })
	}
	get := func(id string) (persistence.WaitlistEntry, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.WaitlistEntry, error) {
			return tx.WaitlistGet(ctx, id)
		})
	}
	update := func(e persistence.WaitlistEntry) (persistence.WaitlistEntry, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.WaitlistEntry, error) {
			return tx.WaitlistUpdate(ctx, e)
		})
	}
	list := func(client string, includeClosed bool) []string {
		t.Helper()
		return waitIDs(mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.WaitlistEntry, error) {
			return tx.WaitlistListByClient(ctx, client, includeClosed)
		}))
	}
	_, err := get("w-1")
	wantErr(t, "get absent", err, persistence.ErrNotFound)
	wantEqual(t, "list empty", list("c1", true), []string{})

	w1 := wait("w-1", "c1", at(9, 0).Add(time.Nanosecond), at(13, 0), 0)
	w1.StaffID, w1.Version = "ana", 9 // the version given is ignored
	if err := add(w1); err != nil {
		t.Fatalf("add: %v", err)
	}
	want := stored(w1, 1)
	got, err := get("w-1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	wantEqual(t, "get", got, want)

	dupID := wait("w-1", "c2", at(9, 0), at(10, 0), 1)
	wantErr(t, "duplicate ID", add(dupID), persistence.ErrConflict)

	// One waiting entry per client, service, staff and overlapping window.
	overlapping := wait("w-2", "c1", at(12, 59), at(15, 0), 1)
	overlapping.StaffID = "ana"
	wantErr(t, "overlapping window", add(overlapping), persistence.ErrConflict)
	inside := wait("w-2", "c1", at(10, 0), at(11, 0), 1)
	inside.StaffID = "ana"
	wantErr(t, "window inside another", add(inside), persistence.ErrConflict)
	touching := wait("w-2", "c1", at(13, 0), at(15, 0), 1) // windows only touch
	touching.StaffID = "ana"
	otherStaff := wait("w-3", "c1", at(9, 0), at(13, 0), 2)
	otherStaff.StaffID = "bea"
	anyStaff := wait("w-4", "c1", at(9, 0), at(13, 0), 3) // "" is its own staff value
	otherService := wait("w-5", "c1", at(9, 0), at(13, 0), 4)
	otherService.StaffID, otherService.ServiceID = "ana", "facial"
	otherClient := wait("w-6", "c2", at(9, 0), at(13, 0), 5)
	otherClient.StaffID = "ana"
	for _, e := range []persistence.WaitlistEntry{touching, otherStaff, anyStaff, otherService, otherClient} {
		if err := add(e); err != nil {
			t.Fatalf("add %s: %v", e.ID, err)
		}
	}
	wantEqual(t, "list c1", list("c1", false), []string{"w-1", "w-2", "w-3", "w-4", "w-5"})

	// Update: optimistic version, CreatedAt kept.
	offered := want
	offered.Status, offered.OfferedAppointmentID = persistence.WaitlistOffered, "a-1"
	offered.CreatedAt, offered.UpdatedAt = base.Add(time.Hour), base.Add(time.Hour)
	v2, err := update(offered)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	want2 := stored(offered, 2)
	want2.CreatedAt = want.CreatedAt
	wantEqual(t, "update", v2, want2)
	got, _ = get("w-1")
	wantEqual(t, "get after update", got, want2)
	_, err = update(offered) // still version 1
	wantErr(t, "stale version", err, persistence.ErrConflict)
	missing := offered
	missing.ID = "nope"
	_, err = update(missing)
	wantErr(t, "update absent", err, persistence.ErrNotFound)

	// An offered entry does not block a new waiting one; going back to
	// waiting is then refused while the new one overlaps.
	again := wait("w-7", "c1", at(11, 0), at(12, 0), 6)
	again.StaffID = "ana"
	if err := add(again); err != nil {
		t.Fatalf("add while the overlapping entry is offered: %v", err)
	}
	back := v2
	back.Status, back.OfferedAppointmentID = persistence.WaitlistWaiting, ""
	_, err = update(back)
	wantErr(t, "back to waiting over another waiting entry", err, persistence.ErrConflict)
	got, _ = get("w-1")
	wantEqual(t, "unchanged after refused update", got, want2)

	// Closing entries; closed entries are listed only on request.
	done := v2
	done.Status, done.UpdatedAt = persistence.WaitlistFulfilled, base.Add(2*time.Hour)
	v3, err := update(done)
	if err != nil || v3.Version != 3 || v3.OfferedAppointmentID != "a-1" {
		t.Fatalf("fulfil = %+v, %v", v3, err)
	}
	w3, _ := get("w-3")
	w3.Status = persistence.WaitlistCancelled
	if _, err := update(w3); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	wantEqual(t, "open entries of c1", list("c1", false), []string{"w-2", "w-4", "w-5", "w-7"})
	wantEqual(t, "all entries of c1", list("c1", true), []string{"w-1", "w-2", "w-3", "w-4", "w-5", "w-7"})
	wantEqual(t, "entries of c2", list("c2", true), []string{"w-6"})
	// A cancelled entry may be reopened when nothing overlaps it.
	w3, _ = get("w-3")
	w3.Status = persistence.WaitlistWaiting
	if _, err := update(w3); err != nil {
		t.Fatalf("reopen: %v", err)
	}
}

func testWaitlistMatch(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	withStaff := func(e persistence.WaitlistEntry, staff, service string) persistence.WaitlistEntry {
		e.StaffID = staff
		if service != "" {
			e.ServiceID = service
		}
		return e
	}
	// Created out of ID order: the queue follows CreatedAt.
	es := []persistence.WaitlistEntry{
		withStaff(wait("m-1", "c1", at(9, 0), at(12, 0), 5), "ana", ""),
		withStaff(wait("m-2", "c2", at(10, 0), at(11, 0), 1), "", ""),          // exactly the slot
		withStaff(wait("m-3", "c3", at(10, 0), at(10, 59), 0), "", ""),         // ends too early
		withStaff(wait("m-4", "c4", at(10, 1), at(12, 0), 0), "ana", ""),       // starts too late
		withStaff(wait("m-5", "c5", at(8, 0), at(18, 0), 3), "bea", ""),        // other staff
		withStaff(wait("m-6", "c6", at(8, 0), at(18, 0), 2), "ana", "facial"),  // other service
		withStaff(wait("m-7", "c7", at(8, 0), at(18, 0), 4), "", ""),           // offered below
		withStaff(wait("m-8", "c8", at(8, 0), at(18, 0), 1), "ana", ""),        // same CreatedAt as m-2
		withStaff(wait("m-9", "c9", at(8, 0), at(18, 0), 6), "", "hot-stones"), // third service
		withStaff(wait("m-0", "c0", at(8, 0), at(18, 0), 5), "ana", "massage"), // same CreatedAt as m-1, lower ID
	}
	addWaits(t, s, es...)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		e, err := tx.WaitlistGet(ctx, "m-7")
		if err != nil {
			return err
		}
		e.Status, e.OfferedAppointmentID = persistence.WaitlistOffered, "a-9"
		_, err = tx.WaitlistUpdate(ctx, e)
		return err
	})
	match := func(m persistence.WaitlistMatch) []string {
		t.Helper()
		return waitIDs(mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.WaitlistEntry, error) {
			return tx.WaitlistMatch(ctx, m)
		}))
	}
	slot := func(services []string, staff string, limit int) persistence.WaitlistMatch {
		return persistence.WaitlistMatch{ServiceIDs: services, StaffID: staff, Start: at(10, 0), End: at(11, 0), Limit: limit}
	}
	for _, c := range []struct {
		name string
		m    persistence.WaitlistMatch
		want []string
	}{
		{"massage with ana", slot([]string{"massage"}, "ana", 100), []string{"m-2", "m-8", "m-0", "m-1"}},
		{"limit", slot([]string{"massage"}, "ana", 2), []string{"m-2", "m-8"}},
		{"massage with bea", slot([]string{"massage"}, "bea", 100), []string{"m-2", "m-5"}},
		{"two services", slot([]string{"massage", "facial", "massage"}, "ana", 100), []string{"m-2", "m-8", "m-6", "m-0", "m-1"}},
		{"any service", slot(nil, "ana", 100), []string{"m-2", "m-8", "m-6", "m-0", "m-1", "m-9"}},
		{"unknown service", slot([]string{"nails"}, "ana", 100), []string{}},
		{"unknown staff", slot([]string{"massage"}, "zoe", 100), []string{"m-2"}},
		{"later slot", persistence.WaitlistMatch{StaffID: "ana", Start: at(11, 0), End: at(12, 0), Limit: 10},
			[]string{"m-4", "m-8", "m-6", "m-0", "m-1", "m-9"}},
	} {
		wantEqual(t, "WaitlistMatch "+c.name, match(c.m), c.want)
	}
	got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.WaitlistEntry, error) {
		return tx.WaitlistMatch(ctx, slot([]string{"massage"}, "ana", 1))
	})
	wantEqual(t, "matched entry", got, []persistence.WaitlistEntry{stored(es[1], 1)})
}

func testWaitlistExpire(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	now := at(12, 0)
	var es []persistence.WaitlistEntry
	for i := range 5 { // windows ending before now, the earliest last
		es = append(es, wait(fmt.Sprint("x-", i), fmt.Sprint("c", i), at(8, 0), at(11, 50-i), i))
	}
	es = append(es,
		wait("x-5", "c5", at(8, 0), now, 5),              // ends at now: not before it
		wait("x-6", "c6", at(8, 0), at(18, 0), 6),        // still open
		wait("x-7", "c7", at(8, 0), at(9, 0), 7),         // offered below
		wait("x-8", "c8", at(8, 0), at(9, 0).Add(-1), 8), // cancelled below
	)
	addWaits(t, s, es...)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, id := range []string{"x-7", "x-8"} {
			e, err := tx.WaitlistGet(ctx, id)
			if err != nil {
				return err
			}
			e.Status = persistence.WaitlistCancelled
			if id == "x-7" {
				e.Status, e.OfferedAppointmentID = persistence.WaitlistOffered, "a-7"
			}
			if _, err := tx.WaitlistUpdate(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	expire := func(limit int) (int, error) {
		return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (int, error) {
			return tx.WaitlistExpire(ctx, now, limit)
		})
	}
	statuses := func() map[string]persistence.WaitlistStatus {
		t.Helper()
		out := map[string]persistence.WaitlistStatus{}
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			for _, e := range es {
				got, err := tx.WaitlistGet(ctx, e.ID)
				if err != nil {
					return err
				}
				out[e.ID] = got.Status
			}
			return nil
		})
		return out
	}
	if n, err := expire(2); err != nil || n != 2 {
		t.Fatalf("WaitlistExpire(limit 2) = %d, %v; want 2", n, err)
	}
	// Earliest To first: x-4 and x-3.
	st := statuses()
	if st["x-4"] != persistence.WaitlistExpired || st["x-3"] != persistence.WaitlistExpired || st["x-0"] != persistence.WaitlistWaiting {
		t.Fatalf("after the first batch: %v", st)
	}
	for _, step := range []struct{ limit, want int }{{10, 3}, {10, 0}} {
		if n, err := expire(step.limit); err != nil || n != step.want {
			t.Fatalf("WaitlistExpire(limit %d) = %d, %v; want %d", step.limit, n, err, step.want)
		}
	}
	wantEqual(t, "statuses after expiry", statuses(), map[string]persistence.WaitlistStatus{
		"x-0": persistence.WaitlistExpired, "x-1": persistence.WaitlistExpired, "x-2": persistence.WaitlistExpired,
		"x-3": persistence.WaitlistExpired, "x-4": persistence.WaitlistExpired,
		"x-5": persistence.WaitlistWaiting, "x-6": persistence.WaitlistWaiting,
		"x-7": persistence.WaitlistOffered, "x-8": persistence.WaitlistCancelled,
	})
	got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.WaitlistEntry, error) {
		return tx.WaitlistGet(ctx, "x-0")
	})
	want := stored(es[0], 2)
	want.Status, want.UpdatedAt = persistence.WaitlistExpired, ct(now)
	wantEqual(t, "expired entry", got, want)
	_, err := expire(0)
	wantErr(t, "WaitlistExpire(limit 0)", err, persistence.ErrInvalid)
}

// testWaitlistAddConcurrent adds overlapping entries of one client from 6
// goroutines at once: exactly one may succeed.
func testWaitlistAddConcurrent(t *testing.T, open Opener) {
	const workers = 6
	s := migrated(t, open, persistence.Options{})
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			<-start
			e := wait(fmt.Sprint("r-", i), "c1", at(9, i), at(12, 0), i)
			errs[i] = txErr(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.WaitlistAdd(ctx, e) })
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, persistence.ErrConflict):
			t.Fatalf("add %d: %v, want nil or ErrConflict", i, err)
		}
	}
	got := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.WaitlistEntry, error) {
		return tx.WaitlistListByClient(ctx, "c1", true)
	})
	if ok != 1 || len(got) != 1 {
		t.Fatalf("%d adds succeeded, %d entries stored; want 1", ok, len(got))
	}
}

// ---- Packages ----

// pkg is a package of client c: sessions of massage and facial, expiring
// at expires.
func pkg(id, c string, sessions int, expires time.Time) persistence.Package {
	return persistence.Package{ID: id, ClientID: c, Name: "Bono " + id, ServiceIDs: []string{"massage", "facial"},
		SessionsTotal: sessions, ExpiresAt: expires, CreatedAt: base, UpdatedAt: base}
}

func grant(t *testing.T, s persistence.Store, ps ...persistence.Package) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, p := range ps {
			if err := tx.PackageGrant(ctx, p); err != nil {
				return fmt.Errorf("grant %s: %w", p.ID, err)
			}
		}
		return nil
	})
}

func getPackage(t *testing.T, s persistence.Store, id string) persistence.Package {
	t.Helper()
	return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Package, error) {
		return tx.PackageGet(ctx, id)
	})
}

func redeem(t *testing.T, s persistence.Store, r persistence.PackageRedeem) (persistence.PackageRedemption, error) {
	return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.PackageRedemption, error) {
		return tx.PackageRedeem(ctx, r)
	})
}

func release(t *testing.T, s persistence.Store, appointmentID string, at time.Time) error {
	return txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.PackageRelease(ctx, appointmentID, at)
	})
}

func testPackages(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	_, err := txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Package, error) {
		return tx.PackageGet(ctx, "p-1")
	})
	wantErr(t, "get absent", err, persistence.ErrNotFound)

	p1 := pkg("p-1", "c1", 5, base.Add(90*24*time.Hour))
	p1.ServiceIDs = []string{"massage", "facial", "massage"}
	p1.Version = 4 // ignored
	grant(t, s, p1)
	want := p1
	want.ServiceIDs, want.Version = []string{"facial", "massage"}, 1
	want.ExpiresAt, want.CreatedAt, want.UpdatedAt = ct(p1.ExpiresAt), ct(base), ct(base)
	wantEqual(t, "get", getPackage(t, s, "p-1"), want)
	wantEqual(t, "caller's services", p1.ServiceIDs, []string{"massage", "facial", "massage"})
	wantErr(t, "duplicate grant", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.PackageGrant(ctx, pkg("p-1", "c2", 1, base))
	}), persistence.ErrConflict)

	now := base.Add(24 * time.Hour)
	grant(t, s,
		pkg("p-2", "c1", 1, now.Add(time.Hour)),  // used up below
		pkg("p-3", "c1", 3, now),                 // expires at now: still active
		pkg("p-4", "c1", 3, now.Add(-time.Hour)), // expired
		pkg("p-5", "c2", 3, now.Add(time.Hour)),  // another client's
		pkg("p-0", "c1", 2, now.Add(time.Hour)),  // same expiry as p-2, lower ID
	)
	if _, err := redeem(t, s, persistence.PackageRedeem{ID: newID(), PackageID: "p-2", AppointmentID: "a-1",
		ServiceID: "massage", ClientID: "c1", At: base}); err != nil {
		t.Fatalf("redeem: %v", err)
	}
	list := func(client string, activeOnly bool) []string {
		t.Helper()
		ps := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Package, error) {
			return tx.PackageListByClient(ctx, client, now, activeOnly)
		})
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	wantEqual(t, "all packages of c1", list("c1", false), []string{"p-4", "p-3", "p-0", "p-2", "p-1"})
	wantEqual(t, "active packages of c1", list("c1", true), []string{"p-3", "p-0", "p-1"})
	wantEqual(t, "packages of c2", list("c2", true), []string{"p-5"})
	wantEqual(t, "packages of c3", list("c3", false), []string{})
	listed := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.Package, error) {
		return tx.PackageListByClient(ctx, "c1", now, true)
	})
	wantEqual(t, "listed p-1", listed[2], want)
}

func testPackageRedeem(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	expires := base.Add(30 * 24 * time.Hour)
	grant(t, s, pkg("p-1", "c1", 2, expires), pkg("p-2", "c2", 2, expires))
	req := func(id, appt string, f func(*persistence.PackageRedeem)) persistence.PackageRedeem {
		r := persistence.PackageRedeem{ID: id, PackageID: "p-1", AppointmentID: appt, ServiceID: "facial",
			ClientID: "c1", At: base.Add(time.Hour)}
		if f != nil {
			f(&r)
		}
		return r
	}

	r1, err := redeem(t, s, req("r-1", "a-1", nil))
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	wantR1 := persistence.PackageRedemption{ID: "r-1", PackageID: "p-1", AppointmentID: "a-1", At: ct(base.Add(time.Hour))}
	wantEqual(t, "redemption", r1, wantR1)
	p := getPackage(t, s, "p-1")
	if p.SessionsUsed != 1 || p.Version != 2 || !p.UpdatedAt.Equal(ct(base.Add(time.Hour))) {
		t.Fatalf("package after redeem: %+v", p)
	}

	// A retry for the same appointment returns the redemption in force,
	// whatever its ID, package and time, and writes nothing.
	again, err := redeem(t, s, req("r-other", "a-1", func(r *persistence.PackageRedeem) {
		r.At, r.ServiceID = base.Add(2*time.Hour), "massage"
	}))
	if err != nil {
		t.Fatalf("redeem again: %v", err)
	}
	wantEqual(t, "redeem again", again, wantR1)
	if got := getPackage(t, s, "p-1"); got.SessionsUsed != 1 || got.Version != 2 {
		t.Fatalf("package after the retry: %+v", got)
	}

	// Refusals.
	for _, c := range []struct {
		name string
		r    persistence.PackageRedeem
		want []error
	}{
		{"unknown package", req("r-x", "a-x", func(r *persistence.PackageRedeem) { r.PackageID = "nope" }),
			[]error{persistence.ErrNotFound}},
		{"another client's package", req("r-x", "a-x", func(r *persistence.PackageRedeem) { r.PackageID = "p-2" }),
			[]error{persistence.ErrNotFound}},
		{"service not covered", req("r-x", "a-x", func(r *persistence.PackageRedeem) { r.ServiceID = "nails" }),
			[]error{persistence.ErrRefused, persistence.ErrServiceNotCovered}},
		{"expired", req("r-x", "a-x", func(r *persistence.PackageRedeem) { r.At = expires.Add(time.Microsecond) }),
			[]error{persistence.ErrRefused, persistence.ErrPackageExpired}},
		{"duplicate redemption ID", req("r-1", "a-x", nil), []error{persistence.ErrConflict}},
		{"appointment redeemed by another client", req("r-x", "a-1", func(r *persistence.PackageRedeem) {
			r.PackageID, r.ClientID = "p-2", "c2"
		}), []error{persistence.ErrConflict}},
	} {
		_, err := redeem(t, s, c.r)
		for _, target := range c.want {
			wantErr(t, "redeem "+c.name, err, target)
		}
		if errors.Is(err, persistence.ErrInvalid) {
			t.Fatalf("redeem %s: %v is ErrInvalid", c.name, err)
		}
	}
	// Usable at ExpiresAt itself.
	r2, err := redeem(t, s, req("r-2", "a-2", func(r *persistence.PackageRedeem) { r.At = expires }))
	if err != nil {
		t.Fatalf("redeem at ExpiresAt: %v", err)
	}
	_, err = redeem(t, s, req("r-3", "a-3", nil))
	wantErr(t, "redeem exhausted", err, persistence.ErrPackageExhausted)
	wantErr(t, "redeem exhausted", err, persistence.ErrRefused)
	if got := getPackage(t, s, "p-1"); got.SessionsUsed != 2 || got.Version != 3 {
		t.Fatalf("package after refusals: %+v", got)
	}

	// Release gives the session back, once.
	relAt := base.Add(3 * time.Hour)
	if err := release(t, s, "a-1", relAt); err != nil {
		t.Fatalf("release: %v", err)
	}
	if got := getPackage(t, s, "p-1"); got.SessionsUsed != 1 || got.Version != 4 || !got.UpdatedAt.Equal(ct(relAt)) {
		t.Fatalf("package after release: %+v", got)
	}
	if err := release(t, s, "a-1", relAt.Add(time.Hour)); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if got := getPackage(t, s, "p-1"); got.SessionsUsed != 1 || got.Version != 4 {
		t.Fatalf("package after the second release: %+v", got)
	}
	wantErr(t, "release of an appointment never redeemed", release(t, s, "a-9", relAt), persistence.ErrNotFound)

	// A released appointment may be redeemed again: a new redemption.
	r4, err := redeem(t, s, req("r-4", "a-1", func(r *persistence.PackageRedeem) { r.At = base.Add(4 * time.Hour) }))
	if err != nil || r4.ID != "r-4" {
		t.Fatalf("redeem after release = %+v, %v", r4, err)
	}
	// Release works on an expired package too.
	if err := release(t, s, "a-2", expires.Add(time.Hour)); err != nil {
		t.Fatalf("release after expiry: %v", err)
	}
	reds := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.PackageRedemption, error) {
		return tx.PackageRedemptionList(ctx, "p-1")
	})
	released1 := wantR1
	released1.ReleasedAt = ct(relAt)
	released2 := r2
	released2.ReleasedAt = ct(expires.Add(time.Hour))
	wantEqual(t, "redemptions", reds, []persistence.PackageRedemption{released1, r4, released2})
	if got := getPackage(t, s, "p-1"); got.SessionsUsed != 1 {
		t.Fatalf("package at the end: %+v", got)
	}
	reds = mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.PackageRedemption, error) {
		return tx.PackageRedemptionList(ctx, "p-2")
	})
	wantEqual(t, "redemptions of p-2", reds, []persistence.PackageRedemption{})
}

// testPackageRedeemConcurrent redeems the last 3 sessions of a package for
// 10 appointments at once: exactly 3 succeed, the others are refused as
// exhausted.
func testPackageRedeemConcurrent(t *testing.T, open Opener) {
	const workers, total = 10, 5
	s := migrated(t, open, persistence.Options{})
	grant(t, s, pkg("p-1", "c1", total, base.Add(time.Hour)))
	for i := range total - 3 {
		if _, err := redeem(t, s, persistence.PackageRedeem{ID: newID(), PackageID: "p-1",
			AppointmentID: fmt.Sprint("before-", i), ServiceID: "massage", ClientID: "c1", At: base}); err != nil {
			t.Fatalf("redeem %d: %v", i, err)
		}
	}
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			<-start
			_, errs[i] = redeem(t, s, persistence.PackageRedeem{ID: newID(), PackageID: "p-1",
				AppointmentID: fmt.Sprint("a-", i), ServiceID: "massage", ClientID: "c1", At: base})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, persistence.ErrPackageExhausted):
			t.Fatalf("redeem %d: %v, want nil or ErrPackageExhausted", i, err)
		}
	}
	p := getPackage(t, s, "p-1")
	reds := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.PackageRedemption, error) {
		return tx.PackageRedemptionList(ctx, "p-1")
	})
	if ok != 3 || p.SessionsUsed != p.SessionsTotal || len(reds) != total {
		t.Fatalf("%d redemptions succeeded, package %+v, %d redemptions stored; want 3, %d used, %d",
			ok, p, len(reds), total, total)
	}
}

// ---- Vouchers ----

// voucher is a voucher for code with the balance, expiring at expires.
func voucher(id, code string, balance int64, expires time.Time) persistence.Voucher {
	return persistence.Voucher{ID: id, CodeHash: persistence.HashVoucherCode(code), BalanceMinor: balance,
		ExpiresAt: expires, CreatedAt: base, UpdatedAt: base}
}

func issue(t *testing.T, s persistence.Store, vs ...persistence.Voucher) {
	t.Helper()
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, v := range vs {
			if err := tx.VoucherIssue(ctx, v); err != nil {
				return fmt.Errorf("issue %s: %w", v.ID, err)
			}
		}
		return nil
	})
}

func getVoucher(t *testing.T, s persistence.Store, code string, now time.Time) (persistence.Voucher, error) {
	return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.Voucher, error) {
		return tx.VoucherGetByCode(ctx, code, now)
	})
}

func debit(t *testing.T, s persistence.Store, p persistence.VoucherDebitParams) (persistence.VoucherDebit, error) {
	return txVal(t, s, func(ctx context.Context, tx persistence.Tx) (persistence.VoucherDebit, error) {
		return tx.VoucherDebit(ctx, p)
	})
}

func reverse(t *testing.T, s persistence.Store, appointmentID string, at time.Time) ([]persistence.VoucherDebit, error) {
	return txVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.VoucherDebit, error) {
		return tx.VoucherReverse(ctx, appointmentID, at)
	})
}

func balance(t *testing.T, s persistence.Store, code string) int64 {
	t.Helper()
	v, err := getVoucher(t, s, code, base)
	if err != nil {
		t.Fatalf("get %s: %v", code, err)
	}
	return v.BalanceMinor
}

func testVouchers(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	expires := base.Add(365 * 24 * time.Hour)
	v1 := voucher("v-1", "Regalo-2025", 15_000_000, expires)
	v1.ClientID, v1.Version = "c1", 3 // version ignored
	issue(t, s, v1)
	want := v1
	want.Version, want.ExpiresAt, want.CreatedAt, want.UpdatedAt = 1, ct(expires), ct(base), ct(base)
	for _, code := range []string{"REGALO-2025", " regalo-2025\t", "Regalo-2025"} {
		got, err := getVoucher(t, s, code, base)
		if err != nil {
			t.Fatalf("get %q: %v", code, err)
		}
		wantEqual(t, fmt.Sprintf("get %q", code), got, want)
	}
	if want.CodeHash == "REGALO-2025" || len(want.CodeHash) != 64 {
		t.Fatalf("code hash %q", want.CodeHash)
	}
	_, err := getVoucher(t, s, "REGALO-2026", base)
	wantErr(t, "unknown code", err, persistence.ErrNotFound)
	_, err = getVoucher(t, s, "REGALO 2025", base)
	wantErr(t, "code with inner space", err, persistence.ErrNotFound)
	if _, err := getVoucher(t, s, "regalo-2025", expires); err != nil {
		t.Fatalf("get at ExpiresAt: %v", err)
	}
	_, err = getVoucher(t, s, "regalo-2025", expires.Add(time.Microsecond))
	wantErr(t, "expired code", err, persistence.ErrNotFound)

	wantErr(t, "same code, other case", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.VoucherIssue(ctx, voucher("v-2", " regalo-2025 ", 1, expires))
	}), persistence.ErrConflict)
	wantErr(t, "duplicate ID", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.VoucherIssue(ctx, voucher("v-1", "OTRO", 1, expires))
	}), persistence.ErrConflict)
	issue(t, s, voucher("v-2", "OTRO", 1, expires))
	if got, err := getVoucher(t, s, "otro", base); err != nil || got.ID != "v-2" || got.ClientID != "" {
		t.Fatalf("bearer voucher = %+v, %v", got, err)
	}
}

func testVoucherDebit(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	expires := base.Add(30 * 24 * time.Hour)
	bound := voucher("v-1", "BOUND", 10_000, expires)
	bound.ClientID = "c1"
	issue(t, s, bound, voucher("v-2", "BEARER", 5_000, expires))
	req := func(id, code, appt string, amount int64, f func(*persistence.VoucherDebitParams)) persistence.VoucherDebitParams {
		p := persistence.VoucherDebitParams{ID: id, Code: code, ClientID: "c1", AppointmentID: appt,
			AmountMinor: amount, At: base.Add(time.Hour)}
		if f != nil {
			f(&p)
		}
		return p
	}

	d1, err := debit(t, s, req("d-1", " bound ", "a-1", 4_000, nil))
	if err != nil {
		t.Fatalf("debit: %v", err)
	}
	wantD1 := persistence.VoucherDebit{ID: "d-1", VoucherID: "v-1", AppointmentID: "a-1", AmountMinor: 4_000,
		At: ct(base.Add(time.Hour))}
	wantEqual(t, "debit", d1, wantD1)
	v, _ := getVoucher(t, s, "BOUND", base)
	if v.BalanceMinor != 6_000 || v.Version != 2 || !v.UpdatedAt.Equal(ct(base.Add(time.Hour))) {
		t.Fatalf("voucher after debit: %+v", v)
	}

	// A retry for the same voucher, appointment and amount returns the
	// debit in force, even with another ID, and writes nothing; another
	// amount is refused, not silently answered with the first debit.
	again, err := debit(t, s, req("d-other", "BOUND", "a-1", 4_000, nil))
	if err != nil {
		t.Fatalf("debit again: %v", err)
	}
	wantEqual(t, "debit again", again, wantD1)
	_, err = debit(t, s, req("d-other", "BOUND", "a-1", 9_000, nil))
	wantErr(t, "debit again with another amount", err, persistence.ErrVoucherAlreadyApplied)
	if b := balance(t, s, "BOUND"); b != 6_000 {
		t.Fatalf("balance after the retries: %d", b)
	}

	// Refusals.
	for _, c := range []struct {
		name string
		p    persistence.VoucherDebitParams
		want []error
	}{
		{"unknown code", req("d-x", "NOPE", "a-x", 1, nil), []error{persistence.ErrNotFound}},
		{"another client's voucher", req("d-x", "BOUND", "a-x", 1, func(p *persistence.VoucherDebitParams) {
			p.ClientID = "c2"
		}), []error{persistence.ErrNotFound}},
		{"expired", req("d-x", "BOUND", "a-x", 1, func(p *persistence.VoucherDebitParams) {
			p.At = expires.Add(time.Microsecond)
		}), []error{persistence.ErrNotFound}},
		{"balance too small", req("d-x", "BOUND", "a-x", 6_001, nil),
			[]error{persistence.ErrRefused, persistence.ErrInsufficientBalance}},
		{"duplicate debit ID", req("d-1", "BEARER", "a-x", 1, nil), []error{persistence.ErrConflict}},
	} {
		_, err := debit(t, s, c.p)
		for _, target := range c.want {
			wantErr(t, "debit "+c.name, err, target)
		}
	}
	if b := balance(t, s, "BOUND"); b != 6_000 {
		t.Fatalf("balance after refusals: %d", b)
	}

	// The whole balance, at ExpiresAt; a bearer voucher for the same
	// appointment (split payment); a bearer voucher for another client.
	d2, err := debit(t, s, req("d-2", "BOUND", "a-2", 6_000, func(p *persistence.VoucherDebitParams) { p.At = expires }))
	if err != nil {
		t.Fatalf("debit the whole balance: %v", err)
	}
	d3, err := debit(t, s, req("d-3", "BEARER", "a-2", 2_000, nil))
	if err != nil {
		t.Fatalf("debit a second voucher: %v", err)
	}
	d4, err := debit(t, s, req("d-4", "BEARER", "a-4", 1_000, func(p *persistence.VoucherDebitParams) { p.ClientID = "c9" }))
	if err != nil {
		t.Fatalf("debit a bearer voucher: %v", err)
	}
	if b1, b2 := balance(t, s, "BOUND"), balance(t, s, "BEARER"); b1 != 0 || b2 != 2_000 {
		t.Fatalf("balances %d, %d; want 0, 2000", b1, b2)
	}

	// Reversal credits back every debit in force of the appointment, once,
	// even after the voucher expired.
	revAt := expires.Add(time.Hour)
	got, err := reverse(t, s, "a-2", revAt)
	if err != nil {
		t.Fatalf("reverse: %v", err)
	}
	rev2, rev3 := d2, d3
	rev2.ReversedAt, rev3.ReversedAt = ct(revAt), ct(revAt)
	wantEqual(t, "reversed", got, []persistence.VoucherDebit{rev2, rev3})
	if b1, b2 := balance(t, s, "BOUND"), balance(t, s, "BEARER"); b1 != 6_000 || b2 != 4_000 {
		t.Fatalf("balances after reversal %d, %d; want 6000, 4000", b1, b2)
	}
	got, err = reverse(t, s, "a-2", revAt.Add(time.Hour))
	wantLen(t, "second reversal", got, err, 0)
	if b1, b2 := balance(t, s, "BOUND"), balance(t, s, "BEARER"); b1 != 6_000 || b2 != 4_000 {
		t.Fatalf("balances after the second reversal %d, %d", b1, b2)
	}
	_, err = reverse(t, s, "a-9", revAt)
	wantErr(t, "reverse an appointment never debited", err, persistence.ErrNotFound)

	// After a reversal the appointment may be debited again.
	d5, err := debit(t, s, req("d-5", "BOUND", "a-2", 500, nil))
	if err != nil || d5.ID != "d-5" {
		t.Fatalf("debit after reversal = %+v, %v", d5, err)
	}
	v, _ = getVoucher(t, s, "BOUND", base)
	if v.BalanceMinor != 5_500 || v.Version != 5 {
		t.Fatalf("voucher at the end: %+v", v)
	}
	list := func(voucherID string) []persistence.VoucherDebit {
		t.Helper()
		return mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.VoucherDebit, error) {
			return tx.VoucherDebitList(ctx, voucherID)
		})
	}
	wantEqual(t, "debits of v-1", list("v-1"), []persistence.VoucherDebit{wantD1, d5, rev2})
	wantEqual(t, "debits of v-2", list("v-2"), []persistence.VoucherDebit{rev3, d4})
	wantEqual(t, "debits of an unknown voucher", list("nope"), []persistence.VoucherDebit{})
}

// testVoucherDebitConcurrent debits 3000 from a 10000 voucher for 10
// appointments at once: exactly 3 succeed, leaving 1000.
func testVoucherDebitConcurrent(t *testing.T, open Opener) {
	const workers = 10
	s := migrated(t, open, persistence.Options{})
	issue(t, s, voucher("v-1", "RACE", 10_000, base.Add(time.Hour)))
	start := make(chan struct{})
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			<-start
			_, errs[i] = debit(t, s, persistence.VoucherDebitParams{ID: newID(), Code: "race", ClientID: "c1",
				AppointmentID: fmt.Sprint("a-", i), AmountMinor: 3_000, At: base})
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, persistence.ErrInsufficientBalance):
			t.Fatalf("debit %d: %v, want nil or ErrInsufficientBalance", i, err)
		}
	}
	ds := mustVal(t, s, func(ctx context.Context, tx persistence.Tx) ([]persistence.VoucherDebit, error) {
		return tx.VoucherDebitList(ctx, "v-1")
	})
	if b := balance(t, s, "RACE"); ok != 3 || b != 1_000 || len(ds) != 3 {
		t.Fatalf("%d debits succeeded, balance %d, %d debits stored; want 3, 1000, 3", ok, b, len(ds))
	}
}

// ---- Invalid input ----

// testOffersInvalid checks that malformed input is refused with ErrInvalid
// and writes nothing.
// testAppointmentCredits: what packages and vouchers pay of an
// appointment, reversed debits and released sessions left out.
func testAppointmentCredits(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	expires := base.Add(30 * 24 * time.Hour)
	grant(t, s, pkg("p-1", "c1", 2, expires))
	issue(t, s, voucher("v-1", "ONE", 10_000, expires), voucher("v-2", "TWO", 10_000, expires))
	credits := func() persistence.AppointmentCredits {
		t.Helper()
		var c persistence.AppointmentCredits
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			c, err = tx.AppointmentCredits(ctx, "a-1")
			return err
		})
		return c
	}
	if c := credits(); c.PackageSession || len(c.VoucherDebits) != 0 {
		t.Fatalf("nothing spent: %+v", c)
	}
	if _, err := redeem(t, s, persistence.PackageRedeem{ID: "r-1", PackageID: "p-1", AppointmentID: "a-1", ServiceID: "facial",
		ClientID: "c1", At: base}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []persistence.VoucherDebitParams{
		{ID: "d-1", Code: "ONE", ClientID: "c1", AppointmentID: "a-1", AmountMinor: 3_000, At: base},
		{ID: "d-2", Code: "TWO", ClientID: "c1", AppointmentID: "a-1", AmountMinor: 2_500, At: base},
		{ID: "d-3", Code: "TWO", ClientID: "c1", AppointmentID: "a-2", AmountMinor: 1_000, At: base},
	} {
		if _, err := debit(t, s, d); err != nil {
			t.Fatal(err)
		}
	}
	c := credits()
	if !c.PackageSession || len(c.VoucherDebits) != 2 || c.VoucherDebits[0].AmountMinor != 3_000 || c.VoucherDebits[1].AmountMinor != 2_500 {
		t.Fatalf("spent: %+v", c)
	}
	if err := release(t, s, "a-1", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := reverse(t, s, "a-1", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if c := credits(); c.PackageSession || len(c.VoucherDebits) != 0 {
		t.Fatalf("after giving back: %+v", c)
	}
}

func testOffersInvalid(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	w := wait("w-1", "c1", at(9, 0), at(12, 0), 0)
	withWait := func(f func(*persistence.WaitlistEntry)) persistence.WaitlistEntry { v := w; f(&v); return v }
	m := persistence.WaitlistMatch{StaffID: "ana", Start: at(10, 0), End: at(11, 0), Limit: 10}
	withMatch := func(f func(*persistence.WaitlistMatch)) persistence.WaitlistMatch { v := m; f(&v); return v }
	p := pkg("p-1", "c1", 3, base.Add(time.Hour))
	withPkg := func(f func(*persistence.Package)) persistence.Package { v := p; f(&v); return v }
	r := persistence.PackageRedeem{ID: "r-1", PackageID: "p-1", AppointmentID: "a-1", ServiceID: "massage",
		ClientID: "c1", At: base}
	withRedeem := func(f func(*persistence.PackageRedeem)) persistence.PackageRedeem { v := r; f(&v); return v }
	v := voucher("v-1", "CODE", 1000, base.Add(time.Hour))
	withVoucher := func(f func(*persistence.Voucher)) persistence.Voucher { x := v; f(&x); return x }
	d := persistence.VoucherDebitParams{ID: "d-1", Code: "CODE", ClientID: "c1", AppointmentID: "a-1",
		AmountMinor: 100, At: base}
	withDebit := func(f func(*persistence.VoucherDebitParams)) persistence.VoucherDebitParams { x := d; f(&x); return x }

	cases := map[string]func(context.Context, persistence.Tx) error{}
	for name, e := range map[string]persistence.WaitlistEntry{
		"no ID":                withWait(func(v *persistence.WaitlistEntry) { v.ID = "" }),
		"no client":            withWait(func(v *persistence.WaitlistEntry) { v.ClientID = "" }),
		"no service":           withWait(func(v *persistence.WaitlistEntry) { v.ServiceID = "" }),
		"no from":              withWait(func(v *persistence.WaitlistEntry) { v.From = time.Time{} }),
		"to before from":       withWait(func(v *persistence.WaitlistEntry) { v.To = v.From.Add(-time.Minute) }),
		"empty window":         withWait(func(v *persistence.WaitlistEntry) { v.To = v.From }),
		"unknown status":       withWait(func(v *persistence.WaitlistEntry) { v.Status = "pending" }),
		"empty status":         withWait(func(v *persistence.WaitlistEntry) { v.Status = "" }),
		"offered without appt": withWait(func(v *persistence.WaitlistEntry) { v.Status = persistence.WaitlistOffered }),
		"waiting with appt":    withWait(func(v *persistence.WaitlistEntry) { v.OfferedAppointmentID = "a-1" }),
	} {
		cases["WaitlistAdd "+name] = func(ctx context.Context, tx persistence.Tx) error { return tx.WaitlistAdd(ctx, e) }
		cases["WaitlistUpdate "+name] = func(ctx context.Context, tx persistence.Tx) error {
			e.Version = 1
			_, err := tx.WaitlistUpdate(ctx, e)
			return err
		}
	}
	cases["WaitlistAdd offered"] = func(ctx context.Context, tx persistence.Tx) error {
		return tx.WaitlistAdd(ctx, withWait(func(v *persistence.WaitlistEntry) {
			v.Status, v.OfferedAppointmentID = persistence.WaitlistOffered, "a-1"
		}))
	}
	cases["WaitlistUpdate version 0"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.WaitlistUpdate(ctx, w)
		return err
	}
	for name, m := range map[string]persistence.WaitlistMatch{
		"no staff":      withMatch(func(v *persistence.WaitlistMatch) { v.StaffID = "" }),
		"no start":      withMatch(func(v *persistence.WaitlistMatch) { v.Start = time.Time{} }),
		"end at start":  withMatch(func(v *persistence.WaitlistMatch) { v.End = v.Start }),
		"limit 0":       withMatch(func(v *persistence.WaitlistMatch) { v.Limit = 0 }),
		"limit too big": withMatch(func(v *persistence.WaitlistMatch) { v.Limit = persistence.MaxWaitlistMatchLimit + 1 }),
		"empty service": withMatch(func(v *persistence.WaitlistMatch) { v.ServiceIDs = []string{"massage", ""} }),
	} {
		cases["WaitlistMatch "+name] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.WaitlistMatch(ctx, m)
			return err
		}
	}
	cases["WaitlistListByClient no client"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.WaitlistListByClient(ctx, "", true)
		return err
	}
	cases["WaitlistExpire no time"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.WaitlistExpire(ctx, time.Time{}, 10)
		return err
	}
	cases["WaitlistExpire limit 0"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.WaitlistExpire(ctx, base, 0)
		return err
	}
	for name, p := range map[string]persistence.Package{
		"no ID":          withPkg(func(v *persistence.Package) { v.ID = "" }),
		"no client":      withPkg(func(v *persistence.Package) { v.ClientID = "" }),
		"no services":    withPkg(func(v *persistence.Package) { v.ServiceIDs = nil }),
		"empty service":  withPkg(func(v *persistence.Package) { v.ServiceIDs = []string{""} }),
		"zero sessions":  withPkg(func(v *persistence.Package) { v.SessionsTotal = 0 }),
		"sessions used":  withPkg(func(v *persistence.Package) { v.SessionsUsed = 1 }),
		"negative used":  withPkg(func(v *persistence.Package) { v.SessionsUsed = -1 }),
		"no expiry":      withPkg(func(v *persistence.Package) { v.ExpiresAt = time.Time{} }),
		"negative total": withPkg(func(v *persistence.Package) { v.SessionsTotal = -3 }),
	} {
		cases["PackageGrant "+name] = func(ctx context.Context, tx persistence.Tx) error { return tx.PackageGrant(ctx, p) }
	}
	cases["PackageListByClient no client"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PackageListByClient(ctx, "", base, false)
		return err
	}
	cases["PackageListByClient active without now"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.PackageListByClient(ctx, "c1", time.Time{}, true)
		return err
	}
	for name, r := range map[string]persistence.PackageRedeem{
		"no ID":          withRedeem(func(v *persistence.PackageRedeem) { v.ID = "" }),
		"no package":     withRedeem(func(v *persistence.PackageRedeem) { v.PackageID = "" }),
		"no appointment": withRedeem(func(v *persistence.PackageRedeem) { v.AppointmentID = "" }),
		"no service":     withRedeem(func(v *persistence.PackageRedeem) { v.ServiceID = "" }),
		"no client":      withRedeem(func(v *persistence.PackageRedeem) { v.ClientID = "" }),
		"no time":        withRedeem(func(v *persistence.PackageRedeem) { v.At = time.Time{} }),
	} {
		cases["PackageRedeem "+name] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.PackageRedeem(ctx, r)
			return err
		}
	}
	cases["PackageRelease no appointment"] = func(ctx context.Context, tx persistence.Tx) error {
		return tx.PackageRelease(ctx, "", base)
	}
	cases["PackageRelease no time"] = func(ctx context.Context, tx persistence.Tx) error {
		return tx.PackageRelease(ctx, "a-1", time.Time{})
	}
	for name, v := range map[string]persistence.Voucher{
		"no ID":            withVoucher(func(v *persistence.Voucher) { v.ID = "" }),
		"plain code":       withVoucher(func(v *persistence.Voucher) { v.CodeHash = "CODE" }),
		"upper-case hash":  withVoucher(func(v *persistence.Voucher) { v.CodeHash = persistence.HashVoucherCode("x")[:63] + "A" }),
		"no hash":          withVoucher(func(v *persistence.Voucher) { v.CodeHash = "" }),
		"zero balance":     withVoucher(func(v *persistence.Voucher) { v.BalanceMinor = 0 }),
		"negative balance": withVoucher(func(v *persistence.Voucher) { v.BalanceMinor = -1 }),
		"no expiry":        withVoucher(func(v *persistence.Voucher) { v.ExpiresAt = time.Time{} }),
	} {
		cases["VoucherIssue "+name] = func(ctx context.Context, tx persistence.Tx) error { return tx.VoucherIssue(ctx, v) }
	}
	for _, code := range []string{"", "  \t"} {
		cases[fmt.Sprintf("VoucherGetByCode %q", code)] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.VoucherGetByCode(ctx, code, base)
			return err
		}
	}
	for name, d := range map[string]persistence.VoucherDebitParams{
		"no ID":           withDebit(func(v *persistence.VoucherDebitParams) { v.ID = "" }),
		"no code":         withDebit(func(v *persistence.VoucherDebitParams) { v.Code = " " }),
		"no client":       withDebit(func(v *persistence.VoucherDebitParams) { v.ClientID = "" }),
		"no appointment":  withDebit(func(v *persistence.VoucherDebitParams) { v.AppointmentID = "" }),
		"zero amount":     withDebit(func(v *persistence.VoucherDebitParams) { v.AmountMinor = 0 }),
		"negative amount": withDebit(func(v *persistence.VoucherDebitParams) { v.AmountMinor = -100 }),
		"no time":         withDebit(func(v *persistence.VoucherDebitParams) { v.At = time.Time{} }),
	} {
		cases["VoucherDebit "+name] = func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.VoucherDebit(ctx, d)
			return err
		}
	}
	cases["VoucherReverse no appointment"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.VoucherReverse(ctx, "", base)
		return err
	}
	cases["VoucherReverse no time"] = func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.VoucherReverse(ctx, "a-1", time.Time{})
		return err
	}
	// Valid rows for the calls that need them, so that only the input is
	// at fault.
	grant(t, s, p)
	issue(t, s, v)
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		wantErr(t, name, txErr(t, s, cases[name]), persistence.ErrInvalid)
	}

	// Nothing was written.
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		if es, err := tx.WaitlistListByClient(ctx, "c1", true); err != nil || len(es) != 0 {
			return fmt.Errorf("waitlist: %v, %v", es, err)
		}
		if ps, err := tx.PackageListByClient(ctx, "c1", base, false); err != nil || len(ps) != 1 || ps[0].SessionsUsed != 0 || ps[0].Version != 1 {
			return fmt.Errorf("packages: %+v, %v", ps, err)
		}
		if rs, err := tx.PackageRedemptionList(ctx, "p-1"); err != nil || len(rs) != 0 {
			return fmt.Errorf("redemptions: %v, %v", rs, err)
		}
		if got, err := tx.VoucherGetByCode(ctx, "code", base); err != nil || got.BalanceMinor != 1000 || got.Version != 1 {
			return fmt.Errorf("voucher: %+v, %v", got, err)
		}
		if ds, err := tx.VoucherDebitList(ctx, "v-1"); err != nil || len(ds) != 0 {
			return fmt.Errorf("debits: %v, %v", ds, err)
		}
		return nil
	})
}
