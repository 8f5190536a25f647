package gateway

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/gateway/apierr"
)

const testDevice = "01JDEVICE0000000000000000A"

type legalDocResp struct {
	Slug    string
	Version int64
	Title   string
	Body    string
	Active  bool
}

type legalListResp struct{ Documents []legalDocResp }

// legalSlugs lists "slug@version" of a document list response.
func legalSlugs(t *testing.T, r result) []string {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	out := []string{}
	for _, d := range decode[legalListResp](t, r).Documents {
		out = append(out, fmt.Sprintf("%s@%d", d.Slug, d.Version))
	}
	return out
}

func (e *env) newLegalVersion(slug, title, body string) legalDocResp {
	e.t.Helper()
	r := e.admin("POST", "/v1/admin/legal/documents/"+slug+"/versions", fmt.Sprintf(`{"title":%q,"body":%q}`, title, body))
	if r.status != 201 {
		e.t.Fatalf("create %s: %d %s", slug, r.status, r.body)
	}
	return decode[legalDocResp](e.t.(*testing.T), r)
}

func (e *env) activateLegal(slug string, version int64) {
	e.t.Helper()
	if r := e.admin("POST", fmt.Sprintf("/v1/admin/legal/documents/%s/versions/%d/activate", slug, version), ""); r.status != 200 {
		e.t.Fatalf("activate %s@%d: %d %s", slug, version, r.status, r.body)
	}
}

