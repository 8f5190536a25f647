package legal_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service"
	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/legal"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/persistence"
	"github.com/spa-engine/spa/persistence/sqlite/sqlitetest"
)

const device = "01JDEVICE0000000000000000A"

var clock = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t        *testing.T
	store    persistence.Store
	index    *pii.BlindIndex
	now      time.Time
	sessions *servicetest.Sessions
	svc      *legal.Service
}

// newFixture is a service over a fresh store; activeTTL 0 is the default.
func newFixture(t *testing.T, activeTTL time.Duration) *fixture {
	t.Helper()
	index, err := pii.NewBlindIndex(bytes.Repeat([]byte("k"), pii.MinIndexKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: sqlitetest.Open(t, persistence.Options{}), index: index, now: clock,
		sessions: &servicetest.Sessions{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clockFn := func() time.Time { return f.now }
	f.svc = legal.New(legal.Deps{Store: f.store, ActiveTTL: activeTTL, Sessions: f.sessions, Now: clockFn, Logger: log,
		Blocklist: legal.NewBlocklist(f.store, index, time.Hour, clockFn, log)})
	return f
}

// tx runs fn in a transaction and returns its error.
func (f *fixture) tx(fn func(ctx context.Context, tx persistence.Tx) error) error {
	ctx := context.Background()
	return f.store.InTx(ctx, func(tx persistence.Tx) error { return fn(ctx, tx) })
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) audit(subject string) []persistence.AuditEntry {
	f.t.Helper()
	var out []persistence.AuditEntry
	f.must(f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		out, err = tx.AuditList(ctx, persistence.AuditListParams{Subject: subject, Limit: 100})
		return err
	}))
	return out
}

func (f *fixture) create(slug, title, body string) (d persistence.LegalDocument, err error) {
	err = f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		d, err = f.svc.CreateVersion(ctx, tx, admin, slug, legal.VersionInput{Title: title, Body: body})
		return err
	})
	return d, err
}

func (f *fixture) activate(slug string, version int64) error {
	return f.tx(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.Activate(ctx, tx, admin, slug, version)
		return err
	})
}

// as, code and fields are servicetest's.
var (
	as     = servicetest.As
	code   = servicetest.Code
	fields = servicetest.Fields
)

var (
	admin  = as(auth.RoleAdmin, "owner")
	client = as(auth.RoleClient, "maria")
)

func refs(docs []persistence.LegalDocument) []string {
	out := []string{}
	for _, d := range docs {
		out = append(out, fmt.Sprintf("%s@%d", d.Slug, d.Version))
	}
	return out
}

