package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/identity"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/persistence"
)

// TestPIIRotationReencryptsTOTPSecrets: a rotation pass moves the sealed
// TOTP secrets to the new primary key too, so the old key can be dropped
// without locking out every enrolled staff member; the factor keeps its
// replay step.
func TestPIIRotationReencryptsTOTPSecrets(t *testing.T) {
	me := newMFAEnv(t, time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC), false)
	_, secret, _ := me.staffWithTOTP(t, maria)
	var before persistence.TOTPFactor
	var userID string
	if err := me.store.InTx(t.Context(), func(tx persistence.Tx) error {
		u, err := tx.UserGetByPhoneIndex(t.Context(), me.identity.Index.Sum(pii.FieldPhone, maria))
		if err != nil {
			return err
		}
		userID = u.ID
		before, err = tx.TOTPFactorGet(t.Context(), u.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	k1, k2 := bytes.Repeat([]byte{3}, pii.KeyLen), bytes.Repeat([]byte{9}, pii.KeyLen)
	both, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k2", Keys: map[string][]byte{"k1": k1, "k2": k2}})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := privacy.NewRotation(me.store, both, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rot.Pause = 0
	if _, err := rot.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	onlyK2, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k2", Keys: map[string][]byte{"k2": k2}})
	if err != nil {
		t.Fatal(err)
	}
	var after persistence.TOTPFactor
	if err := me.store.InTx(t.Context(), func(tx persistence.Tx) (err error) {
		after, err = tx.TOTPFactorGet(t.Context(), userID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	got, err := onlyK2.Decrypt(after.SecretCipher, pii.TOTPSecretContext(userID))
	if err != nil || string(got) != secret {
		t.Fatalf("after rotation the secret does not open under k2 alone: %q, %v", got, err)
	}
	if after.LastStep != before.LastStep || after.ConfirmedAt.IsZero() || !bytes.Equal(after.Recovery, before.Recovery) {
		t.Fatalf("rotation changed more than the cipher: %+v -> %+v", before, after)
	}
}

// TestTOTPExpiredChallengesSwept: a sign-in that issues a challenge deletes
// expired ones, used or not, so the table does not grow without bound.
func TestTOTPExpiredChallengesSwept(t *testing.T) {
	me := newMFAEnv(t, time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC), false)
	me.staffWithTOTP(t, maria)
	var userID string
	if err := me.store.InTx(t.Context(), func(tx persistence.Tx) error {
		u, err := tx.UserGetByPhoneIndex(t.Context(), me.identity.Index.Sum(pii.FieldPhone, maria))
		userID = u.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	stale := me.storeChallenge(t, userID)
	fresh := me.challenge(t, maria) // 15 minutes later: stale has expired
	get := func(tok string) error {
		return me.store.InTx(t.Context(), func(tx persistence.Tx) error {
			_, err := tx.MFAChallengeGet(t.Context(), identity.HashChallenge(tok))
			return err
		})
	}
	if err := get(stale); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("expired challenge still stored: %v", err)
	}
	if err := get(fresh); err != nil {
		t.Fatalf("live challenge: %v", err)
	}
}

// TestIdentityConcurrentRefreshReuse: clients race to refresh with one
// token. The history must be linearizable against "the first use rotates,
// every later use revokes the family": exactly one wins, and its new
// tokens die with the family the losers revoked.
func TestIdentityConcurrentRefreshReuse(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), false)
			p := me.pair(t, me.firstFactor(t, maria))
			const clients = 8
			var (
				mu     sync.Mutex
				ops    []porcupine.Operation
				wg     sync.WaitGroup
				winner pair
			)
			t0 := time.Now()
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					call := time.Since(t0).Nanoseconds()
					r := me.refresh(p.Refresh)
					ret := time.Since(t0).Nanoseconds()
					if r.status != 200 && r.status != 401 {
						t.Errorf("client %d: %d %s", i, r.status, r.body)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if r.status == 200 {
						winner = me.pair(t, r)
					}
					ops = append(ops, porcupine.Operation{ClientId: i, Call: call, Output: r.status == 200, Return: ret})
				}()
			}
			wg.Wait()
			// State: 0 fresh, 1 rotated once, 2 family revoked.
			model := porcupine.Model{
				Init: func() any { return 0 },
				Step: func(state, _, output any) (bool, any) {
					st, ok := state.(int), output.(bool)
					if st == 0 {
						return ok, 1
					}
					return !ok, 2
				},
				DescribeOperation: func(_, output any) string { return fmt.Sprintf("refresh → ok %v", output) },
			}
			if !porcupine.CheckOperations(model, ops) {
				t.Fatalf("history not linearizable: %+v", ops)
			}
			if winner.Refresh == "" {
				t.Fatal("no refresh won")
			}
			if r := me.refresh(winner.Refresh); r.status != 401 {
				t.Fatalf("the winner's new refresh token outlived the revoked family: %d %s", r.status, r.body)
			}
			if r := me.do("GET", "/v1/me/sessions", "", jsonHdr(winner.Access)...); r.status != 401 {
				t.Fatalf("the winner's access token outlived the revoked family: %d %s", r.status, r.body)
			}
		})
	}
}

