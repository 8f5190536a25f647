package gateway

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/persistence"
)

// Idempotency-Keys of booking changes are kept by the schedule actor that
// decides the change (actors/keyed, idempotency.WrapKeyed); these tests
// read what a client sees.

// keyedPost sends a POST under an Idempotency-Key.
func (e *env) keyedPost(token, path, body, key string) result {
	e.t.Helper()
	h := []string{"Authorization", "Bearer " + token, "Idempotency-Key", key}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.do("POST", path, body, h...)
}

// dayAppointments lists every appointment of the booking day, any status.
func (e *env) dayAppointments(t *testing.T, staff string) []persistence.Appointment {
	t.Helper()
	var all []persistence.Appointment
	if err := e.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		all, err = tx.AppointmentList(context.Background(), persistence.AppointmentRange{StaffID: staff, From: slotAt(0, 0), To: slotAt(23, 0)})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

func (e *env) idempotencyRecord(t *testing.T, scope, key string) persistence.IdempotencyRecord {
	t.Helper()
	var rec persistence.IdempotencyRecord
	if err := e.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		rec, err = tx.IdempotencyGet(context.Background(), scope, key, bookingNow)
		return err
	}); err != nil {
		t.Fatalf("idempotency record %s/%s: %v", scope, key, err)
	}
	return rec
}

func sameReplay(t *testing.T, what string, first, again result) {
	t.Helper()
	if again.status != first.status || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("%s: first %d %s, resend %d %s (Idempotent-Replayed %q)", what, first.status, first.body,
			again.status, again.body, again.header.Get("Idempotent-Replayed"))
	}
}

// TestKeyedHoldReplaysFromTheActor: a resent keyed hold gets the first
// answer, byte for byte, marked replayed; one appointment exists, and its
// answer is the schedule actor's record, not the edge's.
func TestKeyedHoldReplaysFromTheActor(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	first := e.book(maria, "ana", slotAt(10, 0), "Idempotency-Key", "tap-1")
	if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("hold: %d %s (replayed %q)", first.status, first.body, first.header.Get("Idempotent-Replayed"))
	}
	sameReplay(t, "resent hold", first, e.book(maria, "ana", slotAt(10, 0), "Idempotency-Key", "tap-1"))
	if all := e.dayAppointments(t, "ana"); len(all) != 1 || all[0].ID != decode[appointmentJSON](t, first).ID {
		t.Fatalf("appointments %+v", all)
	}
	if rec := e.idempotencyRecord(t, "sub:maria", "tap-1"); rec.Owner != "staff/ana" {
		t.Fatalf("the hold's key is kept by %q, want the schedule actor", rec.Owner)
	}
	if r := e.book(maria, "ana", slotAt(11, 0), "Idempotency-Key", "tap-1"); r.status != 422 || r.errCode(t) != "idempotency_key_reused" {
		t.Fatalf("same key, another body: %d %s", r.status, r.body)
	}
	if all := e.dayAppointments(t, "ana"); len(all) != 1 {
		t.Fatalf("a reused key booked: %+v", all)
	}
}

// TestKeyedRefusalIsDecidedAgain: a slot_taken under a key is not
// remembered; once the blocking appointment is cancelled, the same key
// books the slot.
func TestKeyedRefusalIsDecidedAgain(t *testing.T) {
	e := newBookingEnv(t)
	maria, juan := e.token("maria", auth.RoleClient), e.token("juan", auth.RoleClient)
	blocking := e.book(juan, "ana", slotAt(10, 0))
	if blocking.status != 201 {
		t.Fatalf("blocking hold: %d %s", blocking.status, blocking.body)
	}
	if r := e.book(maria, "ana", slotAt(10, 0), "Idempotency-Key", "tap-1"); r.status != 409 || r.errCode(t) != "slot_taken" {
		t.Fatalf("keyed hold of a taken slot: %d %s", r.status, r.body)
	}
	if r := e.post(juan, "/v1/appointments/"+decode[appointmentJSON](t, blocking).ID+"/cancel", ""); r.status != 200 {
		t.Fatalf("cancel the blocking hold: %d %s", r.status, r.body)
	}
	r := e.book(maria, "ana", slotAt(10, 0), "Idempotency-Key", "tap-1")
	if r.status != 201 || r.header.Get("Idempotent-Replayed") != "" || decode[appointmentJSON](t, r).ClientID != "maria" {
		t.Fatalf("the same key once the slot is free: %d %s (replayed %q)", r.status, r.body, r.header.Get("Idempotent-Replayed"))
	}
}

