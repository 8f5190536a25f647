package privacy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/keyed"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

var (
	k1    = bytes.Repeat([]byte{3}, pii.KeyLen)
	k2    = bytes.Repeat([]byte{9}, pii.KeyLen)
	clock = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)
)

func ring(t *testing.T, primary string, keys map[string][]byte) *pii.Keyring {
	t.Helper()
	r, err := pii.NewKeyring(pii.KeyringConfig{Primary: primary, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type fixture struct {
	t        *testing.T
	store    persistence.Store
	keys     *pii.Keyring
	index    *pii.BlindIndex
	sessions *servicetest.Sessions
	svc      *privacy.Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	index, err := pii.NewBlindIndex(bytes.Repeat([]byte{2}, pii.MinIndexKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	keys := ring(t, "k1", map[string][]byte{"k1": k1})
	f := &fixture{t: t, store: sqlitetest.Open(t, persistence.Options{Personal: pii.ClientKeys{Keys: keys}}), index: index,
		sessions: &servicetest.Sessions{}, keys: keys}
	f.svc = f.service(f.keys)
	return f
}

func (f *fixture) service(keys *pii.Keyring) *privacy.Service {
	return privacy.New(privacy.Deps{Store: f.store, Keys: keys, Index: f.index, Sessions: f.sessions,
		Now: func() time.Time { return clock }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// user signs up phone as the sign-in does, with one live session.
func (f *fixture) user(phone string) string {
	f.t.Helper()
	uid := ulid.Make().String()
	sealed, err := f.keys.Encrypt([]byte(phone), pii.PhoneContext(uid))
	if err != nil {
		f.t.Fatal(err)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.UserCreate(ctx, persistence.User{ID: uid, PhoneIndex: f.index.Sum(pii.FieldPhone, phone), PhoneCipher: sealed,
			Roles: []string{string(auth.RoleClient)}, CreatedAt: clock, UpdatedAt: clock}); err != nil {
			return err
		}
		return tx.SessionCreate(ctx, persistence.Session{ID: ulid.Make().String(), UserID: uid, Device: "phone",
			IP: "203.0.113.9", CreatedAt: clock, LastSeenAt: clock, ExpiresAt: clock.Add(24 * time.Hour)})
	})
	return uid
}

func (f *fixture) tx(fn func(ctx context.Context, tx persistence.Tx) error) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) }); err != nil {
		f.t.Fatal(err)
	}
}

// update runs UpdateProfile in a transaction of its own.
func (f *fixture) update(by service.Caller, in privacy.ProfileInput) (p privacy.Profile, err error) {
	err = f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		p, err = f.svc.UpdateProfile(context.Background(), tx, by, in)
		return err
	})
	return p, err
}

func (f *fixture) audit(subject string) []persistence.AuditEntry {
	var out []persistence.AuditEntry
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		out, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: subject, Limit: 100})
		return err
	})
	return out
}

// as, code and fields are servicetest's.
var (
	as     = servicetest.As
	code   = servicetest.Code
	fields = servicetest.Fields
)

var full = privacy.ProfileInput{Name: " María Pérez ", Email: "maria.perez@example.com", DocumentType: "cc",
	DocumentNumber: "1.020.304.050", BirthDate: "1990-05-17", ClinicalNotes: "Alérgica al látex"}

