package catalogue

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/actors/service/servicetest"
	"github.com/spa-engine/spa/messages"
	"github.com/spa-engine/spa/persistence"
)

func TestStudioUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.svc.Studio(ctx); servicetest.Code(err) != fault.CodeNotFound || err.(*fault.Error).Message != "the studio is not set up yet" {
		t.Fatalf("before setup: %v", err)
	}
	put := func(in StudioInput) (st persistence.Studio, err error) {
		err = f.in(func(ctx context.Context, tx persistence.Tx) (err error) {
			st, err = f.svc.PutStudio(ctx, tx, boss, in)
			return err
		})
		return st, err
	}
	good := StudioInput{Name: "  Spa Serena ", TimeZone: "America/Bogota", Currency: "COP", Phone: "+573001234567", Email: "hola@serena.co"}
	st, err := put(good)
	if err != nil || st.Name != "Spa Serena" || st.Version != 1 || st.ID != StudioID || !st.UpdatedAt.Equal(t0) {
		t.Fatalf("put: %+v %v", st, err)
	}
	if got, err := f.svc.Studio(ctx); err != nil || got.Phone != "+573001234567" {
		t.Fatalf("read back %+v %v", got, err)
	}

	// The audit entry masks the contact details; the event carries the
	// public profile.
	audit, events := f.effects()
	if len(audit) != 1 || audit[0].Action != "studio.update" || audit[0].Subject != "studio/default" {
		t.Fatalf("audit %+v", audit)
	}
	var detail map[string]any
	json.Unmarshal(audit[0].Detail, &detail)
	if detail["phone"] != "+57********67" || detail["email"] != "h***@serena.co" || detail["version"] != float64(1) {
		t.Fatalf("audit detail %s", audit[0].Detail)
	}
	var su messages.StudioUpdated
	if len(events) != 1 || events[0].Payload.UnmarshalTo(&su) != nil || su.Name != "Spa Serena" || su.Version != 1 ||
		events[0].RequestId != "req-1" {
		t.Fatalf("events %v", events)
	}

	if _, err := put(good); servicetest.Code(err) != fault.CodeVersionConflict {
		t.Fatalf("stale version: %v", err)
	}
	bad := StudioInput{Name: "", TimeZone: "Mars/Olympus", Currency: "cop", Phone: "3001234567", Email: "nope", Version: -1}
	if _, err := put(bad); !slices.Equal(servicetest.Fields(err), []string{"name", "time_zone", "currency", "phone", "email", "version"}) {
		t.Fatalf("validation: %v", err)
	}
	good.Version = 1
	good.Name = "Spa Serena Norte"
	if st, err := put(good); err != nil || st.Version != 2 {
		t.Fatalf("update: %+v %v", st, err)
	}
	if audit, events := f.effects(); len(audit) != 2 || len(events) != 2 {
		t.Fatalf("refusals left effects: %d audit, %d events", len(audit), len(events))
	}
}
