package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// profileTests are the conformance tests of persistence.ProfileStore.
var profileTests = []struct {
	name string
	fn   func(*testing.T, Opener)
}{
	{"ProfilePutGet", testProfilePutGet},
	{"ProfileBatches", testProfileBatches},
	{"ProfileAnonymise", testProfileAnonymise},
}

func newProfileUser(t *testing.T, s persistence.Store, index byte) persistence.User {
	t.Helper()
	u := persistence.User{ID: newID(), PhoneIndex: []byte{index, 7, 7}, PhoneCipher: []byte("sealed phone"),
		Roles: []string{"client"}, CreatedAt: base}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.UserCreate(ctx, u) })
	return u
}

func testProfilePutGet(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	u := newProfileUser(t, s, 1)
	p := persistence.ClientProfile{UserID: u.ID, NameCipher: []byte("n"), EmailCipher: []byte("e"), EmailIndex: []byte("ei"),
		DocumentCipher: []byte("d"), DocumentIndex: []byte("di"), BirthDateCipher: []byte("b"), CreatedAt: base}
	var stored persistence.ClientProfile
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = tx.ProfilePut(ctx, p)
		return err
	})
	wantEqual(t, "version after create", stored.Version, int64(1))
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.ProfileGet(ctx, u.ID)
		wantEqual(t, "ProfileGet", got, stored)
		if got.NotesCipher != nil {
			t.Errorf("empty notes read back as %q", got.NotesCipher)
		}
		found, err2 := tx.ProfileFindByDocumentIndex(ctx, []byte("di"), 10)
		wantEqual(t, "find by document", len(found), 1)
		if err == nil {
			err = err2
		}
		return err
	})
	wantErr(t, "second create", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ProfilePut(ctx, p)
		return err
	}), persistence.ErrConflict)
	next := stored
	next.NotesCipher, next.UpdatedAt = []byte("notes"), base.Add(time.Hour)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		stored, err = tx.ProfilePut(ctx, next)
		return err
	})
	wantEqual(t, "version after update", stored.Version, int64(2))
	wantErr(t, "stale update", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ProfilePut(ctx, next)
		return err
	}), persistence.ErrConflict)
	// Re-encryption swaps ciphertexts without a new version.
	re := stored
	re.NameCipher, re.NotesCipher = []byte("n2"), []byte("notes2")
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error { return tx.ProfileReencrypt(ctx, re) })
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.ProfileGet(ctx, u.ID)
		wantEqual(t, "after re-encryption", got, re)
		return err
	})
	stale := re
	stale.Version = 1
	wantErr(t, "re-encryption of a stale version", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.ProfileReencrypt(ctx, stale)
	}), persistence.ErrConflict)
	wantErr(t, "re-encryption of an unknown profile", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.ProfileReencrypt(ctx, persistence.ClientProfile{UserID: "nobody", Version: 1})
	}), persistence.ErrNotFound)
	wantErr(t, "unknown profile", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ProfileGet(ctx, "nobody")
		return err
	}), persistence.ErrNotFound)
	wantErr(t, "no user id", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ProfilePut(ctx, persistence.ClientProfile{CreatedAt: base})
		return err
	}), persistence.ErrInvalid)
}

func testProfileBatches(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	var ids []string
	for i := range 5 {
		u := newProfileUser(t, s, byte(10+i))
		ids = append(ids, u.ID)
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
			_, err := tx.ProfilePut(ctx, persistence.ClientProfile{UserID: u.ID, NameCipher: []byte{byte(i)}, CreatedAt: base})
			return err
		})
	}
	var seenUsers, seenProfiles []string
	for after := ""; ; {
		var users []persistence.User
		var profiles []persistence.ClientProfile
		mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
			if users, err = tx.UserListAfter(ctx, after, 2); err != nil {
				return err
			}
			profiles, err = tx.ProfileListAfter(ctx, after, 2)
			return err
		})
		if len(users) == 0 {
			wantEqual(t, "profiles past the last user", len(profiles), 0)
			break
		}
		for _, u := range users {
			seenUsers = append(seenUsers, u.ID)
		}
		for _, p := range profiles {
			seenProfiles = append(seenProfiles, p.UserID)
		}
		after = users[len(users)-1].ID
	}
	wantEqual(t, "users in batches", seenUsers, ids)
	wantEqual(t, "profiles in batches", seenProfiles, ids)

	// Replacing a phone cipher is conditional on the value read.
	u := ids[0]
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserReplacePhoneCipher(ctx, u, []byte("sealed phone"), []byte("resealed"))
	})
	wantErr(t, "replace from a stale value", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserReplacePhoneCipher(ctx, u, []byte("sealed phone"), []byte("again"))
	}), persistence.ErrConflict)
	wantErr(t, "replace on an unknown user", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		return tx.UserReplacePhoneCipher(ctx, "nobody", []byte("x"), []byte("y"))
	}), persistence.ErrNotFound)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.UserGet(ctx, u)
		wantEqual(t, "replaced cipher", string(got.PhoneCipher), "resealed")
		return err
	})
	wantErr(t, "batch limit", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.ProfileListAfter(ctx, "", persistence.MaxProfileBatch+1)
		return err
	}), persistence.ErrInvalid)
}

