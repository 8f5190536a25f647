package booking

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence"
)

func TestWaitlist(t *testing.T) {
	f := newFixture(t)
	window := WaitlistInput{ServiceID: "facial", From: at(9, 0), To: at(12, 0)}
	join := func(by service.Caller, in WaitlistInput) (e persistence.WaitlistEntry, err error) {
		err = f.inTx(func(ctx context.Context, tx persistence.Tx) (err error) {
			e, err = f.svc.JoinWaitlist(ctx, tx, by, in)
			return err
		})
		return e, err
	}
	leave := func(by service.Caller, id string) (e persistence.WaitlistEntry, err error) {
		err = f.inTx(func(ctx context.Context, tx persistence.Tx) (err error) {
			e, err = f.svc.LeaveWaitlist(ctx, tx, by, id)
			return err
		})
		return e, err
	}
	e, err := join(maria, window)
	if err != nil || e.ClientID != "maria" || e.Status != persistence.WaitlistWaiting || e.Version != 1 {
		t.Fatalf("join: %+v, %v", e, err)
	}
	for _, tc := range []struct {
		name string
		by   service.Caller
		in   func(WaitlistInput) WaitlistInput
		code string
	}{
		{"overlapping second entry", maria, func(in WaitlistInput) WaitlistInput { return in }, fault.CodeConflict},
		{"for someone else", maria, func(in WaitlistInput) WaitlistInput { in.ClientID = "juan"; return in }, fault.CodeForbidden},
		{"inverted window", juan, func(in WaitlistInput) WaitlistInput { in.From, in.To = in.To, in.From; return in }, fault.CodeValidationFailed},
		{"window too long", juan, func(in WaitlistInput) WaitlistInput { in.To = in.From.AddDate(0, 0, 91); return in }, fault.CodeValidationFailed},
		{"window passed", juan, func(in WaitlistInput) WaitlistInput {
			in.From, in.To = now.Add(-2*time.Hour), now.Add(-time.Hour)
			return in
		}, fault.CodeValidationFailed},
		{"unknown service", juan, func(in WaitlistInput) WaitlistInput { in.ServiceID = "sauna"; return in }, fault.CodeValidationFailed},
		{"unknown staff", juan, func(in WaitlistInput) WaitlistInput { in.StaffID = "zoe"; return in }, fault.CodeValidationFailed},
		{"anonymous", service.Caller{}, func(in WaitlistInput) WaitlistInput { return in }, fault.CodeUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := join(tc.by, tc.in(window))
			wantCode(t, err, tc.code)
		})
	}
	// Staff put a client on the list.
	forJuan := window
	forJuan.ClientID, forJuan.StaffID = "juan", "ana"
	if e, err := join(desk, forJuan); err != nil || e.ClientID != "juan" || e.StaffID != "ana" {
		t.Fatalf("desk for juan: %+v, %v", e, err)
	}
	ctx := context.Background()
	if list, err := f.svc.Waitlist(ctx, maria, false); err != nil || len(list) != 1 || list[0].ID != e.ID {
		t.Fatalf("maria's waitlist %+v, %v", list, err)
	}
	_, err = leave(juan, e.ID)
	wantCode(t, err, fault.CodeNotFound)
	if left, err := leave(maria, e.ID); err != nil || left.Status != persistence.WaitlistCancelled {
		t.Fatalf("leave: %+v, %v", left, err)
	}
	_, err = leave(maria, e.ID)
	wantCode(t, err, fault.CodeInvalidTransition)
	if list, _ := f.svc.Waitlist(ctx, maria, false); len(list) != 0 {
		t.Fatalf("open entries after leaving %+v", list)
	}
	if list, _ := f.svc.Waitlist(ctx, maria, true); len(list) != 1 {
		t.Fatalf("all entries after leaving %+v", list)
	}
}