func TestDocumentVersions(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		by                service.Caller
		slug, title, body string
		code              string
		fields            []string
	}{
		"bad slug":        {admin, "Terms!", "T", "b", fault.CodeValidationFailed, []string{"slug"}},
		"empty title":     {admin, "terms", "  ", "b", fault.CodeValidationFailed, []string{"title"}},
		"control title":   {admin, "terms", "a\nb", "b", fault.CodeValidationFailed, []string{"title"}},
		"empty body":      {admin, "terms", "T", " \n", fault.CodeValidationFailed, []string{"body"}},
		"huge body":       {admin, "terms", "T", strings.Repeat("x", 200_001), fault.CodeValidationFailed, []string{"body"}},
		"both bad":        {admin, "terms", "", "", fault.CodeValidationFailed, []string{"title", "body"}},
		"not an admin":    {client, "terms", "T", "b", fault.CodeForbidden, nil},
		"nobody at all":   {service.Caller{}, "terms", "T", "b", fault.CodeForbidden, nil},
		"long title fits": {admin, "draft-a", strings.Repeat("é", 200), "b", "", nil},
	} {
		err := f.tx(func(ctx context.Context, tx persistence.Tx) error {
			_, err := f.svc.CreateVersion(ctx, tx, tc.by, tc.slug, legal.VersionInput{Title: tc.title, Body: tc.body})
			return err
		})
		if code(err) != tc.code || !slices.Equal(fields(err), tc.fields) {
			t.Errorf("%s: %v %v", name, err, fields(err))
		}
	}
	if n := len(f.audit("legal/terms")); n != 0 {
		t.Fatalf("refusals audited: %d", n)
	}
	v1, err := f.create("terms", " Terms ", "be nice\nno running\n")
	if err != nil || v1.Version != 1 || v1.Title != "Terms" || v1.Active {
		t.Fatalf("v1 %+v, %v", v1, err)
	}
	if _, err := f.create("terms", "Terms of use", "be nice\nno diving\n"); err != nil {
		t.Fatal(err)
	}
	// Drafts are the admins' business.
	if _, err := f.svc.Version(ctx, client, "terms", 1); code(err) != fault.CodeNotFound {
		t.Fatalf("a client reads a draft: %v", err)
	}
	if d, err := f.svc.Version(ctx, admin, "terms", 1); err != nil || d.Body != "be nice\nno running\n" {
		t.Fatalf("an admin reads a draft: %+v, %v", d, err)
	}
	for _, tc := range []struct {
		slug    string
		version int64
		fields  []string
	}{{"Bad", 1, []string{"slug"}}, {"Bad", 0, []string{"slug"}}, {"terms", 0, []string{"version"}}} {
		if _, err := f.svc.Version(ctx, admin, tc.slug, tc.version); !slices.Equal(fields(err), tc.fields) {
			t.Errorf("Version(%q, %d): %v", tc.slug, tc.version, err)
		}
	}

	f.must(f.activate("terms", 1))
	f.must(f.activate("terms", 1)) // again: nothing changes, nothing audited
	f.must(f.activate("terms", 2))
	if err := f.activate("terms", 9); code(err) != fault.CodeNotFound {
		t.Fatalf("activate a missing version: %v", err)
	}
	if err := f.tx(func(ctx context.Context, tx persistence.Tx) error {
		_, err := f.svc.Activate(ctx, tx, client, "terms", 1)
		return err
	}); code(err) != fault.CodeForbidden {
		t.Fatalf("a client activates: %v", err)
	}
	var actions []string
	for _, e := range f.audit("legal/terms") {
		actions = append(actions, e.Action+" "+string(e.Detail))
	}
	slices.Sort(actions)
	want := []string{
		`legal.document.activate {"previous_version":0,"slug":"terms","version":1}`,
		`legal.document.activate {"previous_version":1,"slug":"terms","version":2}`,
		`legal.document.create {"body_bytes":18,"slug":"terms","title":"Terms of use","version":2}`,
		`legal.document.create {"body_bytes":19,"slug":"terms","title":"Terms","version":1}`,
	}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit\n%s\nwant\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	if d, err := f.svc.Version(ctx, client, "terms", 1); err != nil || d.Active {
		t.Fatalf("a once-active version stays readable: %+v, %v", d, err)
	}
	active, err := f.svc.Active(ctx)
	if err != nil || !slices.Equal(refs(active), []string{"terms@2"}) {
		t.Fatalf("active %v, %v", refs(active), err)
	}
	versions, err := f.svc.Versions(ctx, admin, "terms")
	if err != nil || len(versions) != 2 {
		t.Fatalf("versions %v, %v", refs(versions), err)
	}

	d, err := f.svc.Diff(ctx, admin, "terms", 1, 2)
	if err != nil || !d.TitleChanged || !slices.Equal(d.Lines, []legal.DiffLine{
		{Op: "equal", Text: "be nice"}, {Op: "delete", Text: "no running"}, {Op: "insert", Text: "no diving"}}) {
		t.Fatalf("diff %+v, %v", d, err)
	}
	if _, err := f.svc.Diff(ctx, admin, "terms", 0, 2); !slices.Equal(fields(err), []string{"from"}) {
		t.Fatalf("diff from 0: %v", err)
	}
	if _, err := f.svc.Diff(ctx, admin, "terms", 1, 7); code(err) != fault.CodeNotFound {
		t.Fatalf("diff to a missing version: %v", err)
	}
	if _, err := f.svc.Diff(ctx, client, "terms", 1, 2); code(err) != fault.CodeForbidden {
		t.Fatalf("a client diffs: %v", err)
	}
}