func testProfileAnonymise(t *testing.T, open Opener) {
	s := migrated(t, open, persistence.Options{})
	u := newProfileUser(t, s, 30)
	other := newProfileUser(t, s, 31)
	secret := []byte("SECRET-" + u.ID)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		for _, id := range []string{u.ID, other.ID} {
			if _, err := tx.ProfilePut(ctx, persistence.ClientProfile{UserID: id, NameCipher: []byte("n"), NotesCipher: []byte("x"), CreatedAt: base}); err != nil {
				return err
			}
			if err := tx.SessionCreate(ctx, persistence.Session{ID: newID(), UserID: id, Device: "Maria's phone", UserAgent: "UA",
				IP: "203.0.113.7", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
				return err
			}
		}
		if _, err := tx.OTPStatePut(ctx, persistence.OTPState{PhoneKey: "pk-" + u.ID, State: []byte("{}"), UpdatedAt: base}); err != nil {
			return err
		}
		if err := tx.AuditAppend(ctx, persistence.AuditEntry{ID: newID(), At: base, ActorID: "admin", ActorRole: "admin",
			Action: "user.roles", Subject: "user/" + u.ID, Reason: "asked by phone", Detail: secret}); err != nil {
			return err
		}
		if err := tx.AuditAppend(ctx, persistence.AuditEntry{ID: newID(), At: base, ActorID: "admin", ActorRole: "admin",
			Action: "user.roles", Subject: "user/" + other.ID, Reason: "kept", Detail: []byte(`{"kept":true}`)}); err != nil {
			return err
		}
		return tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{Scope: "sub:" + u.ID, Key: "k", State: persistence.IdempotencyCompleted,
			ResponseStatus: 200, ResponseBody: secret, CreatedAt: base, ExpiresAt: base.Add(time.Hour)})
	})
	var rep persistence.AnonymiseReport
	newIndex := bytes.Repeat([]byte{0xaa}, 32)
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) (err error) {
		rep, err = tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: newIndex,
			IdempotencyScope: "sub:" + u.ID, At: base.Add(time.Hour)})
		return err
	})
	for _, table := range []string{"client_profiles", "login_sessions", "audit_log", "idempotency_records"} {
		if rep[table] != 1 {
			t.Errorf("report %v: want 1 row of %s", rep, table)
		}
	}
	mustTx(t, s, func(ctx context.Context, tx persistence.Tx) error {
		got, err := tx.UserGet(ctx, u.ID)
		if err != nil {
			return err
		}
		wantEqual(t, "phone index", got.PhoneIndex, newIndex)
		wantEqual(t, "phone cipher", len(got.PhoneCipher), 0)
		p, err := tx.ProfileGet(ctx, u.ID)
		if err != nil {
			return err
		}
		if p.NameCipher != nil || p.NotesCipher != nil || p.AnonymisedAt.IsZero() {
			t.Errorf("profile after anonymisation: %+v", p)
		}
		if _, err := tx.OTPStateGet(ctx, "pk-"+u.ID); err != nil {
			t.Errorf("the number's OTP state (its lockout) is gone: %v", err)
		}
		sessions, err := tx.SessionListByUser(ctx, u.ID, base, 10)
		if err != nil {
			return err
		}
		if len(sessions) != 1 || sessions[0].IP != "" || sessions[0].UserAgent != "" || sessions[0].Device != "" {
			t.Errorf("sessions after anonymisation: %+v", sessions)
		}
		kept, err := tx.SessionListByUser(ctx, other.ID, base, 10)
		if err != nil || len(kept) != 1 || kept[0].IP == "" {
			t.Errorf("another user's sessions: %+v, %v", kept, err)
		}
		entries, err := tx.AuditList(ctx, persistence.AuditListParams{Limit: 10})
		if err != nil {
			return err
		}
		for _, e := range entries {
			scrubbed := bytes.Equal(e.Detail, persistence.AnonymisedAuditDetail) && e.Reason == ""
			if (e.Subject == "user/"+u.ID) != scrubbed {
				t.Errorf("audit entry %s: scrubbed %v", e.Subject, scrubbed)
			}
		}
		if _, err := tx.IdempotencyGet(ctx, "sub:"+u.ID, "k", base); err == nil {
			t.Error("the stored response outlived anonymisation")
		}
		other, err := tx.ProfileGet(ctx, other.ID)
		if err != nil || other.NameCipher == nil {
			t.Errorf("another user's profile: %+v, %v", other, err)
		}
		return nil
	})
	wantErr(t, "unknown user", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: "nobody", PhoneIndex: newIndex[:16], At: base})
		return err
	}), persistence.ErrNotFound)
	wantErr(t, "short index", txErr(t, s, func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.UserAnonymise(ctx, persistence.AnonymiseParams{UserID: u.ID, PhoneIndex: []byte{1}, At: base})
		return err
	}), persistence.ErrInvalid)
}