func TestPackages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	grant := func(by service.Caller, in PackageInput) (p persistence.Package, err error) {
		err = f.inTx(func(ctx context.Context, tx persistence.Tx) (err error) {
			p, err = f.svc.GrantPackage(ctx, tx, by, in)
			return err
		})
		return p, err
	}
	two := PackageInput{ClientID: "maria", Name: " Two facials ", ServiceIDs: []string{"facial", "facial"}, Sessions: 2, ExpiresAt: now.AddDate(0, 6, 0)}
	for _, tc := range []struct {
		name string
		by   service.Caller
		in   func(PackageInput) PackageInput
		code string
	}{
		{"not an admin", desk, func(in PackageInput) PackageInput { return in }, fault.CodeForbidden},
		{"no client", owner, func(in PackageInput) PackageInput { in.ClientID = ""; return in }, fault.CodeValidationFailed},
		{"no name", owner, func(in PackageInput) PackageInput { in.Name = " "; return in }, fault.CodeValidationFailed},
		{"no services", owner, func(in PackageInput) PackageInput { in.ServiceIDs = nil; return in }, fault.CodeValidationFailed},
		{"unknown service", owner, func(in PackageInput) PackageInput { in.ServiceIDs = []string{"nope"}; return in }, fault.CodeValidationFailed},
		{"no sessions", owner, func(in PackageInput) PackageInput { in.Sessions = 0; return in }, fault.CodeValidationFailed},
		{"expired", owner, func(in PackageInput) PackageInput { in.ExpiresAt = now; return in }, fault.CodeValidationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := grant(tc.by, tc.in(two))
			wantCode(t, err, tc.code)
		})
	}
	pkg, err := grant(owner, two)
	if err != nil || pkg.Name != "Two facials" || !slices.Equal(pkg.ServiceIDs, []string{"facial"}) || pkg.SessionsTotal != 2 {
		t.Fatalf("grant: %+v, %v", pkg, err)
	}
	entries := f.audit("package/" + pkg.ID)
	if len(entries) != 1 || entries[0].Action != "package.grant" || entries[0].ActorID != "owner" || entries[0].RequestID != "req-test" {
		t.Fatalf("audit %+v", entries)
	}
	var detail map[string]any
	if err := json.Unmarshal(entries[0].Detail, &detail); err != nil || detail["id"] != pkg.ID || detail["sessions_total"] != 2.0 || detail["sessions_used"] != 0.0 {
		t.Fatalf("audit detail %s", entries[0].Detail)
	}

	first := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0), PackageID: pkg.ID})
	f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(11, 0), PackageID: pkg.ID})
	// No session left: refused, and the hold made for it is released.
	_, err = f.svc.Hold(ctx, maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(12, 0), PackageID: pkg.ID})
	wantCode(t, err, fault.CodePackageExhausted)
	f.hold(juan, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(12, 0)})
	// Someone else's package does not exist for them; a service it does
	// not cover is not redeemable. Either way the slot is freed again.
	_, err = f.svc.Hold(ctx, juan, HoldInput{ServiceID: "facial", StaffID: "bea", Start: at(12, 0), PackageID: pkg.ID})
	wantCode(t, err, fault.CodeValidationFailed)
	massage, err := grant(owner, PackageInput{ClientID: "maria", Name: "Wraps", ServiceIDs: []string{"wet-wrap"}, Sessions: 1, ExpiresAt: now.AddDate(0, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Hold(ctx, maria, HoldInput{ServiceID: "facial", StaffID: "bea", Start: at(12, 0), PackageID: massage.ID})
	wantCode(t, err, fault.CodeNotRedeemable)
	if list := f.appointments(persistence.AppointmentRange{StaffID: "bea"}); len(list) != 0 {
		t.Fatalf("refused packages left holds: %+v", list)
	}

	used := func() int {
		t.Helper()
		list, err := f.svc.Packages(ctx, maria, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list {
			if p.ID == pkg.ID {
				return p.SessionsUsed
			}
		}
		t.Fatalf("package missing from %+v", list)
		return 0
	}
	if u := used(); u != 2 {
		t.Fatalf("sessions used %d, want 2", u)
	}
	// Cancelling three hours ahead (cut-off two hours) gives the session
	// back.
	if _, err := f.svc.Cancel(ctx, maria, f.load(maria, first.ID), ChangeInput{}); err != nil {
		t.Fatal(err)
	}
	if u := used(); u != 1 {
		t.Fatalf("sessions used after cancelling %d, want 1", u)
	}
}

func TestVouchers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	issue := func(by service.Caller, in VoucherInput) (v persistence.Voucher, code string, err error) {
		err = f.inTx(func(ctx context.Context, tx persistence.Tx) (err error) {
			v, code, err = f.svc.IssueVoucher(ctx, tx, by, in)
			return err
		})
		return v, code, err
	}
	_, _, err := issue(maria, VoucherInput{BalanceMinor: 10000, ExpiresAt: now.AddDate(0, 6, 0)})
	wantCode(t, err, fault.CodeForbidden)
	_, _, err = issue(owner, VoucherInput{ClientID: "a b", BalanceMinor: 0, ExpiresAt: now})
	if fe, _ := fault.From(err); err == nil || fe.Code != fault.CodeValidationFailed || len(fe.Details.(map[string]any)["fields"].([]fault.FieldError)) != 3 {
		t.Fatalf("invalid voucher: %v", err)
	}
	v, code, err := issue(owner, VoucherInput{ClientID: "maria", BalanceMinor: 10000, ExpiresAt: now.AddDate(0, 6, 0)})
	if err != nil || !regexp.MustCompile(`^SPA(-[A-HJKMNP-Z2-9]{4}){3}$`).MatchString(code) {
		t.Fatalf("issue: %+v %q, %v", v, code, err)
	}
	entries := f.audit("voucher/" + v.ID)
	if len(entries) != 1 || entries[0].Action != "voucher.issue" || strings.Contains(string(entries[0].Detail), code) ||
		string(entries[0].Detail) != fmt.Sprintf(`{"id":%q,"client_id":"maria","balance_minor":10000,"expires_at":%q}`, v.ID, v.ExpiresAt.Format(time.RFC3339Nano)) {
		t.Fatalf("audit %+v", entries)
	}

	balance := func(by service.Caller) int64 {
		t.Helper()
		v, err := f.svc.VoucherBalance(ctx, by, code)
		if err != nil {
			t.Fatalf("balance: %v", err)
		}
		return v.BalanceMinor
	}
	if b := balance(maria); b != 10000 {
		t.Fatalf("balance %d", b)
	}
	if b := balance(desk); b != 10000 {
		t.Fatalf("desk reads balance %d", b)
	}
	_, err = f.svc.VoucherBalance(ctx, juan, code)
	wantCode(t, err, fault.CodeNotFound)
	_, err = f.svc.VoucherBalance(ctx, maria, "SPA-NOPE-NOPE-NOPE")
	wantCode(t, err, fault.CodeNotFound)

	pay := func(by service.Caller, id string, in VoucherPayInput) (d persistence.VoucherDebit, err error) {
		err = f.inTx(func(ctx context.Context, tx persistence.Tx) error {
			a, err := f.svc.LoadIn(ctx, tx, by, id)
			if err != nil {
				return err
			}
			d, err = f.svc.PayWithVoucher(ctx, tx, by, a, in)
			return err
		})
		return d, err
	}
	ap := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(10, 0)})
	_, err = pay(maria, ap.ID, VoucherPayInput{Code: code, AmountMinor: ap.PriceMinor + 1})
	wantCode(t, err, fault.CodeValidationFailed)
	_, err = pay(juan, ap.ID, VoucherPayInput{Code: code, AmountMinor: 8000})
	wantCode(t, err, fault.CodeNotFound)
	d, err := pay(maria, ap.ID, VoucherPayInput{Code: code, AmountMinor: 8000})
	if err != nil || d.AmountMinor != 8000 || d.AppointmentID != ap.ID {
		t.Fatalf("pay: %+v, %v", d, err)
	}
	if again, err := pay(maria, ap.ID, VoucherPayInput{Code: code, AmountMinor: 8000}); err != nil || again.ID != d.ID {
		t.Fatalf("pay again: %+v, %v (first %+v)", again, err, d)
	}
	if b := balance(maria); b != 2000 {
		t.Fatalf("balance after paying %d, want 2000", b)
	}
	other := f.hold(maria, HoldInput{ServiceID: "facial", StaffID: "ana", Start: at(11, 0)})
	_, err = pay(maria, other.ID, VoucherPayInput{Code: code, AmountMinor: 3000})
	wantCode(t, err, fault.CodeInsufficientBalance)
	// The front desk pays too; a cancelled appointment cannot be paid.
	if _, err := pay(desk, other.ID, VoucherPayInput{Code: code, AmountMinor: 2000}); err != nil {
		t.Fatalf("desk pays: %v", err)
	}
	if _, err := f.svc.Cancel(ctx, maria, f.load(maria, ap.ID), ChangeInput{}); err != nil {
		t.Fatal(err)
	}
	_, err = pay(maria, ap.ID, VoucherPayInput{Code: code, AmountMinor: 1000})
	wantCode(t, err, fault.CodeInvalidTransition)
	// Cancelled within the policy: the debit comes back.
	if b := balance(maria); b != 8000 {
		t.Fatalf("balance after cancelling %d, want 8000", b)
	}
}