// TestKeyedCancelReplays: a resent keyed cancel gets the first answer
// (unkeyed, cancelling again is a 409).
func TestKeyedCancelReplays(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	held := e.book(maria, "ana", slotAt(10, 0))
	if held.status != 201 {
		t.Fatalf("hold: %d %s", held.status, held.body)
	}
	path := "/v1/appointments/" + decode[appointmentJSON](t, held).ID + "/cancel"
	first := e.keyedPost(maria, path, "", "cancel-1")
	if first.status != 200 || decode[appointmentJSON](t, first).Status != "cancelled" {
		t.Fatalf("cancel: %d %s", first.status, first.body)
	}
	sameReplay(t, "resent cancel", first, e.keyedPost(maria, path, "", "cancel-1"))
	if r := e.post(maria, path, ""); r.status != 409 || r.errCode(t) != "invalid_transition" {
		t.Fatalf("unkeyed second cancel: %d %s", r.status, r.body)
	}
}

// TestKeyedHoldOfARoomKeptAtTheEdge: a hold that also claims a room takes
// two decisions, so its key is kept by the edge's protocol; a resend is
// still a replay, and one appointment exists.
func TestKeyedHoldOfARoomKeptAtTheEdge(t *testing.T) {
	e := newResourceEnv(t, 1, 2)
	maria := e.token("maria", auth.RoleClient)
	body := fmt.Sprintf(`{"service_id":"room-treatment","staff_id":"s0","start":%q}`, slotAt(10, 0).Format(time.RFC3339))
	first := e.keyedPost(maria, "/v1/appointments", body, "room-1")
	if first.status != 201 {
		t.Fatalf("hold: %d %s", first.status, first.body)
	}
	sameReplay(t, "resent room hold", first, e.keyedPost(maria, "/v1/appointments", body, "room-1"))
	if all := e.dayAppointments(t, "s0"); len(all) != 1 {
		t.Fatalf("appointments %+v", all)
	}
	if rec := e.idempotencyRecord(t, "sub:maria", "room-1"); rec.Owner != "" || rec.ResponseStatus != 201 {
		t.Fatalf("record %+v, want the edge's", rec)
	}
}

// TestStoredResponsesAreSealed: with a Sealer, the response an edge
// route stores for replay is ciphertext in the database, and the replay
// still answers the original body.
func TestStoredResponsesAreSealed(t *testing.T) {
	ring, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{5}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(d *Deps) { d.Sealer = ring })
	admin := e.token("owner-1", auth.RoleAdmin)
	first := e.putStudio(admin, goodStudio, "Idempotency-Key", "setup-1")
	if first.status != 200 || !bytes.Contains(first.body, []byte("Casa Calma")) {
		t.Fatalf("put: %d %s", first.status, first.body)
	}
	rec := e.idempotencyRecord(t, "sub:owner-1", "setup-1")
	if len(rec.ResponseBody) == 0 || rec.ResponseBody[0] != pii.Version ||
		bytes.Contains(rec.ResponseBody, []byte("Casa Calma")) || bytes.Contains(rec.ResponseBody, []byte("hola@casacalma.co")) {
		t.Fatalf("stored body is not sealed: %q", rec.ResponseBody)
	}
	sameReplay(t, "resent put", first, e.putStudio(admin, goodStudio, "Idempotency-Key", "setup-1"))
}