func TestConsentDecision(t *testing.T) {
	f := newFixture(t, time.Hour) // only Invalidate makes a change visible
	ctx := context.Background()
	scoped := 0
	booking := func() []string {
		scoped++
		return []string{"terms", "privacy", "consent-face", "terms"}
	}
	// Nothing active: inert, and the request's scope is not even read.
	if missing, err := f.svc.Missing(ctx, client, "", booking); err != nil || len(missing) != 0 || scoped != 0 {
		t.Fatalf("nothing active: %v, %v, scope read %d times", refs(missing), err, scoped)
	}
	for _, slug := range []string{"terms", "consent-face", "consent-massage"} {
		if _, err := f.create(slug, slug, "text\n"); err != nil {
			t.Fatal(err)
		}
		f.must(f.activate(slug, 1))
	}
	if missing, _ := f.svc.Missing(ctx, client, "", booking); len(missing) != 0 {
		t.Fatalf("the cache saw the activation before Invalidate: %v", refs(missing))
	}
	f.svc.Invalidate()

	for _, tc := range []struct {
		name   string
		by     service.Caller
		device string
		want   []string
	}{
		// privacy has no active version; consent-massage is not in scope.
		{"client", client, "", []string{"consent-face@1", "terms@1"}},
		{"anonymous with a device", service.Caller{}, device, []string{"consent-face@1", "terms@1"}},
		{"anonymous without one", service.Caller{}, "", []string{"consent-face@1", "terms@1"}},
		{"malformed device", service.Caller{}, "short", []string{"consent-face@1", "terms@1"}},
		{"staff", as(auth.RoleStaff, "ana"), "", []string{}},
		{"receptionist", as(auth.RoleReceptionist, "rita"), "", []string{}},
		{"admin", admin, "", []string{}},
	} {
		missing, err := f.svc.Missing(ctx, tc.by, tc.device, booking)
		if err != nil || !slices.Equal(refs(missing), tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, refs(missing), err, tc.want)
		}
	}

	// Whose consent: the token subject, never a kiosk's; else the device.
	for _, tc := range []struct {
		by     service.Caller
		device string
		want   legal.Subject
		code   string
	}{
		{client, device, legal.Subject{Kind: persistence.ConsentUser, ID: "maria"}, ""},
		{service.Caller{}, device, legal.Subject{Kind: persistence.ConsentDevice, ID: device}, ""},
		{as(auth.RoleKiosk, "kiosk-1"), device, legal.Subject{Kind: persistence.ConsentDevice, ID: device}, ""},
		{as(auth.RoleKiosk, "kiosk-1"), "", legal.Subject{}, fault.CodeBadRequest},
		{service.Caller{}, "bad id!", legal.Subject{}, fault.CodeBadRequest},
	} {
		sub, err := legal.SubjectOf(tc.by, tc.device)
		if sub != tc.want || code(err) != tc.code {
			t.Errorf("SubjectOf(%s, %q) = %+v, %v", tc.by.Role, tc.device, sub, err)
		}
	}

	accept := func(by service.Caller, sub legal.Subject, docs ...legal.DocumentRef) (out []persistence.LegalConsent, err error) {
		err = f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
			out, err = f.svc.Accept(ctx, tx, by, sub, docs)
			return err
		})
		return out, err
	}
	maria := legal.Subject{Kind: persistence.ConsentUser, ID: "maria"}
	many := make([]legal.DocumentRef, 21)
	for i := range many {
		many[i] = legal.DocumentRef{Slug: "terms", Version: 1}
	}
	for name, tc := range map[string]struct {
		sub    legal.Subject
		docs   []legal.DocumentRef
		code   string
		fields []string
	}{
		"none":          {maria, nil, fault.CodeValidationFailed, []string{"documents"}},
		"too many":      {maria, many, fault.CodeValidationFailed, []string{"documents"}},
		"bad entries":   {maria, []legal.DocumentRef{{"Terms", 1}, {"terms", 0}}, fault.CodeValidationFailed, []string{"documents[0].slug", "documents[1].version"}},
		"no subject":    {legal.Subject{}, []legal.DocumentRef{{"terms", 1}}, fault.CodeBadRequest, nil},
		"missing draft": {maria, []legal.DocumentRef{{"terms", 4}}, fault.CodeNotFound, nil},
	} {
		if _, err := accept(client, tc.sub, tc.docs...); code(err) != tc.code || !slices.Equal(fields(err), tc.fields) {
			t.Errorf("%s: %v %v", name, err, fields(err))
		}
	}
	recs, err := accept(client, maria, legal.DocumentRef{Slug: "terms", Version: 1}, legal.DocumentRef{Slug: "consent-face", Version: 1})
	if err != nil || len(recs) != 2 || recs[0].RequestID != "req-1" || !recs[0].AcceptedAt.Equal(clock) {
		t.Fatalf("accept: %+v, %v", recs, err)
	}
	if again, err := accept(client, maria, legal.DocumentRef{Slug: "terms", Version: 1}); err != nil || again[0].ID != recs[0].ID {
		t.Fatalf("accepting twice keeps the first record: %+v, %v", again, err)
	}
	if missing, err := f.svc.Missing(ctx, client, "", booking); err != nil || len(missing) != 0 {
		t.Fatalf("after accepting: %v, %v", refs(missing), err)
	}
	if req, err := f.svc.Required(ctx, maria); err != nil || !slices.Equal(refs(req), []string{"consent-massage@1"}) {
		t.Fatalf("required: %v, %v", refs(req), err)
	}
	// A new active version is required again.
	if _, err := f.create("terms", "Terms", "new\n"); err != nil {
		t.Fatal(err)
	}
	f.must(f.activate("terms", 2))
	f.svc.Invalidate()
	if missing, _ := f.svc.Missing(ctx, client, "", booking); !slices.Equal(refs(missing), []string{"terms@2"}) {
		t.Fatalf("after terms v2: %v", refs(missing))
	}

	// The admins' list pages newest first.
	if _, err := accept(service.Caller{}, legal.Subject{Kind: persistence.ConsentDevice, ID: device}, legal.DocumentRef{Slug: "terms", Version: 2}); err != nil {
		t.Fatal(err)
	}
	page, next, err := f.svc.Consents(ctx, admin, persistence.LegalConsentListParams{Limit: 2})
	if err != nil || len(page) != 2 || next == nil || page[0].SubjectID != device {
		t.Fatalf("first page %+v, %v, %v", page, next, err)
	}
	rest, next, err := f.svc.Consents(ctx, admin, persistence.LegalConsentListParams{Limit: 2, BeforeID: *next})
	if err != nil || len(rest) != 1 || next != nil {
		t.Fatalf("last page %+v, %v, %v", rest, next, err)
	}
	if _, _, err := f.svc.Consents(ctx, client, persistence.LegalConsentListParams{Limit: 2}); code(err) != fault.CodeForbidden {
		t.Fatalf("a client lists consents: %v", err)
	}
}