func TestUpdateProfileRules(t *testing.T) {
	f := newFixture(t)
	uid := f.user("+573001234567")
	me := as(auth.RoleClient, uid)
	for name, tc := range map[string]struct {
		in     func(*privacy.ProfileInput)
		fields []string
	}{
		"name too long":      {func(in *privacy.ProfileInput) { in.Name = strings.Repeat("a", 121) }, []string{"name"}},
		"bad email":          {func(in *privacy.ProfileInput) { in.Email = "maria@" }, []string{"email"}},
		"type without num":   {func(in *privacy.ProfileInput) { in.DocumentNumber = "" }, []string{"document_number"}},
		"unknown type":       {func(in *privacy.ProfileInput) { in.DocumentType = "XX" }, []string{"document_type"}},
		"bad number":         {func(in *privacy.ProfileInput) { in.DocumentNumber = "1/2" }, []string{"document_number"}},
		"future birth":       {func(in *privacy.ProfileInput) { in.BirthDate = "2030-01-01" }, []string{"birth_date"}},
		"long notes":         {func(in *privacy.ProfileInput) { in.ClinicalNotes = strings.Repeat("n", 4001) }, []string{"clinical_notes"}},
		"negative version":   {func(in *privacy.ProfileInput) { in.Version = -1 }, []string{"version"}},
		"all bad at once":    {func(in *privacy.ProfileInput) { in.Email, in.BirthDate = "x", "17/05/1990" }, []string{"email", "birth_date"}},
		"control characters": {func(in *privacy.ProfileInput) { in.Name = "a\x00b" }, []string{"name"}},
		"unknown language":   {func(in *privacy.ProfileInput) { in.Language = "fr" }, []string{"language"}},
		"unknown time zone":  {func(in *privacy.ProfileInput) { in.TimeZone = "Mars/Olympus" }, []string{"time_zone"}},
	} {
		in := full
		tc.in(&in)
		_, err := f.update(me, in)
		if code(err) != fault.CodeValidationFailed || !slices.Equal(fields(err), tc.fields) {
			t.Errorf("%s: %v, fields %v; want %v", name, err, fields(err), tc.fields)
		}
	}
	if _, err := f.update(service.Caller{}, full); code(err) != fault.CodeUnauthenticated {
		t.Errorf("anonymous: %v", err)
	}
	if _, err := f.update(me, privacy.ProfileInput{Name: "x", Version: 3}); code(err) != fault.CodeVersionConflict {
		t.Errorf("stale version: %v", err)
	}
	if n := len(f.audit("user/" + uid)); n != 0 {
		t.Fatalf("refusals left %d audit entries", n)
	}

	p, err := f.update(me, full)
	if err != nil || p.Version != 1 || p.Name != "María Pérez" || p.DocumentType != "CC" || p.Phone != "+573001234567" ||
		p.Notes != "Alérgica al látex" || p.Masked {
		t.Fatalf("update: %+v, %v", p, err)
	}
	// The store holds no value in the clear.
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		row, err := tx.ProfileGet(ctx, uid)
		for _, ct := range row.Ciphers() {
			if bytes.Contains(*ct, []byte("María")) || bytes.Contains(*ct, []byte("látex")) {
				t.Error("a profile field is stored in the clear")
			}
		}
		return err
	})
	// The audit names the changed fields, never their values.
	entries := f.audit("user/" + uid)
	if len(entries) != 1 || entries[0].Action != "profile.update" || entries[0].ActorID != uid ||
		string(entries[0].Detail) != `{"changed":["birth_date","clinical_notes","document","email","name"]}` {
		t.Fatalf("audit %+v", entries)
	}
	in := full
	in.Version, in.ClinicalNotes = 1, "no allergies"
	if _, err := f.update(me, in); err != nil {
		t.Fatal(err)
	}
	if e := f.audit("user/" + uid); len(e) != 2 || string(e[0].Detail) != `{"changed":["clinical_notes"]}` {
		t.Fatalf("second audit %s", e[0].Detail)
	}
}

func TestProfileViewsByRole(t *testing.T) {
	f := newFixture(t)
	uid := f.user("+573001234567")
	if _, err := f.update(as(auth.RoleClient, uid), full); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		by     service.Caller
		code   string
		masked bool
	}{
		{as(auth.RoleClient, uid), "", false},
		{as(auth.RoleAdmin, "owner"), "", false},
		{as(auth.RoleReceptionist, "desk"), "", true},
		{as(auth.RoleStaff, "ana"), "", true},
		{as(auth.RoleClient, "someone-else"), fault.CodeForbidden, false},
		{as(auth.RoleKiosk, "kiosk-1"), fault.CodeForbidden, false},
		{service.Caller{}, fault.CodeUnauthenticated, false},
	} {
		p, err := f.svc.Profile(ctx, tc.by, uid)
		if code(err) != tc.code {
			t.Errorf("%s: %v, want %q", tc.by.Role, err, tc.code)
			continue
		}
		if err != nil {
			continue
		}
		if p.Masked != tc.masked {
			t.Errorf("%s: masked %v", tc.by.Role, p.Masked)
		}
		if tc.masked && (p.Notes != "" || p.Email != "m***@e***.com" || p.DocumentNumber == "1.020.304.050" ||
			p.BirthDate != "***" || p.Phone == "+573001234567" || p.Name != "María Pérez") {
			t.Errorf("%s sees %+v", tc.by.Role, p)
		}
		if !tc.masked && (p.Notes != "Alérgica al látex" || p.Phone != "+573001234567") {
			t.Errorf("%s sees %+v", tc.by.Role, p)
		}
	}
	// A user without a profile has version 0 and only the phone.
	other := f.user("+573109876543")
	if p, err := f.svc.Profile(ctx, as(auth.RoleClient, other), other); err != nil || p.Version != 0 || p.Phone != "+573109876543" || p.Name != "" {
		t.Fatalf("empty profile: %+v, %v", p, err)
	}
}

