package gateway

import (
	"encoding/json"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/service/catalogue"
	"github.com/spa-engine/spa/messages"
)

// admin sends an authenticated admin request with a JSON body.
func (e *env) admin(method, path, body string, hdr ...string) result {
	e.t.Helper()
	h := append([]string{"Authorization", "Bearer " + e.token("boss", auth.RoleAdmin)}, hdr...)
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.do(method, path, body, h...)
}

func decode[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

func fieldNames(t *testing.T, r result) []string {
	t.Helper()
	if r.status != 422 || r.errCode(t) != "validation_failed" {
		t.Fatalf("want 422 validation_failed, got %d %s", r.status, r.body)
	}
	var body struct {
		Error struct {
			Details struct {
				Fields []struct{ Field string } `json:"fields"`
			} `json:"details"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &body)
	var names []string
	for _, f := range body.Error.Details.Fields {
		names = append(names, f.Field)
	}
	return names
}

// changes decodes the CatalogueChanged events in the outbox.
func (e *env) changes() []*messages.CatalogueChanged {
	e.t.Helper()
	_, events := e.effects()
	var out []*messages.CatalogueChanged
	for _, ev := range events {
		var env messages.Event
		if err := proto.Unmarshal(ev.Payload, &env); err != nil {
			e.t.Fatal(err)
		}
		var cc messages.CatalogueChanged
		if env.Payload.UnmarshalTo(&cc) == nil {
			out = append(out, &cc)
		}
	}
	return out
}

const massage = `{"name":"Masaje relajante","category":"massage","duration_minutes":60,"price_minor":12000000,
	"buffer_after_minutes":15,"required_skills":["massage","aromatherapy","massage"],
	"deposit_policy":"percent","deposit_value":30,"cancel_cutoff_minutes":1440,"active":true,"version":0}`

func TestServiceCatalogue(t *testing.T) {
	e := newEnv(t)
	r := e.admin("PUT", "/v1/admin/services/massage-60", massage)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	sv := decode[catalogue.ServiceJSON](t, r)
	if sv.Version != 1 || sv.DurationMinutes != 60 || sv.BufferAfterMinutes != 15 ||
		!slices.Equal(sv.RequiredSkills, []string{"aromatherapy", "massage"}) || sv.DepositPolicy != "percent" {
		t.Fatalf("stored service %+v", sv)
	}
	// Stale version: 409 version_conflict, nothing written.
	if r := e.admin("PUT", "/v1/admin/services/massage-60", massage); r.status != 409 || r.errCode(t) != "version_conflict" {
		t.Fatalf("stale version: %d %s", r.status, r.body)
	}
	// Public reads: active only.
	if r := e.do("GET", "/v1/services/massage-60", ""); r.status != 200 || decode[catalogue.ServiceJSON](t, r).PriceMinor != 12000000 {
		t.Fatalf("public get: %d %s", r.status, r.body)
	}
	inactive := `{"name":"Old","category":"x","duration_minutes":30,"active":false,"version":0}`
	if r := e.admin("PUT", "/v1/admin/services/old", inactive); r.status != 200 {
		t.Fatalf("inactive create: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/services/old", ""); r.status != 404 || r.errCode(t) != "not_found" {
		t.Fatalf("inactive service is public: %d", r.status)
	}
	list := decode[struct{ Services []catalogue.ServiceJSON }](t, e.do("GET", "/v1/services", ""))
	if len(list.Services) != 1 || list.Services[0].ID != "massage-60" {
		t.Fatalf("public list %+v", list)
	}
	all := decode[struct{ Services []catalogue.ServiceJSON }](t, e.admin("GET", "/v1/admin/services", ""))
	if len(all.Services) != 2 {
		t.Fatalf("admin list %+v", all)
	}
	if r := e.do("GET", "/v1/admin/services", ""); r.status != 401 {
		t.Fatalf("admin list without token: %d", r.status)
	}
	got := e.changes()
	if len(got) != 2 || got[0].Kind != "service" || got[0].Id != "massage-60" || got[0].Version != 1 {
		t.Fatalf("events %v", got)
	}
}

func TestServiceValidation(t *testing.T) {
	e := newEnv(t)
	bad := `{"name":"","category":"x","duration_minutes":3,"price_minor":-1,"buffer_before_minutes":-5,
		"required_skills":["Bad Skill"],"resource_id":"sauna","deposit_policy":"fixed","deposit_value":10,"version":0}`
	got := fieldNames(t, e.admin("PUT", "/v1/admin/services/x", bad))
	for _, want := range []string{"name", "duration_minutes", "price_minor", "buffer_before_minutes", "required_skills", "deposit_value"} {
		if !slices.Contains(got, want) {
			t.Errorf("no error for %s in %v", want, got)
		}
	}
	// A resource that does not exist.
	r := e.admin("PUT", "/v1/admin/services/sauna-30", `{"name":"Sauna","category":"wet","duration_minutes":30,"resource_id":"sauna","active":true,"version":0}`)
	if names := fieldNames(t, r); !slices.Equal(names, []string{"resource_id"}) {
		t.Fatalf("unknown resource: %v", names)
	}
	if r := e.admin("PUT", "/v1/admin/resources/sauna", `{"name":"Sauna","capacity":4,"active":true,"version":0}`); r.status != 200 {
		t.Fatalf("resource: %d %s", r.status, r.body)
	}
	if r := e.admin("PUT", "/v1/admin/services/sauna-30", `{"name":"Sauna","category":"wet","duration_minutes":30,"resource_id":"sauna","active":true,"version":0}`); r.status != 200 {
		t.Fatalf("service with resource: %d %s", r.status, r.body)
	}
	if r := e.admin("PUT", "/v1/admin/services/Not_A_Slug!", massage); r.status != 422 {
		t.Fatalf("bad id: %d", r.status)
	}
	if r := e.admin("PUT", "/v1/admin/services/x", `{"name":"x","surprise":1}`); r.status != 400 || r.errCode(t) != "bad_request" {
		t.Fatalf("unknown field: %d %s", r.status, r.body)
	}
	if audit, _ := e.effects(); len(audit) != 2 { // the resource and the service with it
		t.Fatalf("failed requests were audited: %d entries", len(audit))
	}
}

const ana = `{"name":"Ana","skills":["massage"],"time_zone":"America/Bogota","active":true,"version":0,
	"weekly_hours":{"monday":[{"start":"14:00","end":"19:00"},{"start":"09:00","end":"13:00"}],"saturday":[{"start":"08:00","end":"12:00"}]}}`

func TestStaffAndHours(t *testing.T) {
	e := newEnv(t)
	r := e.admin("PUT", "/v1/admin/staff/ana", ana)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	st := decode[catalogue.StaffJSON](t, r)
	wantMonday := []catalogue.ClockRange{{Start: "09:00", End: "13:00"}, {Start: "14:00", End: "19:00"}}
	if !slices.Equal(st.WeeklyHours["monday"], wantMonday) || len(st.WeeklyHours["sunday"]) != 0 || st.Version != 1 {
		t.Fatalf("stored staff %+v", st)
	}
	if got := decode[catalogue.StaffJSON](t, e.admin("GET", "/v1/admin/staff/ana", "")); !slices.Equal(got.WeeklyHours["saturday"], []catalogue.ClockRange{{Start: "08:00", End: "12:00"}}) {
		t.Fatalf("read back %+v", got)
	}
	pub := decode[struct{ Staff []catalogue.StaffJSON }](t, e.do("GET", "/v1/staff", ""))
	if len(pub.Staff) != 1 || pub.Staff[0].WeeklyHours != nil || pub.Staff[0].Version != 0 {
		t.Fatalf("public staff view leaks admin fields: %s", e.do("GET", "/v1/staff", "").body)
	}
	// Touching and overlapping ranges of a day are one shift.
	r = e.admin("PUT", "/v1/admin/staff/bea", `{"name":"Bea","time_zone":"America/Bogota","weekly_hours":{"monday":[{"start":"12:00","end":"15:00"},{"start":"09:00","end":"12:00"}],"tuesday":[{"start":"09:00","end":"13:00"},{"start":"12:00","end":"14:00"}]},"version":0}`)
	if bea := decode[catalogue.StaffJSON](t, r); !slices.Equal(bea.WeeklyHours["monday"], []catalogue.ClockRange{{Start: "09:00", End: "15:00"}}) ||
		!slices.Equal(bea.WeeklyHours["tuesday"], []catalogue.ClockRange{{Start: "09:00", End: "14:00"}}) {
		t.Fatalf("merged hours: %d %s", r.status, r.body)
	}
	for name, body := range map[string]string{
		"past midnight": `{"name":"B","time_zone":"America/Bogota","weekly_hours":{"monday":[{"start":"09:00","end":"13:00"},{"start":"12:00","end":"24:30"}]},"version":0}`,
		"inverted":      `{"name":"B","time_zone":"America/Bogota","weekly_hours":{"monday":[{"start":"13:00","end":"09:00"}]},"version":0}`,
		"bad time":      `{"name":"B","time_zone":"America/Bogota","weekly_hours":{"monday":[{"start":"9am","end":"13:00"}]},"version":0}`,
		"bad day":       `{"name":"B","time_zone":"America/Bogota","weekly_hours":{"funday":[{"start":"09:00","end":"13:00"}]},"version":0}`,
		"bad zone":      `{"name":"B","time_zone":"Bogota","version":0}`,
	} {
		if r := e.admin("PUT", "/v1/admin/staff/b", body); r.status != 422 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}

	// Date overrides.
	if r := e.admin("PUT", "/v1/admin/staff/ana/overrides/2026-12-24", `{"closed":true}`); r.status != 200 {
		t.Fatalf("day off: %d %s", r.status, r.body)
	}
	if r := e.admin("PUT", "/v1/admin/staff/ana/overrides/2026-12-20", `{"ranges":[{"start":"10:00","end":"16:00"}]}`); r.status != 200 {
		t.Fatalf("extra hours: %d %s", r.status, r.body)
	}
	if r := e.admin("PUT", "/v1/admin/staff/ana/overrides/2026-12-21", `{"closed":true,"ranges":[{"start":"10:00","end":"16:00"}]}`); r.status != 422 {
		t.Fatalf("closed with ranges: %d", r.status)
	}
	if r := e.admin("PUT", "/v1/admin/staff/ana/overrides/2026-13-01", `{"closed":true}`); r.status != 422 {
		t.Fatalf("bad date: %d", r.status)
	}
	if r := e.admin("PUT", "/v1/admin/staff/nobody/overrides/2026-12-24", `{"closed":true}`); r.status != 404 {
		t.Fatalf("unknown staff: %d", r.status)
	}
	ov := decode[struct{ Overrides []catalogue.OverrideJSON }](t, e.admin("GET", "/v1/admin/staff/ana/overrides?from=2026-12-01&to=2027-01-01", ""))
	if len(ov.Overrides) != 2 || ov.Overrides[0].Date != "2026-12-20" || !ov.Overrides[1].Closed {
		t.Fatalf("overrides %+v", ov)
	}
	if r := e.admin("DELETE", "/v1/admin/staff/ana/overrides/2026-12-24", ""); r.status != 204 {
		t.Fatalf("delete override: %d %s", r.status, r.body)
	}
	if r := e.admin("DELETE", "/v1/admin/staff/ana/overrides/2026-12-24", ""); r.status != 404 {
		t.Fatalf("delete twice: %d", r.status)
	}

	// Time off.
	r = e.admin("POST", "/v1/admin/staff/ana/time-off", `{"start":"2026-12-01T14:00:00-05:00","end":"2026-12-01T16:00:00-05:00","reason":"doctor"}`)
	if r.status != 201 {
		t.Fatalf("time off: %d %s", r.status, r.body)
	}
	to := decode[catalogue.TimeOffJSON](t, r)
	if r := e.admin("POST", "/v1/admin/staff/ana/time-off", `{"start":"2026-12-01T16:00:00Z","end":"2026-12-01T14:00:00Z"}`); r.status != 422 {
		t.Fatalf("inverted time off: %d", r.status)
	}
	list := decode[struct {
		TimeOff []catalogue.TimeOffJSON `json:"time_off"`
	}](t, e.admin("GET", "/v1/admin/staff/ana/time-off?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z", ""))
	if len(list.TimeOff) != 1 || list.TimeOff[0].ID != to.ID || list.TimeOff[0].Start.Hour() != 19 {
		t.Fatalf("time off list %+v", list)
	}
	if r := e.admin("PUT", "/v1/admin/staff/eva", `{"name":"Eva","time_zone":"America/Bogota","active":true,"version":0}`); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.admin("DELETE", "/v1/admin/staff/eva/time-off/"+to.ID, ""); r.status != 404 {
		t.Fatalf("deleted through another staff member's path: %d", r.status)
	}
	if r := e.admin("DELETE", "/v1/admin/staff/ana/time-off/"+to.ID, ""); r.status != 204 {
		t.Fatalf("delete time off: %d %s", r.status, r.body)
	}

	var staffChanges int
	for _, c := range e.changes() {
		if c.Kind == "staff" && c.Id == "ana" {
			staffChanges++
		}
	}
	// put, two overrides, override delete, time off add and delete.
	if staffChanges != 6 {
		t.Fatalf("CatalogueChanged events for ana: %d, want 6", staffChanges)
	}
}

func TestResourceValidation(t *testing.T) {
	e := newEnv(t)
	if names := fieldNames(t, e.admin("PUT", "/v1/admin/resources/room", `{"name":"","capacity":0,"version":0}`)); !slices.Equal(names, []string{"name", "capacity"}) {
		t.Fatalf("fields %v", names)
	}
	if r := e.admin("PUT", "/v1/admin/resources/room", `{"name":"Room 1","capacity":1,"active":true,"version":0}`); r.status != 200 {
		t.Fatal(r.status)
	}
	rs := decode[struct{ Resources []catalogue.ResourceJSON }](t, e.admin("GET", "/v1/admin/resources", ""))
	if len(rs.Resources) != 1 || rs.Resources[0].Capacity != 1 || rs.Resources[0].Version != 1 {
		t.Fatalf("resources %+v", rs)
	}
	client := e.token("c1", auth.RoleClient)
	if r := e.do("GET", "/v1/admin/resources", "", "Authorization", "Bearer "+client); r.status != 403 {
		t.Fatalf("client reads admin resources: %d", r.status)
	}
}