// user signs up phone as the sign-in does, with one live session.
func (f *fixture) user(phone string) string {
	f.t.Helper()
	uid := ulid.Make().String()
	f.must(f.tx(func(ctx context.Context, tx persistence.Tx) error {
		if err := tx.UserCreate(ctx, persistence.User{ID: uid, PhoneIndex: f.index.Sum(pii.FieldPhone, phone),
			PhoneCipher: []byte("sealed"), Roles: []string{"client"}, CreatedAt: clock, UpdatedAt: clock}); err != nil {
			return err
		}
		return tx.SessionCreate(ctx, persistence.Session{ID: ulid.Make().String(), UserID: uid, CreatedAt: clock,
			LastSeenAt: clock, ExpiresAt: clock.Add(24 * time.Hour)})
	}))
	return uid
}

func (f *fixture) addBlock(by service.Caller, in legal.BlockInput) (b legal.Block, err error) {
	err = f.tx(func(ctx context.Context, tx persistence.Tx) (err error) {
		b, err = f.svc.AddBlock(ctx, tx, by, in)
		return err
	})
	return b, err
}

func TestBlocks(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	past, soon := clock.Add(-time.Minute), clock.Add(time.Hour)
	for name, tc := range map[string]struct {
		by     service.Caller
		in     legal.BlockInput
		code   string
		fields []string
	}{
		"unknown kind":     {admin, legal.BlockInput{Kind: "email", Value: "x", Reason: "r"}, fault.CodeValidationFailed, []string{"kind"}},
		"host bits":        {admin, legal.BlockInput{Kind: "ip", Value: "10.0.0.1/8", Reason: "r"}, fault.CodeValidationFailed, []string{"value"}},
		"no reason":        {admin, legal.BlockInput{Kind: "ip", Value: "10.0.0.1", Reason: " "}, fault.CodeValidationFailed, []string{"reason"}},
		"long reason":      {admin, legal.BlockInput{Kind: "ip", Value: "10.0.0.1", Reason: strings.Repeat("r", 501)}, fault.CodeValidationFailed, []string{"reason"}},
		"expired":          {admin, legal.BlockInput{Kind: "ip", Value: "10.0.0.1", Reason: "r", ExpiresAt: &past}, fault.CodeValidationFailed, []string{"expires_at"}},
		"not a phone":      {admin, legal.BlockInput{Kind: "phone", Value: "12", Reason: "r"}, fault.CodeValidationFailed, []string{"value"}},
		"long document":    {admin, legal.BlockInput{Kind: "document", Value: strings.Repeat("1", 33), Reason: "r"}, fault.CodeValidationFailed, []string{"value"}},
		"everything wrong": {admin, legal.BlockInput{Kind: "ip", Value: "nope", ExpiresAt: &past}, fault.CodeValidationFailed, []string{"reason", "value", "expires_at"}},
		"not an admin":     {client, legal.BlockInput{Kind: "ip", Value: "10.0.0.1", Reason: "r"}, fault.CodeForbidden, nil},
	} {
		if _, err := f.addBlock(tc.by, tc.in); code(err) != tc.code || !slices.Equal(fields(err), tc.fields) {
			t.Errorf("%s: %v %v", name, err, fields(err))
		}
	}
	bl := f.svc.Blocklist()
	ipBlock, err := f.addBlock(admin, legal.BlockInput{Kind: "ip", Value: "192.0.2.0/24", Reason: "abuse", ExpiresAt: &soon})
	if err != nil || ipBlock.Label != "192.0.2.0/24" || !ipBlock.Active || ipBlock.CreatedBy != "owner" {
		t.Fatalf("ip block %+v, %v", ipBlock, err)
	}
	if _, err := f.addBlock(admin, legal.BlockInput{Kind: "ip", Value: "192.0.2.0/24", Reason: "again"}); code(err) != fault.CodeConflict {
		t.Fatalf("a second block of the same range: %v", err)
	}
	bl.Invalidate() // as the gateway does after the commit
	if !bl.IPBlocked(ctx, netip.MustParseAddr("192.0.2.9")) || bl.IPBlocked(ctx, netip.MustParseAddr("192.0.3.9")) {
		t.Fatal("the range does not apply")
	}
	f.now = soon // expiry is checked per request, without a reload
	if bl.IPBlocked(ctx, netip.MustParseAddr("192.0.2.9")) {
		t.Fatal("an expired block still applies")
	}
	f.now = clock

	// A phone block ends the sessions of the user with that number.
	uid := f.user("+573001234567")
	ph, err := f.addBlock(admin, legal.BlockInput{Kind: "phone", Value: "300 123 4567", Reason: "fraud"})
	if err != nil || strings.Contains(ph.Label, "1234") || strings.Contains(ph.Value, "3001234567") {
		t.Fatalf("phone block %+v, %v", ph, err)
	}
	if f.sessions.Revoked()[uid] != legal.RevokeBlocked || len(f.sessions.Forgot()) != 1 {
		t.Fatalf("sessions: revoked %v, forgot %v", f.sessions.Revoked(), f.sessions.Forgot())
	}
	add := f.audit("block/" + ph.ID)
	if len(add) != 1 || add[0].Action != "block.add" || !strings.Contains(string(add[0].Detail), `"revoked_sessions":1`) ||
		strings.Contains(string(add[0].Detail), "3001234567") {
		t.Fatalf("audit %+v", add)
	}
	if blocked, err := bl.IsBlocked(ctx, "+573001234567", ""); err != nil || !blocked {
		t.Fatalf("IsBlocked after the block: %v, %v", blocked, err)
	}
	if _, err := f.addBlock(admin, legal.BlockInput{Kind: "document", Value: "1.234.567-8", Reason: "chargebacks"}); err != nil {
		t.Fatal(err)
	}

	// Without a blind index there are no person blocks.
	plain := legal.New(legal.Deps{Store: f.store})
	if err := f.tx(func(ctx context.Context, tx persistence.Tx) error {
		_, err := plain.AddBlock(ctx, tx, admin, legal.BlockInput{Kind: "phone", Value: "3001234567", Reason: "r"})
		return err
	}); code(err) != fault.CodeUnavailable {
		t.Fatalf("phone block without an index: %v", err)
	}

	page, next, err := f.svc.Blocks(ctx, admin, legal.BlockQuery{Limit: 2})
	if err != nil || len(page) != 2 || next == nil || page[0].Kind != persistence.BlockDocument {
		t.Fatalf("first page %+v, %v, %v", page, next, err)
	}
	if rest, next, err := f.svc.Blocks(ctx, admin, legal.BlockQuery{Limit: 2, BeforeID: *next}); err != nil || len(rest) != 1 || next != nil {
		t.Fatalf("last page %+v, %v, %v", rest, next, err)
	}
	if phones, _, err := f.svc.Blocks(ctx, admin, legal.BlockQuery{Kind: persistence.BlockPhone, Limit: 10}); err != nil || len(phones) != 1 {
		t.Fatalf("phone blocks %+v, %v", phones, err)
	}
	f.now = soon
	if live, _, _ := f.svc.Blocks(ctx, admin, legal.BlockQuery{Limit: 10}); len(live) != 2 {
		t.Fatalf("expired blocks listed: %d", len(live))
	}
	if all, _, _ := f.svc.Blocks(ctx, admin, legal.BlockQuery{Limit: 10, IncludeExpired: true}); len(all) != 3 || all[2].Active {
		t.Fatalf("with expired: %+v", all)
	}
	f.now = clock
	if _, _, err := f.svc.Blocks(ctx, client, legal.BlockQuery{Limit: 10}); code(err) != fault.CodeForbidden {
		t.Fatalf("a client lists blocks: %v", err)
	}

	remove := func(by service.Caller, id string) error {
		return f.tx(func(ctx context.Context, tx persistence.Tx) error { return f.svc.RemoveBlock(ctx, tx, by, id) })
	}
	for _, tc := range []struct {
		by   service.Caller
		id   string
		code string
	}{{admin, "not-a-ulid", fault.CodeNotFound}, {admin, ulid.Make().String(), fault.CodeNotFound}, {client, ph.ID, fault.CodeForbidden}} {
		if err := remove(tc.by, tc.id); code(err) != tc.code {
			t.Errorf("remove %q by %s: %v", tc.id, tc.by.Role, err)
		}
	}
	f.must(remove(admin, ph.ID))
	if e := f.audit("block/" + ph.ID); len(e) != 2 || e[0].Action != "block.remove" || !strings.Contains(string(e[0].Detail), `"reason":"fraud"`) {
		t.Fatalf("remove audit %+v", e)
	}
	if blocked, err := bl.IsBlocked(ctx, "+573001234567", ""); err != nil || blocked {
		t.Fatalf("IsBlocked after removal: %v, %v", blocked, err)
	}
}

