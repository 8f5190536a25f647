package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/booking"
)

func (e *env) post(token, path, body string) result {
	e.t.Helper()
	h := []string{"Authorization", "Bearer " + token}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.do("POST", path, body, h...)
}

func TestWaitlistAPI(t *testing.T) {
	e := newBookingEnv(t)
	maria, juan := e.token("maria", auth.RoleClient), e.token("juan", auth.RoleClient)
	body := fmt.Sprintf(`{"service_id":"facial","from":%q,"to":%q}`, slotAt(9, 0).Format(time.RFC3339), slotAt(12, 0).Format(time.RFC3339))
	r := e.post(maria, "/v1/waitlist", body)
	if r.status != 201 {
		t.Fatalf("join: %d %s", r.status, r.body)
	}
	entry := decode[waitlistJSON](t, r)
	if entry.Status != "waiting" || entry.ClientID != "maria" {
		t.Fatalf("entry %+v", entry)
	}
	if r := e.post(maria, "/v1/waitlist", body); r.status != 409 || r.errCode(t) != "conflict" {
		t.Fatalf("overlapping second entry: %d %s", r.status, r.body)
	}
	if r := e.post(maria, "/v1/waitlist", `{"service_id":"facial","from":"2026-12-01T12:00:00Z","to":"2026-12-01T09:00:00Z"}`); r.status != 422 {
		t.Fatalf("inverted window: %d", r.status)
	}
	if r := e.post(maria, "/v1/waitlist", fmt.Sprintf(`{"service_id":"facial","client_id":"juan","from":%q,"to":%q}`,
		slotAt(9, 0).Format(time.RFC3339), slotAt(12, 0).Format(time.RFC3339))); r.status != 403 {
		t.Fatalf("client joining for someone else: %d", r.status)
	}
	mine := decode[struct{ Entries []waitlistJSON }](t, e.as(maria, "GET", "/v1/me/waitlist"))
	if len(mine.Entries) != 1 {
		t.Fatalf("my waitlist %+v", mine)
	}
	if r := e.post(juan, "/v1/waitlist/"+entry.ID+"/cancel", ""); r.status != 404 {
		t.Fatalf("someone else's entry: %d", r.status)
	}
	if r := e.post(maria, "/v1/waitlist/"+entry.ID+"/cancel", ""); r.status != 200 || decode[waitlistJSON](t, r).Status != "cancelled" {
		t.Fatalf("leave: %d %s", r.status, r.body)
	}
	if r := e.post(maria, "/v1/waitlist/"+entry.ID+"/cancel", ""); r.status != 409 {
		t.Fatalf("leave twice: %d", r.status)
	}
}

func TestPackageRedemption(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	r := e.admin("POST", "/v1/admin/packages", `{"client_id":"maria","name":"Two facials","service_ids":["facial"],"sessions":2,"expires_at":"2027-06-01T00:00:00Z"}`)
	if r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	pkg := decode[booking.PackageJSON](t, r)
	book := func(h, m int) result {
		return e.post(maria, "/v1/appointments", fmt.Sprintf(`{"service_id":"facial","staff_id":"ana","start":%q,"package_id":%q}`,
			slotAt(h, m).Format(time.RFC3339), pkg.ID))
	}
	first := book(10, 0)
	if first.status != 201 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	if r := book(11, 0); r.status != 201 {
		t.Fatalf("second: %d %s", r.status, r.body)
	}
	// No session left: refused, and the hold made for it is released.
	if r := book(12, 0); r.status != 409 || r.errCode(t) != "package_exhausted" {
		t.Fatalf("third: %d %s", r.status, r.body)
	}
	if r := e.book(e.token("juan", auth.RoleClient), "ana", slotAt(12, 0)); r.status != 201 {
		t.Fatalf("the refused booking's slot was not released: %d %s", r.status, r.body)
	}
	used := func() int {
		list := decode[struct{ Packages []booking.PackageJSON }](t, e.as(maria, "GET", "/v1/me/packages?all=true"))
		if len(list.Packages) != 1 {
			t.Fatalf("packages %+v", list)
		}
		return list.Packages[0].SessionsUsed
	}
	if u := used(); u != 2 {
		t.Fatalf("sessions used %d, want 2", u)
	}
	// Cancelling three hours ahead (cut-off two hours) gives the session back.
	if r := e.post(maria, "/v1/appointments/"+decode[appointmentJSON](t, first).ID+"/cancel", ""); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if u := used(); u != 1 {
		t.Fatalf("sessions used after cancel %d, want 1", u)
	}
	if r := e.admin("POST", "/v1/admin/packages", `{"client_id":"maria","name":"x","service_ids":["nope"],"sessions":1,"expires_at":"2027-01-01T00:00:00Z"}`); r.status != 422 {
		t.Fatalf("unknown service: %d", r.status)
	}
}