func TestLegalDocumentsAndConsents(t *testing.T) {
	e := newEnv(t)
	v1 := e.newLegalVersion("terms", "Terms", "one\ntwo\nthree\n")
	v2 := e.newLegalVersion("terms", "Terms of use", "one\n2\nthree\nfour\n")
	if v1.Version != 1 || v2.Version != 2 || v1.Active || v2.Body != "one\n2\nthree\nfour\n" {
		t.Fatalf("versions %+v %+v", v1, v2)
	}
	e.newLegalVersion("privacy", "Privacy", "we keep little\n")

	// Bad input and wrong roles.
	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/v1/admin/legal/documents/Terms/versions", `{"title":"x","body":"y"}`, 422, "validation_failed"},
		{"/v1/admin/legal/documents/terms/versions", `{"title":"","body":"y"}`, 422, "validation_failed"},
		{"/v1/admin/legal/documents/terms/versions", `{"title":"x","body":"  "}`, 422, "validation_failed"},
		{"/v1/admin/legal/documents/terms/versions", `{"title":"x","body":"y","extra":1}`, 400, "bad_request"},
		{"/v1/admin/legal/documents/terms/versions/9/activate", ``, 404, "not_found"},
		{"/v1/admin/legal/documents/terms/versions/zero/activate", ``, 422, "validation_failed"},
	} {
		if r := e.admin("POST", tc.path, tc.body); r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("POST %s %s: %d %s", tc.path, tc.body, r.status, r.body)
		}
	}
	client := e.token("maria", auth.RoleClient)
	if r := e.do("POST", "/v1/admin/legal/documents/terms/versions", `{"title":"x","body":"y"}`,
		"Authorization", "Bearer "+client, "Content-Type", "application/json"); r.status != 403 {
		t.Fatalf("client creates a version: %d", r.status)
	}

	// Nothing is active yet, so nothing is required.
	if got := legalSlugs(t, e.do("GET", "/v1/legal/documents", "")); len(got) != 0 {
		t.Fatalf("active before activation: %v", got)
	}
	e.activateLegal("terms", 1)
	e.activateLegal("privacy", 1)
	if got := legalSlugs(t, e.do("GET", "/v1/legal/documents", "")); !slices.Equal(got, []string{"privacy@1", "terms@1"}) {
		t.Fatalf("active: %v", got)
	}
	if r := e.do("GET", "/v1/legal/documents/terms/versions/2", ""); r.status != 404 {
		t.Fatalf("anonymous reads the draft v2: %d %s", r.status, r.body)
	}
	if r := e.admin("GET", "/v1/legal/documents/terms/versions/2", ""); r.status != 200 || decode[legalDocResp](t, r).Title != "Terms of use" {
		t.Fatalf("admin gets v2: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/legal/documents/terms/versions/1", ""); r.status != 200 || !decode[legalDocResp](t, r).Active {
		t.Fatalf("get v1: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/legal/documents/terms/versions/3", ""); r.status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("get v3: %d %s", r.status, r.body)
	}

	// Required: by device, by user; without either it is a 400.
	if r := e.do("GET", "/v1/legal/required", ""); r.status != 400 || r.errCode(t) != "bad_request" {
		t.Fatalf("no subject: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/legal/required", "", "X-Device-ID", "short"); r.status != 400 {
		t.Fatalf("bad device id: %d %s", r.status, r.body)
	}
	if got := legalSlugs(t, e.do("GET", "/v1/legal/required", "", "X-Device-ID", testDevice)); !slices.Equal(got, []string{"privacy@1", "terms@1"}) {
		t.Fatalf("device required: %v", got)
	}
	accept := func(hdr []string, body string) result {
		t.Helper()
		return e.do("POST", "/v1/legal/consents", body, append([]string{"Content-Type", "application/json"}, hdr...)...)
	}
	device := []string{"X-Device-ID", testDevice}
	r := accept(device, `{"documents":[{"slug":"terms","version":1}]}`)
	if r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	first := decode[struct {
		Consents []struct{ ID, SubjectKind string }
	}](t, r).Consents
	if len(first) != 1 {
		t.Fatalf("consents %s", r.body)
	}
	again := decode[struct{ Consents []struct{ ID string } }](t, accept(device, `{"documents":[{"slug":"terms","version":1}]}`)).Consents
	if len(again) != 1 || again[0].ID != first[0].ID {
		t.Fatalf("second acceptance made a new record: %v vs %v", again, first)
	}
	if got := legalSlugs(t, e.do("GET", "/v1/legal/required", "", device...)); !slices.Equal(got, []string{"privacy@1"}) {
		t.Fatalf("after accepting terms: %v", got)
	}
	// The user has accepted nothing; the device's consent is not theirs.
	user := []string{"Authorization", "Bearer " + client}
	if got := legalSlugs(t, e.do("GET", "/v1/legal/required", "", user...)); len(got) != 2 {
		t.Fatalf("user required: %v", got)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"documents":[{"slug":"terms","version":7}]}`, 404, "not_found"},
		{`{"documents":[]}`, 422, "validation_failed"},
		{`{"documents":[{"slug":"BAD","version":0}]}`, 422, "validation_failed"},
		{`{"documents":"terms"}`, 400, "bad_request"},
	} {
		if r := accept(user, tc.body); r.status != tc.status || r.errCode(t) != tc.code {
			t.Errorf("accept %s: %d %s", tc.body, r.status, r.body)
		}
	}
	if r := accept(nil, `{"documents":[{"slug":"terms","version":1}]}`); r.status != 400 {
		t.Fatalf("anonymous accept without device: %d %s", r.status, r.body)
	}

	// A new active version is required again.
	e.activateLegal("terms", 2)
	if r := e.do("GET", "/v1/legal/documents/terms/versions/1", ""); r.status != 200 || decode[legalDocResp](t, r).Active {
		t.Fatalf("the superseded v1 stays readable: %d %s", r.status, r.body)
	}
	if got := legalSlugs(t, e.do("GET", "/v1/legal/required", "", device...)); !slices.Equal(got, []string{"privacy@1", "terms@2"}) {
		t.Fatalf("after terms v2: %v", got)
	}

	// Diff, versions, consents list and audit.
	diff := decode[struct {
		TitleChanged bool `json:"title_changed"`
		Lines        []struct{ Op, Text string }
	}](t, e.admin("GET", "/v1/admin/legal/documents/terms/diff?from=1&to=2", ""))
	var ops []string
	for _, l := range diff.Lines {
		ops = append(ops, l.Op[:1]+l.Text)
	}
	if want := []string{"eone", "dtwo", "i2", "ethree", "ifour"}; !diff.TitleChanged || !slices.Equal(ops, want) {
		t.Fatalf("diff %v (title changed %v), want %v", ops, diff.TitleChanged, want)
	}
	if r := e.admin("GET", "/v1/admin/legal/documents/terms/diff?from=1&to=5", ""); r.status != 404 {
		t.Fatalf("diff to a missing version: %d", r.status)
	}
	if r := e.admin("GET", "/v1/admin/legal/documents/terms/diff?from=1", ""); r.status != 422 {
		t.Fatalf("diff without to: %d", r.status)
	}
	versions := decode[struct{ Versions []legalDocResp }](t, e.admin("GET", "/v1/admin/legal/documents/terms/versions", "")).Versions
	if len(versions) != 2 || versions[0].Active || !versions[1].Active {
		t.Fatalf("versions %+v", versions)
	}
	page := decode[struct {
		Consents []struct {
			SubjectKind string `json:"subject_kind"`
			SubjectID   string `json:"subject_id"`
		} `json:"consents"`
	}](t, e.admin("GET", "/v1/admin/legal/consents?subject_kind=device&subject_id="+testDevice, ""))
	if len(page.Consents) != 1 || page.Consents[0].SubjectID != testDevice || page.Consents[0].SubjectKind != "device" {
		t.Fatalf("consents of the device: %+v", page)
	}
	if r := e.admin("GET", "/v1/admin/legal/consents?version=1", ""); r.status != 422 {
		t.Fatalf("version without slug: %d", r.status)
	}
	audit := string(e.admin("GET", "/v1/admin/audit?subject=legal/terms", "").body)
	if strings.Count(audit, `"legal.document.create"`) != 2 || strings.Count(audit, `"legal.document.activate"`) != 2 ||
		!strings.Contains(audit, `"previous_version":1`) {
		t.Fatalf("audit: %s", audit)
	}
}

// TestConsentGuardOnBooking: booking is free while nothing is active; once
// the terms and the category's informed consent are active, a client who
// has not accepted them gets 428 listing them, and books after accepting.
// Staff booking for a client are not held up.
func TestConsentGuardOnBooking(t *testing.T) {
	e := newBookingEnv(t)
	maria := e.token("maria", auth.RoleClient)
	if r := e.book(maria, "ana", slotAt(9, 0)); r.status != 201 {
		t.Fatalf("booking with nothing active: %d %s", r.status, r.body)
	}
	e.newLegalVersion("terms", "Terms", "be nice\n")
	e.newLegalVersion("consent-face", "Facial consent", "risks\n")
	e.newLegalVersion("consent-massage", "Massage consent", "risks\n")
	e.activateLegal("terms", 1)
	e.activateLegal("consent-face", 1)
	e.activateLegal("consent-massage", 1)

	r := e.book(maria, "ana", slotAt(10, 0), "Idempotency-Key", "k-1")
	if r.status != 428 || r.errCode(t) != "consent_required" {
		t.Fatalf("unconsented booking: %d %s", r.status, r.body)
	}
	body := decode[struct {
		Error struct {
			Details struct{ Documents []legalDocResp }
		}
	}](t, r)
	var missing []string
	for _, d := range body.Error.Details.Documents {
		missing = append(missing, fmt.Sprintf("%s@%d", d.Slug, d.Version))
	}
	// The massage consent is not this service's category.
	if !slices.Equal(missing, []string{"consent-face@1", "terms@1"}) {
		t.Fatalf("missing %v", missing)
	}
	if m := string(e.metrics().body); !strings.Contains(m, "spa_legal_consent_required_total 1\n") {
		t.Fatalf("metrics lack the 428:\n%s", m)
	}
	// Staff book for the client regardless.
	staff := e.token("rita", auth.RoleReceptionist)
	hold := fmt.Sprintf(`{"service_id":"facial","staff_id":"bea","start":%q,"client_id":"maria"}`, slotAt(11, 0).Format("2006-01-02T15:04:05Z07:00"))
	if r := e.do("POST", "/v1/appointments", hold, "Authorization", "Bearer "+staff, "Content-Type", "application/json"); r.status != 201 {
		t.Fatalf("staff booking: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/legal/consents", `{"documents":[{"slug":"terms","version":1},{"slug":"consent-face","version":1}]}`,
		"Authorization", "Bearer "+maria, "Content-Type", "application/json"); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	// The retry with the same key goes through: the 428 was not stored.
	if r := e.book(maria, "ana", slotAt(10, 0), "Idempotency-Key", "k-1"); r.status != 201 {
		t.Fatalf("booking after consent: %d %s", r.status, r.body)
	}
}

// TestConsentGuardOnCheckout: once terms are active, a client's checkout
// answers 428 until they are accepted, and the 428 is not stored against
// the Idempotency-Key.
func TestConsentGuardOnCheckout(t *testing.T) {
	e := newShopEnv(t)
	e.stockShop(t, 5)
	maria := []string{"Authorization", "Bearer " + e.token("maria", auth.RoleClient), "Content-Type", "application/json"}
	r := e.do("POST", "/v1/carts", "", maria[:2]...)
	if r.status != 201 {
		t.Fatalf("cart: %d %s", r.status, r.body)
	}
	cartID := decode[cartJSON](t, r).ID
	if r := e.do("PUT", "/v1/carts/"+cartID+"/lines/lavender-50", `{"qty":1}`, maria...); r.status != 200 {
		t.Fatalf("add line: %d %s", r.status, r.body)
	}
	e.newLegalVersion("terms", "Terms", "be nice\n")
	e.activateLegal("terms", 1)

	key := append(slices.Clone(maria), "Idempotency-Key", "co-1")
	r = e.do("POST", "/v1/carts/"+cartID+"/checkout", `{"fulfilment":"pickup"}`, key...)
	if r.status != 428 || r.errCode(t) != "consent_required" {
		t.Fatalf("unconsented checkout: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/legal/consents", `{"documents":[{"slug":"terms","version":1}]}`, maria...); r.status != 200 {
		t.Fatalf("accept: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/carts/"+cartID+"/checkout", `{"fulfilment":"pickup"}`, key...); r.status != 201 {
		t.Fatalf("checkout after consent: %d %s", r.status, r.body)
	}
}

// TestConsentGuardIsInertWithoutActiveDocuments: until a document is
// active the guard does not even read the request for its scope (the
// booking path pays nothing for it); once one is, it does.
func TestConsentGuardIsInertWithoutActiveDocuments(t *testing.T) {
	e := newEnv(t)
	guard := NewConsentGuard(e.store, 0)
	var scoped int
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error { return apierr.Render(c, slog.New(slog.DiscardHandler), err) }})
	app.Post("/guarded", guard.RequireScope(func(*fiber.Ctx) []string { scoped++; return []string{"terms"} }),
		func(c *fiber.Ctx) error { return c.SendStatus(204) })
	call := func() int {
		res, err := app.Test(httptest.NewRequest("POST", "/guarded", nil))
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}
	if got := call(); got != 204 || scoped != 0 {
		t.Fatalf("nothing active: status %d, scope read %d times", got, scoped)
	}
	e.newLegalVersion("terms", "Terms", "be nice\n")
	e.activateLegal("terms", 1)
	guard.Invalidate()
	if got := call(); got != 428 || scoped != 1 {
		t.Fatalf("terms active: status %d, scope read %d times", got, scoped)
	}
}