// TestIdentityDemotionRevokesSessions: taking a role away ends the user's
// sessions at once (an access token carrying the old role must not live on
// for its remaining minutes); giving one does not.
func TestIdentityDemotionRevokesSessions(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	p := ie.signIn(t, maria)
	admin := ie.token("owner", auth.RoleAdmin)
	setRoles := func(body string) {
		t.Helper()
		if r := ie.do("PUT", "/v1/admin/users/"+p.User+"/roles", body, jsonHdr(admin)...); r.status != 200 {
			t.Fatalf("set roles %s: %d %s", body, r.status, r.body)
		}
	}
	for _, body := range []string{`{"roles":["staff"],"reason":"hired"}`, `{"roles":["client","admin"],"reason":"promoted"}`} {
		setRoles(body) // client replaced by staff, then staff by admin: promotions
		if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(p.Access)...); r.status != 200 {
			t.Fatalf("promotion %s revoked the session: %d %s", body, r.status, r.body)
		}
	}
	boss := ie.pair(t, ie.refresh(p.Refresh))
	if boss.Role != "admin" {
		t.Fatalf("role after refresh %q", boss.Role)
	}
	setRoles(`{"roles":["client"],"reason":"left the company"}`)
	if r := ie.do("GET", "/v1/admin/users/"+p.User+"/export", "", jsonHdr(boss.Access)...); r.status != 401 {
		t.Fatalf("demoted admin's token still works: %d %s", r.status, r.body)
	}
	if r := ie.refresh(boss.Refresh); r.status != 401 {
		t.Fatalf("demoted admin refreshed: %d %s", r.status, r.body)
	}
	audit, _ := ie.effects()
	found := false
	for _, a := range audit {
		found = found || (a.Action == "user.roles" && bytes.Contains(a.Detail, []byte(`"revoked_sessions":1`)))
	}
	if !found {
		t.Fatalf("no audit of the demotion's revocation: %+v", audit)
	}
}

// TestLegalConsentRefusesKioskAsUser: a kiosk token is a studio device; a
// consent sent with it must not be recorded as the consent of a user whose
// id is the kiosk's.
func TestLegalConsentRefusesKioskAsUser(t *testing.T) {
	e := newEnv(t)
	e.activateLegal("terms", e.newLegalVersion("terms", "Terms", "one\n").Version)
	const kioskID = "01JKIOSK000000000000000000"
	// A token of no issued kiosk is refused on every route.
	body := `{"documents":[{"slug":"terms","version":1}]}`
	if r := e.do("POST", "/v1/legal/consents", body, jsonHdr(e.token(kioskID, auth.RoleKiosk))...); r.status != 401 {
		t.Fatalf("kiosk token without a kiosk: %d %s", r.status, r.body)
	}
	now := time.Now()
	if err := e.store.InTx(t.Context(), func(tx persistence.Tx) error {
		return tx.KioskCreate(t.Context(), persistence.Kiosk{ID: kioskID, Label: "desk", CreatedBy: "root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	kiosk, _, err := e.tokens.MintSession(kioskID, auth.RoleKiosk, kioskID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/v1/legal/consents", body, jsonHdr(kiosk)...)
	if r.status != 400 {
		t.Fatalf("kiosk consent: %d %s", r.status, r.body)
	}
	var n int
	if err := e.store.InTx(t.Context(), func(tx persistence.Tx) error {
		list, err := tx.LegalConsentList(t.Context(), persistence.LegalConsentListParams{
			SubjectKind: persistence.ConsentUser, SubjectID: "01JKIOSK000000000000000000", Limit: 10})
		n = len(list)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d consents recorded for the kiosk as a user", n)
	}
}

// TestBlockingPhoneRevokesSessions: blocking a signed-in user's phone ends
// their sessions at once; the sign-in check alone would let an open
// session refresh for months.
func TestBlockingPhoneRevokesSessions(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	p := ie.signIn(t, maria)
	other := ie.signIn(t, juan)
	r := ie.admin("POST", "/v1/admin/blocks", `{"kind":"phone","value":"`+maria+`","reason":"abuse"}`)
	if r.status != 201 {
		t.Fatalf("block: %d %s", r.status, r.body)
	}
	if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(p.Access)...); r.status != 401 {
		t.Fatalf("blocked user's access token: %d %s", r.status, r.body)
	}
	if r := ie.refresh(p.Refresh); r.status != 401 {
		t.Fatalf("blocked user's refresh: %d %s", r.status, r.body)
	}
	if r := ie.do("GET", "/v1/me/sessions", "", jsonHdr(other.Access)...); r.status != 200 {
		t.Fatalf("another user's session: %d %s", r.status, r.body)
	}
}