func TestVoucherPayment(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	r := e.admin("POST", "/v1/admin/vouchers", `{"client_id":"maria","balance_minor":10000,"expires_at":"2027-06-01T00:00:00Z"}`)
	if r.status != 201 {
		t.Fatalf("issue: %d %s", r.status, r.body)
	}
	code := decode[booking.VoucherJSON](t, r).Code
	if len(code) != len("SPA-XXXX-XXXX-XXXX") {
		t.Fatalf("code %q", code)
	}
	balance := func() int64 {
		r := e.post(maria, "/v1/vouchers/balance", fmt.Sprintf(`{"code":%q}`, code))
		if r.status != 200 {
			t.Fatalf("balance: %d %s", r.status, r.body)
		}
		return decode[booking.VoucherJSON](t, r).BalanceMinor
	}
	if b := balance(); b != 10000 {
		t.Fatalf("balance %d", b)
	}
	if r := e.post(e.token("juan", auth.RoleClient), "/v1/vouchers/balance", fmt.Sprintf(`{"code":%q}`, code)); r.status != 404 {
		t.Fatalf("another client sees maria's voucher: %d", r.status)
	}
	ap := decode[appointmentJSON](t, e.book(maria, "ana", slotAt(10, 0)))
	pay := func(amount int) result {
		return e.post(maria, "/v1/appointments/"+ap.ID+"/pay-with-voucher", fmt.Sprintf(`{"code":%q,"amount_minor":%d}`, code, amount))
	}
	if r := pay(8000); r.status != 200 {
		t.Fatalf("pay: %d %s", r.status, r.body)
	}
	if r := pay(8000); r.status != 200 { // the same appointment again: the same debit
		t.Fatalf("pay again: %d %s", r.status, r.body)
	}
	if r := pay(5000); r.status != 409 || r.errCode(t) != "voucher_already_applied" { // another amount: said, not ignored
		t.Fatalf("pay again with another amount: %d %s", r.status, r.body)
	}
	if b := balance(); b != 2000 {
		t.Fatalf("balance after paying %d, want 2000", b)
	}
	other := decode[appointmentJSON](t, e.book(maria, "ana", slotAt(11, 0)))
	if r := e.post(maria, "/v1/appointments/"+other.ID+"/pay-with-voucher", fmt.Sprintf(`{"code":%q,"amount_minor":3000}`, code)); r.status != 409 || r.errCode(t) != "insufficient_balance" {
		t.Fatalf("overdraw: %d %s", r.status, r.body)
	}
	if r := e.post(maria, "/v1/appointments/"+ap.ID+"/cancel", ""); r.status != 200 {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if b := balance(); b != 10000 {
		t.Fatalf("balance after cancelling within policy %d, want 10000", b)
	}
}

func TestVoucherCodeIsNotKeptForReplay(t *testing.T) {
	e := newBookingEnv(t)
	body := `{"balance_minor":5000,"expires_at":"2027-06-01T00:00:00Z"}`
	first := e.admin("POST", "/v1/admin/vouchers", body, "Idempotency-Key", "gift-1")
	again := e.admin("POST", "/v1/admin/vouchers", body, "Idempotency-Key", "gift-1")
	if first.status != 201 || decode[booking.VoucherJSON](t, first).Code == "" {
		t.Fatalf("issue: %d %s", first.status, first.body)
	}
	replay := decode[booking.VoucherJSON](t, again)
	if again.header.Get("Idempotent-Replayed") != "true" || replay.Code != "" || replay.ID != decode[booking.VoucherJSON](t, first).ID {
		t.Fatalf("replay: %s", again.body)
	}
}
