package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/persistence"
)

const fullProfile = `{"name":"María Pérez","email":"maria.perez@example.com","document_type":"cc",
	"document_number":"1.020.304.050","birth_date":"1990-05-17","clinical_notes":"Alérgica al látex",
	"language":"en","time_zone":"America/Bogota","version":0}`

func TestProfileViewsByRole(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	p := ie.signIn(t, maria)

	r := ie.do("GET", "/v1/me/profile", "", jsonHdr(p.Access)...)
	if m := r.json(t); r.status != 200 || m["version"] != float64(0) || m["phone"] != maria || m["name"] != "" {
		t.Fatalf("empty profile: %d %s", r.status, r.body)
	}
	r = ie.do("PUT", "/v1/me/profile", fullProfile, jsonHdr(p.Access, "Idempotency-Key", "p1")...)
	if m := r.json(t); r.status != 200 || m["version"] != float64(1) || m["document_type"] != "CC" || m["clinical_notes"] != "Alérgica al látex" {
		t.Fatalf("put: %d %s", r.status, r.body)
	}

	// Stored sealed: no field in the clear in the profile row.
	err := ie.store.InTx(context.Background(), func(tx persistence.Tx) error {
		row, err := tx.ProfileGet(context.Background(), p.User)
		if err != nil {
			return err
		}
		for field, ct := range row.Ciphers() {
			for _, v := range []string{"María", "maria.perez", "1020304050", "1990-05-17", "látex", "Bogota"} {
				if bytes.Contains(*ct, []byte(v)) {
					t.Errorf("%s holds %q in the clear", field, v)
				}
			}
			if id, err := pii.KeyID(*ct); err != nil || id != "k1" {
				t.Errorf("%s: key id %q, %v", field, id, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	views := []struct {
		role        auth.Role
		sub         string
		masked      bool
		wantEmail   string
		wantDoc     string
		notesShown  bool
		wantBirthDt string
	}{
		{auth.RoleAdmin, "owner", false, "maria.perez@example.com", "1.020.304.050", true, "1990-05-17"},
		{auth.RoleReceptionist, "desk", true, "m***@e***.com", "******4050", false, "***"},
		{auth.RoleStaff, "ana", true, "m***@e***.com", "******4050", false, "***"},
	}
	for _, v := range views {
		r := ie.do("GET", "/v1/clients/"+p.User+"/profile", "", jsonHdr(ie.token(v.sub, v.role))...)
		m := r.json(t)
		_, notes := m["clinical_notes"]
		if r.status != 200 || m["masked"] != v.masked || m["email"] != v.wantEmail || m["document_number"] != v.wantDoc ||
			notes != v.notesShown || m["birth_date"] != v.wantBirthDt || m["name"] != "María Pérez" {
			t.Errorf("%s sees %d %s", v.role, r.status, r.body)
		}
		if v.masked && m["phone"] == maria {
			t.Errorf("%s sees the phone in full", v.role)
		}
	}
	if r := ie.do("GET", "/v1/clients/"+p.User+"/profile", "", jsonHdr(ie.token("juan", auth.RoleClient))...); r.status != 403 {
		t.Fatalf("a client reads another's profile: %d", r.status)
	}

	// Stale version, bad fields.
	if r := ie.do("PUT", "/v1/me/profile", fullProfile, jsonHdr(p.Access)...); r.status != 409 || r.errCode(t) != "version_conflict" {
		t.Fatalf("stale put: %d %s", r.status, r.body)
	}
	bad := `{"email":"nope","document_type":"XX","document_number":"1","birth_date":"2999-01-01","version":1}`
	r = ie.do("PUT", "/v1/me/profile", bad, jsonHdr(p.Access)...)
	if r.status != 422 || r.errCode(t) != "validation_failed" {
		t.Fatalf("bad put: %d %s", r.status, r.body)
	}
	for _, f := range []string{"email", "document_type", "birth_date"} {
		if !strings.Contains(string(r.body), `"field":"`+f+`"`) {
			t.Errorf("no error for %s in %s", f, r.body)
		}
	}
	if strings.Contains(string(r.body), "nope") {
		t.Error("the error echoes the value")
	}

	// Lookups by phone and by document, masked for the desk.
	desk := ie.token("desk", auth.RoleReceptionist)
	r = ie.do("POST", "/v1/clients/lookup", `{"document_number":"1020304050"}`, jsonHdr(desk)...)
	if list := r.json(t)["clients"].([]any); r.status != 200 || len(list) != 1 || list[0].(map[string]any)["email"] != "m***@e***.com" {
		t.Fatalf("lookup by document: %d %s", r.status, r.body)
	}
	r = ie.do("POST", "/v1/clients/lookup", `{"phone":"300 123 4567"}`, jsonHdr(desk)...)
	if list := r.json(t)["clients"].([]any); r.status != 200 || len(list) != 1 || list[0].(map[string]any)["user_id"] != p.User {
		t.Fatalf("lookup by phone: %d %s", r.status, r.body)
	}
	if r := ie.do("POST", "/v1/clients/lookup", `{}`, jsonHdr(desk)...); r.status != 422 {
		t.Fatalf("empty lookup: %d %s", r.status, r.body)
	}
	if r := ie.do("POST", "/v1/clients/lookup", `{"phone":"+573109876543"}`, jsonHdr(desk)...); r.status != 200 || len(r.json(t)["clients"].([]any)) != 0 {
		t.Fatalf("lookup of an unknown phone: %d %s", r.status, r.body)
	}
	// Nothing personal reached the log.
	logs := ie.logs.String()
	for _, v := range []string{"maria.perez", "1020304050", "1.020.304.050", "látex", "3001234567"} {
		if strings.Contains(logs, v) {
			t.Errorf("the log holds %q", v)
		}
	}
}

func TestPIIRotationReencryptsEverything(t *testing.T) {
	ie := newIdentityEnv(t, 100)
	a, b := ie.signIn(t, maria), ie.signIn(t, juan)
	for _, p := range []pair{a, b} {
		if r := ie.do("PUT", "/v1/me/profile", fullProfile, jsonHdr(p.Access)...); r.status != 200 {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
	}
	// The operator adds k2 first: new writes use it; old rows still open.
	// The keys of newIdentityEnv.
	old, _ := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": bytes.Repeat([]byte{3}, pii.KeyLen)}})
	index, _ := pii.NewBlindIndex(bytes.Repeat([]byte{2}, pii.MinIndexKeyLen))
	k2, err := pii.NewKeyring(pii.KeyringConfig{Primary: "k2", Keys: map[string][]byte{
		"k2": bytes.Repeat([]byte{9}, pii.KeyLen), "k1": bytes.Repeat([]byte{3}, pii.KeyLen)}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rot, err := privacy.NewRotation(ie.store, k2, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	rot.Batch, rot.Pause = 1, 0 // a batch per row: the cursor is exercised
	prog, err := rot.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Two phones and two profiles, all under k1 before.
	if prog.Rewritten != 4 || prog.Failed != 0 || prog.Scanned != 4 {
		t.Fatalf("progress %+v", prog)
	}
	if got := counterValue(t, reg, "spa_pii_rotation_rows_total", "client_profiles", "rewritten"); got != 2 {
		t.Fatalf("rewritten profiles metric %v", got)
	}
	err = ie.store.InTx(context.Background(), func(tx persistence.Tx) error {
		ctx := context.Background()
		for _, p := range []pair{a, b} {
			u, err := tx.UserGet(ctx, p.User)
			if err != nil {
				return err
			}
			if id, _ := pii.KeyID(u.PhoneCipher); id != "k2" {
				t.Errorf("phone under %q", id)
			}
			row, err := tx.ProfileGet(ctx, p.User)
			if err != nil {
				return err
			}
			for field, ct := range row.Ciphers() {
				if id, _ := pii.KeyID(*ct); id != "k2" {
					t.Errorf("%s under %q", field, id)
				}
			}
			// Still opens, with the same contexts, to the same values.
			pc := privacy.Codec{Keys: k2, Index: index}
			prof, _, err := pc.Load(ctx, tx, p.User)
			if err != nil || prof.Notes != "Alérgica al látex" || prof.DocumentNumber != "1.020.304.050" {
				t.Errorf("after rotation: %+v, %v", prof, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The old keyring alone no longer opens them: the data really moved.
	err = ie.store.InTx(context.Background(), func(tx persistence.Tx) error {
		_, _, err := privacy.Codec{Keys: old, Index: index}.Load(context.Background(), tx, a.User)
		return err
	})
	if err == nil {
		t.Fatal("k1 alone still opens rotated data")
	}
	// A second pass finds nothing to do.
	if prog, err := rot.RunOnce(context.Background()); err != nil || prog.Rewritten != 0 {
		t.Fatalf("second pass %+v, %v", prog, err)
	}
	// Start and Stop are safe in any order and twice.
	rot.Stop()
	rot.Start(context.Background())
	rot.Stop()
	rot.Stop()
}

// counterValue reads the counter name{table, outcome} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, table, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["table"] == table && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{table=%q,outcome=%q}", name, table, outcome)
	return 0
}

// TestClientProfileOfNoOneIsNotFound: a staff member asking for the
// profile of an id that names no user gets 404, not an empty profile that
// suggests a client exists; a user who has not filled in a profile yet
// still answers an empty one. On each driver.
func TestClientProfileOfNoOneIsNotFound(t *testing.T) {
	for name, storeFor := range mfaDrivers(t) {
		t.Run(name, func(t *testing.T) {
			me := newMFAEnvOn(t, storeFor(t), bookingNow, false)
			client := me.pair(t, me.firstFactor(t, maria))
			for _, role := range []auth.Role{auth.RoleAdmin, auth.RoleReceptionist, auth.RoleStaff} {
				tok := jsonHdr(me.token("desk-"+string(role), role))
				if r := me.do("GET", "/v1/clients/01JNOSUCHUSER0000000000000/profile", "", tok...); r.status != 404 || r.errCode(t) != "not_found" {
					t.Errorf("%s, unknown id: %d %s", role, r.status, r.body)
				}
				if r := me.do("GET", "/v1/clients/"+client.User+"/profile", "", tok...); r.status != 200 || r.json(t)["user_id"] != client.User {
					t.Errorf("%s, a user without a profile: %d %s", role, r.status, r.body)
				}
			}
			// A client asking for someone else still learns nothing: 403.
			if r := me.do("GET", "/v1/clients/01JNOSUCHUSER0000000000000/profile", "", jsonHdr(client.Access)...); r.status != 403 {
				t.Errorf("client, unknown id: %d %s", r.status, r.body)
			}
		})
	}
}