func TestLookup(t *testing.T) {
	f := newFixture(t)
	uid := f.user("+573001234567")
	if _, err := f.update(as(auth.RoleClient, uid), full); err != nil {
		t.Fatal(err)
	}
	ctx, desk := context.Background(), as(auth.RoleReceptionist, "desk")
	for name, tc := range map[string]struct {
		by   service.Caller
		in   privacy.LookupInput
		code string
		n    int
	}{
		"by phone, any spelling":     {desk, privacy.LookupInput{Phone: "300 123 4567"}, "", 1},
		"by document, normalised":    {desk, privacy.LookupInput{DocumentNumber: "1020304050"}, "", 1},
		"unknown phone":              {desk, privacy.LookupInput{Phone: "+573109876543"}, "", 0},
		"neither":                    {desk, privacy.LookupInput{}, fault.CodeValidationFailed, 0},
		"both":                       {desk, privacy.LookupInput{Phone: "3001234567", DocumentNumber: "1020304050"}, fault.CodeValidationFailed, 0},
		"not a phone":                {desk, privacy.LookupInput{Phone: "12"}, fault.CodeValidationFailed, 0},
		"not a document":             {desk, privacy.LookupInput{DocumentNumber: "1/2"}, fault.CodeValidationFailed, 0},
		"a client may not look up":   {as(auth.RoleClient, uid), privacy.LookupInput{Phone: "3001234567"}, fault.CodeForbidden, 0},
		"a therapist may not either": {as(auth.RoleStaff, "ana"), privacy.LookupInput{Phone: "3001234567"}, fault.CodeForbidden, 0},
	} {
		found, err := f.svc.Lookup(ctx, tc.by, tc.in)
		if code(err) != tc.code || len(found) != tc.n {
			t.Errorf("%s: %d found, %v; want %d, %q", name, len(found), err, tc.n, tc.code)
			continue
		}
		if tc.n == 1 && (found[0].UserID != uid || !found[0].Masked || found[0].Email != "m***@e***.com") {
			t.Errorf("%s: %+v", name, found[0])
		}
	}
	if found, err := f.svc.Lookup(ctx, as(auth.RoleAdmin, "owner"), privacy.LookupInput{Phone: "3001234567"}); err != nil ||
		len(found) != 1 || found[0].Masked || found[0].Notes == "" {
		t.Fatalf("admin lookup: %+v, %v", found, err)
	}
}