// TestValidClientIDMatchesRegexp: the hand-written check accepts exactly
// what the client id pattern accepts.
func TestValidClientIDMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9+._:-]{1,64}$`)
	long := strings.Repeat("a", 64)
	for _, s := range []string{"", "maria", "+573001234567", "a.b_c:d-e", "A", long, long + "a", "a b", "é", "a/b", "a\n"} {
		if ValidClientID(s) != re.MatchString(s) {
			t.Errorf("ValidClientID(%q) = %v, the pattern says %v", s, ValidClientID(s), re.MatchString(s))
		}
	}
	for b := range 256 {
		for _, s := range []string{string([]byte{byte(b)}), "a" + string([]byte{byte(b)})} {
			if ValidClientID(s) != re.MatchString(s) {
				t.Errorf("ValidClientID(%q) = %v, the pattern says %v", s, ValidClientID(s), re.MatchString(s))
			}
		}
	}
}

// TestIsStaff: every staff role and none other counts as staff.
func TestIsStaff(t *testing.T) {
	for _, r := range []auth.Role{auth.RoleClient, auth.RoleStaff, auth.RoleReceptionist, auth.RoleAdmin, auth.RoleKiosk, ""} {
		want := r == auth.RoleStaff || r == auth.RoleReceptionist || r == auth.RoleAdmin
		if got := IsStaff(caller("x", r)); got != want {
			t.Errorf("IsStaff(%s) = %v", r, got)
		}
	}
}