func TestAuditLog(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	for i := range 3 {
		if _, err := f.create("terms", fmt.Sprintf("T%d", i), "b"); err != nil {
			t.Fatal(err)
		}
	}
	page, next, err := f.svc.AuditLog(ctx, admin, legal.AuditQuery{Subject: "legal/terms", Limit: 2})
	if err != nil || len(page) != 2 || next == nil || page[0].Action != "legal.document.create" {
		t.Fatalf("first page %+v, %v, %v", page, next, err)
	}
	rest, last, err := f.svc.AuditLog(ctx, admin, legal.AuditQuery{Subject: "legal/terms", Limit: 2, BeforeID: *next})
	if err != nil || len(rest) != 1 || last != nil || rest[0].ID >= page[1].ID {
		t.Fatalf("last page %+v, %v, %v", rest, last, err)
	}
	if all, _, err := f.svc.AuditLog(ctx, admin, legal.AuditQuery{Limit: 1000}); err != nil || len(all) != 3 {
		t.Fatalf("capped page: %d, %v", len(all), err)
	}
	for name, tc := range map[string]struct {
		by     service.Caller
		q      legal.AuditQuery
		code   string
		fields []string
	}{
		"bad cursor":   {admin, legal.AuditQuery{BeforeID: "page-2"}, fault.CodeValidationFailed, []string{"before"}},
		"long subject": {admin, legal.AuditQuery{Subject: strings.Repeat("s", 201)}, fault.CodeValidationFailed, []string{"subject"}},
		"not an admin": {client, legal.AuditQuery{}, fault.CodeForbidden, nil},
	} {
		if _, _, err := f.svc.AuditLog(ctx, tc.by, tc.q); code(err) != tc.code || !slices.Equal(fields(err), tc.fields) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestConsentSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Massage":        "consent-massage",
		"Facial & Skin":  "consent-facial-skin",
		"  laser--hair ": "consent-laser-hair",
		"Depilación":     "consent-depilaci-n",
		"***":            "",
		"":               "",
	} {
		if got := legal.ConsentSlug(in); got != want {
			t.Errorf("ConsentSlug(%q) = %q, want %q", in, got, want)
		}
	}
	if got := legal.ConsentSlug(strings.Repeat("ab ", 40)); len(got) > 64 || strings.HasSuffix(got, "-") {
		t.Errorf("long category: %q", got)
	}
}

// FuzzConsentSlug: every category maps to no slug or a valid one.
func FuzzConsentSlug(f *testing.F) {
	for _, s := range []string{"Massage", "Facial & Skin", "Depilación", "---", strings.Repeat("z9 ", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, category string) {
		slug := legal.ConsentSlug(category)
		if slug != "" && (!persistence.ValidLegalSlug(slug) || !strings.HasPrefix(slug, persistence.ConsentSlugPrefix)) {
			t.Fatalf("ConsentSlug(%q) = %q", category, slug)
		}
	})
}