func TestExportHoldsTheClientsDataDecrypted(t *testing.T) {
	f := newFixture(t)
	uid := f.user("+573001234567")
	if _, err := f.update(as(auth.RoleClient, uid), full); err != nil {
		t.Fatal(err)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		if _, err := tx.LegalDocumentCreate(ctx, persistence.LegalDocument{Slug: "terms", Title: "T", Body: "b", CreatedBy: "owner", CreatedAt: clock}); err != nil {
			return err
		}
		if _, _, err := tx.LegalConsentAdd(ctx, persistence.LegalConsent{ID: ulid.Make().String(), SubjectKind: persistence.ConsentUser,
			SubjectID: uid, Slug: "terms", Version: 1, AcceptedAt: clock, RequestID: "r"}); err != nil {
			return err
		}
		// A gift voucher the client bought online and was issued.
		vp := persistence.VoucherPurchase{ID: ulid.Make().String(), ClientID: uid, AmountMinor: 5_000_000,
			RecipientName: "Lucía", Message: "Feliz día", CreatedAt: clock}
		if err := tx.VoucherPurchaseCreate(ctx, vp); err != nil {
			return err
		}
		_, err := tx.VoucherPurchaseIssue(ctx, persistence.Voucher{ID: vp.ID, CodeHash: persistence.HashVoucherCode("SPA-GIFT-GIFT-GIFT"),
			BalanceMinor: vp.AmountMinor, ExpiresAt: clock.Add(24 * time.Hour), CreatedAt: clock, UpdatedAt: clock}, "SPA-GIFT-GIFT-GIFT")
		return err
	})
	ctx := context.Background()
	for _, by := range []service.Caller{as(auth.RoleClient, uid), as(auth.RoleAdmin, "owner")} {
		e, err := f.svc.Export(ctx, by, uid)
		if err != nil {
			t.Fatal(err)
		}
		if e.UserID != uid || e.User == nil || e.User.Phone != "+573001234567" || e.Profile.Notes != "Alérgica al látex" ||
			e.Profile.Masked || e.Profile.DocumentNumber != "1.020.304.050" || len(e.Sessions) != 1 || len(e.Consents) != 1 ||
			len(e.Audit) != 1 || !e.ExportedAt.Equal(clock) {
			t.Fatalf("export by %s: %+v", by.Role, e)
		}
		if len(e.VoucherPurchases) != 1 || e.VoucherPurchases[0].RecipientName != "Lucía" || e.VoucherPurchases[0].Code != "" ||
			!e.VoucherPurchases[0].Issued() {
			t.Fatalf("voucher purchases exported to %s: %+v (the code must be withheld)", by.Role, e.VoucherPurchases)
		}
	}
	for _, tc := range []struct {
		by   service.Caller
		uid  string
		code string
	}{
		{as(auth.RoleClient, "someone-else"), uid, fault.CodeForbidden},
		{as(auth.RoleReceptionist, "desk"), uid, fault.CodeForbidden},
		{service.Caller{}, uid, fault.CodeUnauthenticated},
		{as(auth.RoleAdmin, "owner"), "nobody", fault.CodeNotFound},
	} {
		if _, err := f.svc.Export(ctx, tc.by, tc.uid); code(err) != tc.code {
			t.Errorf("export of %s by %s: %v, want %s", tc.uid, tc.by.Role, err, tc.code)
		}
	}
}

// anonymise runs fn (one of the Anonymise use cases) in a transaction.
func (f *fixture) anonymise(fn func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error)) (a privacy.Anonymised, err error) {
	err = f.store.InTx(context.Background(), func(tx persistence.Tx) (err error) {
		a, err = fn(context.Background(), tx)
		return err
	})
	return a, err
}