// TestKeyedAnyStaffHoldReplays: a hold for any staff member lands on one
// calendar; its resend finds that slot taken there and may be offered to
// another calendar first, which finds the key answered elsewhere and
// reads that answer: still the first response, replayed, and one
// appointment.
func TestKeyedAnyStaffHoldReplays(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	first := e.book(maria, "", slotAt(10, 0), "Idempotency-Key", "any-1")
	if first.status != 201 {
		t.Fatalf("hold: %d %s", first.status, first.body)
	}
	staff := decode[appointmentJSON](t, first).StaffID
	if rec := e.idempotencyRecord(t, "sub:maria", "any-1"); rec.Owner != "staff/"+staff {
		t.Fatalf("the key is kept by %q, the appointment is %s's", rec.Owner, staff)
	}
	for i := range 3 {
		sameReplay(t, fmt.Sprint("resend ", i), first, e.book(maria, "", slotAt(10, 0), "Idempotency-Key", "any-1"))
	}
	if n := len(e.dayAppointments(t, "ana")) + len(e.dayAppointments(t, "bea")); n != 1 {
		t.Fatalf("%d appointments, want 1", n)
	}
}

// TestKeyedCartLineReplaysAndAReusedKeyChangesNothing: a cart line under a
// key replays from the cart actor; the same key on another line is 422
// and, although a line's reservation is written before its answer, leaves
// that line as it was.
func TestKeyedCartLineReplaysAndAReusedKeyChangesNothing(t *testing.T) {
	e := newShopEnv(t)
	e.stockShop(t, 5)
	r := e.do("POST", "/v1/carts", "")
	if r.status != 201 {
		t.Fatalf("cart: %d %s", r.status, r.body)
	}
	c := decode[cartJSON](t, r)
	put := func(qty, key string) result {
		return e.do("PUT", "/v1/carts/"+c.ID+"/lines/lavender-50", `{"qty":`+qty+`}`,
			"X-Cart-Token", c.Token, "Content-Type", "application/json", "Idempotency-Key", key)
	}
	first := put("2", "line-1")
	if first.status != 200 {
		t.Fatalf("keyed line: %d %s", first.status, first.body)
	}
	sameReplay(t, "keyed cart line", first, put("2", "line-1"))
	if r := put("3", "line-1"); r.status != 422 || r.errCode(t) != "idempotency_key_reused" {
		t.Fatalf("same key, other quantity: %d %s", r.status, r.body)
	}
	// On another cart, which never saw the key: found in the store first.
	r = e.do("POST", "/v1/carts", "")
	other := decode[cartJSON](t, r)
	reused := e.do("PUT", "/v1/carts/"+other.ID+"/lines/lavender-50", `{"qty":1}`,
		"X-Cart-Token", other.Token, "Content-Type", "application/json", "Idempotency-Key", "line-1")
	if reused.status != 422 || reused.errCode(t) != "idempotency_key_reused" {
		t.Fatalf("the key on another cart: %d %s", reused.status, reused.body)
	}
	for _, cc := range []cartJSON{c, other} {
		got := decode[cartJSON](t, e.do("GET", "/v1/carts/"+cc.ID, "", "X-Cart-Token", cc.Token))
		want := map[string]int{c.ID: 2, other.ID: 0}[cc.ID]
		if n := len(got.Lines); (want == 0 && n != 0) || (want > 0 && (n != 1 || int(got.Lines[0].Qty) != want)) {
			t.Fatalf("cart %s after refused reuses: %+v, want %d units", cc.ID, got.Lines, want)
		}
	}
	if p := decode[productJSON](t, e.do("GET", "/v1/shop/products/lavender", "")); *p.Variants[0].Available != 3 {
		t.Fatalf("available after refused reuses: %d, want 3", *p.Variants[0].Available)
	}
}