func TestAnonymiseErasesAndKeepsTheRecord(t *testing.T) {
	f := newFixture(t)
	uid, other := f.user("+573001234567"), f.user("+573109876543")
	for _, u := range []string{uid, other} {
		if _, err := f.update(as(auth.RoleClient, u), full); err != nil {
			t.Fatal(err)
		}
	}
	admin := as(auth.RoleAdmin, "owner")
	byAdmin := func(id string, in privacy.AnonymiseInput) func(context.Context, persistence.Tx) (privacy.Anonymised, error) {
		return func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error) {
			return f.svc.AnonymiseUser(ctx, tx, admin, id, in)
		}
	}
	for name, tc := range map[string]struct {
		fn   func(context.Context, persistence.Tx) (privacy.Anonymised, error)
		code string
	}{
		"unconfirmed":     {byAdmin(uid, privacy.AnonymiseInput{Reason: "x"}), fault.CodeValidationFailed},
		"reason too long": {byAdmin(uid, privacy.AnonymiseInput{Confirm: true, Reason: strings.Repeat("r", 201)}), fault.CodeValidationFailed},
		"unknown user":    {byAdmin("nobody", privacy.AnonymiseInput{Confirm: true}), fault.CodeNotFound},
		"not an admin": {func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error) {
			return f.svc.AnonymiseUser(ctx, tx, as(auth.RoleClient, other), uid, privacy.AnonymiseInput{Confirm: true})
		}, fault.CodeForbidden},
		"anonymous self": {func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error) {
			return f.svc.AnonymiseMe(ctx, tx, service.Caller{}, privacy.AnonymiseInput{Confirm: true})
		}, fault.CodeUnauthenticated},
	} {
		if _, err := f.anonymise(tc.fn); code(err) != tc.code {
			t.Errorf("%s: %v, want %s", name, err, tc.code)
		}
	}
	if len(f.sessions.Reasons()) != 0 {
		t.Fatalf("a refusal revoked sessions: %v", f.sessions.Reasons())
	}

	a, err := f.anonymise(byAdmin(uid, privacy.AnonymiseInput{Confirm: true, Reason: "ticket 42: María asked by phone"}))
	if err != nil || a.UserID != uid || a.RevokedSessions != 1 || !a.At.Equal(clock) {
		t.Fatalf("anonymise: %+v, %v", a, err)
	}
	if !slices.Equal(f.sessions.Reasons(), []string{privacy.RevokeAnonymised}) || len(f.sessions.Forgot()) != 1 {
		t.Fatalf("sessions: revoked %v, forgot %v", f.sessions.Reasons(), f.sessions.Forgot())
	}
	// Erased: the profile, the phone; the user row stays under its id.
	e, err := f.svc.Export(context.Background(), admin, uid)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Profile.Anonymised || e.Profile.Name != "" || e.Profile.Notes != "" || e.Profile.Email != "" || e.User == nil || e.User.Phone != "" {
		t.Fatalf("export after anonymisation: %+v %+v", e.Profile, e.User)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		u, err := tx.UserGet(ctx, uid)
		if len(u.PhoneCipher) != 0 || bytes.Equal(u.PhoneIndex, f.index.Sum(pii.FieldPhone, "+573001234567")) {
			t.Error("the phone outlived anonymisation")
		}
		return err
	})
	if found, err := f.svc.Lookup(context.Background(), admin, privacy.LookupInput{Phone: "3001234567"}); err != nil || len(found) != 0 {
		t.Fatalf("the number still finds the user: %+v, %v", found, err)
	}
	// The act is audited with counts and who asked; the request's free-text
	// reason (words about the erased person) is not kept anywhere.
	var act *persistence.AuditEntry
	for _, en := range f.audit("user/" + uid) {
		if en.Action == "user.anonymise" {
			act = &en
		}
	}
	if act == nil || act.ActorID != "owner" || !strings.Contains(act.Reason+string(act.Detail), "erased by an admin") ||
		!strings.Contains(string(act.Detail), `"revoked_sessions":1`) || !strings.Contains(string(act.Detail), `"reason_given":true`) {
		t.Fatalf("audit %+v", act)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		all, err := tx.AuditList(ctx, persistence.AuditListParams{Limit: 100})
		for _, en := range all {
			if strings.Contains(en.Reason+string(en.Detail), "ticket 42") || strings.Contains(en.Reason+string(en.Detail), "María") {
				t.Errorf("the anonymisation's reason survives in audit entry %s: %q %s", en.Action, en.Reason, en.Detail)
			}
		}
		return err
	})
	// The other client is untouched.
	if p, err := f.svc.Profile(context.Background(), admin, other); err != nil || p.Name != "María Pérez" || p.Anonymised {
		t.Fatalf("other profile: %+v, %v", p, err)
	}

	// Self-service: the audit says the user asked.
	if _, err := f.anonymise(func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error) {
		return f.svc.AnonymiseMe(ctx, tx, as(auth.RoleClient, other), privacy.AnonymiseInput{Confirm: true})
	}); err != nil {
		t.Fatal(err)
	}
	var self string
	for _, en := range f.audit("user/" + other) {
		if en.Action == "user.anonymise" {
			self = string(en.Detail) + en.Reason
		}
	}
	if !strings.Contains(self, "requested by the user") {
		t.Fatalf("self-service audit %q", self)
	}
}

func TestUnconfiguredKeys(t *testing.T) {
	f := newFixture(t)
	uid := f.user("+573001234567")
	off := privacy.New(privacy.Deps{Store: f.store})
	if err := off.Ready(); code(err) != fault.CodeUnavailable {
		t.Fatalf("Ready without keys: %v", err)
	}
	if _, err := off.Profile(context.Background(), as(auth.RoleClient, uid), uid); code(err) != fault.CodeUnavailable {
		t.Fatalf("Profile without keys: %v", err)
	}
	mine := fault.Unavailable("sign-in is not configured on this node")
	if _, err := privacy.New(privacy.Deps{Store: f.store, Unconfigured: mine}).Export(context.Background(),
		as(auth.RoleClient, uid), uid); err != mine {
		t.Fatalf("Export with a custom refusal: %v", err)
	}
}

func TestRotationReencryptsEverything(t *testing.T) {
	f := newFixture(t)
	a, b := f.user("+573001234567"), f.user("+573109876543")
	for _, u := range []string{a, b} {
		if _, err := f.update(as(auth.RoleClient, u), full); err != nil {
			t.Fatal(err)
		}
	}
	secret, err := f.keys.Encrypt([]byte("JBSWY3DPEHPK3PXP"), pii.TOTPSecretContext(a))
	if err != nil {
		t.Fatal(err)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		_, err := tx.TOTPFactorPut(ctx, persistence.TOTPFactor{UserID: a, SecretCipher: secret, ConfirmedAt: clock, LastStep: 7,
			CreatedAt: clock, UpdatedAt: clock})
		return err
	})
	// A profile update's answer stored for an Idempotency-Key replay,
	// sealed under k1 (keyed.Seal, as the gateway and the actors store it).
	answer := `{"user_id":"` + a + `","clinical_notes":"Alérgica al látex"}`
	sealedAnswer, err := keyed.Seal(f.keys, "sub:"+a, "profile-1", []byte(answer))
	if err != nil {
		t.Fatal(err)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		return tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{Scope: "sub:" + a, Key: "profile-1", State: persistence.IdempotencyCompleted,
			ResponseStatus: 200, ResponseBody: sealedAnswer, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	})

	// A's data key (made on first use, wrapped under k1) and an event
	// reason sealed under it.
	var sealedReason []byte
	f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		sealedReason, _, err = tx.PersonalSeal(ctx, a, "events.x/1", []byte("went to Cartagena"))
		return err
	})

	both := ring(t, "k2", map[string][]byte{"k1": k1, "k2": k2})
	rot, err := privacy.NewRotation(f.store, both, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rot.Batch, rot.Pause = 1, 0 // a batch per row: the cursor is exercised
	prog, err := rot.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Two phones, two profiles, a TOTP secret, a stored answer and a
	// client's data key, all under k1 before.
	if prog != (privacy.Progress{Scanned: 7, Rewritten: 7}) {
		t.Fatalf("progress %+v", prog)
	}
	onlyK2 := ring(t, "k2", map[string][]byte{"k2": k2})
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		for _, u := range []string{a, b} {
			p, row, err := privacy.Codec{Keys: onlyK2, Index: f.index}.Load(ctx, tx, u)
			if err != nil || p.Notes != "Alérgica al látex" || p.Phone == "" || row.Version != 1 {
				t.Errorf("%s after rotation: %+v v%d, %v", u, p, row.Version, err)
			}
		}
		fa, err := tx.TOTPFactorGet(ctx, a)
		if err != nil {
			return err
		}
		if got, err := onlyK2.Decrypt(fa.SecretCipher, pii.TOTPSecretContext(a)); err != nil || string(got) != "JBSWY3DPEHPK3PXP" || fa.LastStep != 7 {
			t.Errorf("TOTP secret after rotation: %q, %v, step %d", got, err, fa.LastStep)
		}
		rec, err := tx.IdempotencyGet(ctx, "sub:"+a, "profile-1", time.Now())
		if err != nil {
			return err
		}
		if got, err := keyed.Open(onlyK2, rec.Scope, rec.Key, rec.ResponseBody); err != nil || string(got) != answer || rec.ResponseStatus != 200 {
			t.Errorf("stored answer after rotation: %q, %v", got, err)
		}
		keys, err := tx.ClientKeyListAfter(ctx, "", 10)
		if err != nil || len(keys) != 1 {
			t.Fatalf("client keys %+v, %v", keys, err)
		}
		dk, err := pii.ClientKeys{Keys: onlyK2}.UnwrapKey(a, keys[0].KeyCipher)
		if err != nil {
			t.Fatalf("the client key after rotation: %v", err)
		}
		if got, err := (pii.ClientKeys{}).Open(dk, []byte("events.x/1"), sealedReason); err != nil || string(got) != "went to Cartagena" {
			t.Errorf("an event reason sealed before the rotation: %q, %v", got, err)
		}
		// k1 alone no longer opens anything: the data really moved.
		if _, err := keyed.Open(f.keys, rec.Scope, rec.Key, rec.ResponseBody); err == nil {
			t.Error("k1 alone still opens the rotated stored answer")
		}
		if _, _, err := (privacy.Codec{Keys: f.keys, Index: f.index}).Load(ctx, tx, a); err == nil {
			t.Error("k1 alone still opens rotated data")
		}
		return nil
	})
	if prog, err := rot.RunOnce(context.Background()); err != nil || prog.Rewritten != 0 || prog.Scanned != 7 {
		t.Fatalf("second pass %+v, %v", prog, err)
	}

	// A value under a key the ring lacks is counted as failed and left.
	k3 := ring(t, "k3", map[string][]byte{"k3": bytes.Repeat([]byte{5}, pii.KeyLen)})
	f.user("+573155555555") // sealed under k1, which k3's ring lacks
	r3, err := privacy.NewRotation(f.store, k3, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	r3.Pause = 0
	if prog, err := r3.RunOnce(context.Background()); err != nil || prog.Failed != 8 || prog.Rewritten != 0 {
		t.Fatalf("pass without the old keys %+v, %v", prog, err)
	}
	// Start and Stop are safe in any order and twice.
	rot.Stop()
	rot.Start(context.Background())
	rot.Stop()
	rot.Stop()
}

// TestAnonymiseForgetsSealedAnswers: answers stored for Idempotency-Key
// replays are sealed, so SQL cannot find the user in them; anonymisation
// opens each and deletes those that mention the user, whoever's key they
// are under, and leaves the others.
func TestAnonymiseForgetsSealedAnswers(t *testing.T) {
	f := newFixture(t)
	uid, other := f.user("+573001234567"), f.user("+573109876543")
	store := func(scope, key, body string) {
		sealed, err := keyed.Seal(f.keys, scope, key, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sealed, []byte(uid)) {
			t.Fatal("the stored body is not sealed")
		}
		f.tx(func(ctx context.Context, tx persistence.Tx) error {
			return tx.IdempotencyPut(ctx, persistence.IdempotencyRecord{Scope: scope, Key: key, State: persistence.IdempotencyCompleted,
				ResponseBody: sealed, CreatedAt: clock, ExpiresAt: clock.Add(time.Hour)})
		})
	}
	store("sub:desk", "booked-for-client", `{"client_id":"`+uid+`"}`)
	store("sub:desk", "booked-for-other", `{"client_id":"`+other+`"}`)
	store("sub:"+other, "own", `{"client_id":"`+other+`"}`)
	if _, err := f.anonymise(func(ctx context.Context, tx persistence.Tx) (privacy.Anonymised, error) {
		return f.svc.AnonymiseUser(ctx, tx, as(auth.RoleAdmin, "owner"), uid, privacy.AnonymiseInput{Confirm: true})
	}); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		recs, err := tx.IdempotencyList(ctx, clock, "", "", 100)
		for _, r := range recs {
			left[r.Key] = true
		}
		return err
	})
	if left["booked-for-client"] || !left["booked-for-other"] || !left["own"] {
		t.Fatalf("stored answers left after anonymisation: %v; want only the other client's", left)
	}
}

// TestProfileLanguageAndTimeZone: a client's language and time zone are
// kept sealed like every profile field, read back, named (not valued) in
// the audit, and scrubbed by anonymisation.
func TestProfileLanguageAndTimeZone(t *testing.T) {
	f := newFixture(t)
	uid := f.user("+573001234568")
	me := as(auth.RoleClient, uid)
	in := full
	in.Language, in.TimeZone = "en", "Europe/Madrid"
	p, err := f.update(me, in)
	if err != nil || p.Language != "en" || p.TimeZone != "Europe/Madrid" {
		t.Fatalf("update: %+v, %v", p, err)
	}
	f.tx(func(ctx context.Context, tx persistence.Tx) error {
		row, err := tx.ProfileGet(ctx, uid)
		if len(row.LanguageCipher) == 0 || len(row.TimeZoneCipher) == 0 {
			t.Error("language or time zone not stored")
		}
		if bytes.Contains(row.TimeZoneCipher, []byte("Madrid")) {
			t.Error("the time zone is stored in the clear")
		}
		return err
	})
	if e := f.audit("user/" + uid); len(e) != 1 || !strings.Contains(string(e[0].Detail), `"language"`) ||
		!strings.Contains(string(e[0].Detail), `"time_zone"`) || strings.Contains(string(e[0].Detail), "Madrid") {
		t.Fatalf("audit %+v", e)
	}
	got, err := f.svc.Profile(context.Background(), me, uid)
	if err != nil || got.Language != "en" || got.TimeZone != "Europe/Madrid" {
		t.Fatalf("read back: %+v, %v", got, err)
	}
}
