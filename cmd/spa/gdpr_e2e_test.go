package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spa-engine/spa/actors/testwait"
	_ "modernc.org/sqlite"
)

// piiValues are the distinctive personal values the GDPR test seeds; none
// may survive anonymisation anywhere in the database.
var piiValues = map[string]string{
	"phone":          "+573157778899",
	"name":           "Zoraida Quintero-Bellavista",
	"email":          "zoraida.qb@pii-example.test",
	"document":       "1098765432",
	"birth_date":     "1987-03-14",
	"notes":          "Alergia al aceite de almendras ZQB",
	"ship_recipient": "Zoraidita Bellavista",
	"ship_line1":     "Calle 123 # 45-67 Torre Zafiro",
	"ship_line2":     "Apartamento 901 Zafiro",
	"ship_notes":     "Timbre dañado, llamar a Zoraida",
	"cancel_reason":  "Zoraida se fue de viaje a Cartagena",
	"return_reason":  "Zoraida cambió de opinión",
}

// encodings returns the forms a value may take in a row: as written, case
// folded, JSON-escaped, URL-escaped, base64 and hex (how PostgreSQL
// renders bytea as text). A phone also without its '+' and as the
// national number.
func encodings(v string) []string {
	forms := []string{v, strings.ToLower(v), strings.ToUpper(v), url.QueryEscape(v), url.PathEscape(v),
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		hex.EncodeToString([]byte(v))}
	if j, err := json.Marshal(v); err == nil {
		forms = append(forms, strings.Trim(string(j), `"`))
	}
	if a, err := json.Marshal(map[string]string{"": v}); err == nil { // ASCII-only escaping of non-ASCII runes
		forms = append(forms, strings.TrimSuffix(strings.TrimPrefix(string(a), `{"":"`), `"}`))
	}
	if strings.HasPrefix(v, "+57") {
		forms = append(forms, v[1:], v[3:], hex.EncodeToString([]byte(v[3:])))
	}
	return forms
}

// dbHit is one PII value found in one table.
type dbHit struct{ table, field, form string }

// scanAllTables reads every column of every table of the test's database
// (SQLite file or PostgreSQL schema) and reports each PII value found.
func scanAllTables(t *testing.T, env map[string]string, dataDir string) []dbHit {
	t.Helper()
	return scanTables(t, env, dataDir, piiValues)
}

// scanTables is scanAllTables for the given values (field -> value).
func scanTables(t *testing.T, env map[string]string, dataDir string, values map[string]string) []dbHit {
	t.Helper()
	ctx := context.Background()
	rows := map[string][][]byte{} // table -> rows rendered as bytes
	if u := env["DATABASE_URL"]; u != "" {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		r, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
			WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
		if err != nil {
			t.Fatal(err)
		}
		tables, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil || len(tables) < 10 {
			t.Fatalf("tables %v, %v", tables, err)
		}
		for _, table := range tables {
			// A whole row cast to text: every column, bytea as hex.
			r, err := conn.Query(ctx, fmt.Sprintf(`SELECT CAST(t AS TEXT) FROM %s AS t`, pgx.Identifier{table}.Sanitize()))
			if err != nil {
				t.Fatal(err)
			}
			texts, err := pgx.CollectRows(r, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range texts {
				rows[table] = append(rows[table], []byte(s))
			}
		}
	} else {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqliteFile)+"?_pragma=busy_timeout(5000)&mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var tables []string
		r, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'`)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var name string
			if err := r.Scan(&name); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, name)
		}
		r.Close()
		if len(tables) < 10 {
			t.Fatalf("tables %v", tables)
		}
		for _, table := range tables {
			r, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := r.Columns()
			for r.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := r.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				var row bytes.Buffer
				for _, v := range vals {
					switch v := v.(type) {
					case []byte:
						row.Write(v)
						row.WriteString("|" + hex.EncodeToString(v))
					case string:
						row.WriteString(v)
					default:
						fmt.Fprint(&row, v)
					}
					row.WriteByte('|')
				}
				rows[table] = append(rows[table], row.Bytes())
			}
			r.Close()
		}
	}
	var hits []dbHit
	for table, list := range rows {
		for _, row := range list {
			for field, v := range values {
				for _, form := range encodings(v) {
					if bytes.Contains(row, []byte(form)) {
						hits = append(hits, dbHit{table, field, form})
						break
					}
				}
			}
		}
	}
	return hits
}

// TestAnonymiseLeavesNoPII is the privacy done-when, on each driver: a
// client signs in, fills a profile, books and cancels an appointment,
// joins a waitlist, orders with a shipping address and returns a line;
// an admin anonymises the client; then no PII value is left in any column
// of any table, the client's sessions are dead, and the appointment and
// order remain under the pseudonymous id.
func TestAnonymiseLeavesNoPII(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir, env := t.TempDir(), envFor(t)
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			phone := piiValues["phone"]
			client, _ := signIn(t, a, logs, phone)
			me := a.must(200, "GET", "/v1/me/profile", client, nil)
			uid := me["user_id"].(string)
			if me["phone"] != phone || me["version"] != float64(0) {
				t.Fatalf("new profile %v", me)
			}

			// The profile, with an Idempotency-Key so its PII-laden answer is stored.
			prof := a.must(200, "PUT", "/v1/me/profile", client, map[string]any{"name": piiValues["name"], "email": piiValues["email"],
				"document_type": "CC", "document_number": piiValues["document"], "birth_date": piiValues["birth_date"],
				"clinical_notes": piiValues["notes"], "version": 0}, "Idempotency-Key", "profile-1")
			if prof["clinical_notes"] != piiValues["notes"] || prof["version"] != float64(1) {
				t.Fatalf("profile %v", prof)
			}
			masked := a.must(200, "GET", "/v1/clients/"+uid+"/profile", desk, nil)
			if _, ok := masked["clinical_notes"]; ok || masked["email"] == piiValues["email"] || masked["document_number"] != "******5432" ||
				masked["phone"] == phone || masked["masked"] != true || masked["name"] != piiValues["name"] {
				t.Fatalf("the receptionist's view %v", masked)
			}
			found := a.must(200, "POST", "/v1/clients/lookup", desk, map[string]any{"document_number": piiValues["document"]})["clients"].([]any)
			if len(found) != 1 || found[0].(map[string]any)["user_id"] != uid {
				t.Fatalf("lookup by document: %v", found)
			}
			found = a.must(200, "POST", "/v1/clients/lookup", admin, map[string]any{"phone": "315 777 8899"})["clients"].([]any)
			if len(found) != 1 || found[0].(map[string]any)["email"] != piiValues["email"] {
				t.Fatalf("lookup by phone: %v", found)
			}

			// An appointment, cancelled with a reason that names her, and a waitlist entry.
			week := everyDay("08:00", "18:00")
			a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
				"time_zone": "America/Bogota", "weekly_hours": week, "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/services/massage-60", admin, map[string]any{"name": "Masaje", "category": "body",
				"duration_minutes": 60, "price_minor": 12000000, "required_skills": []string{"massage"}, "active": true, "version": 0})
			bogota, _ := time.LoadLocation("America/Bogota")
			day := time.Now().In(bogota).AddDate(0, 0, 3)
			start := time.Date(day.Year(), day.Month(), day.Day(), 10, 0, 0, 0, bogota)
			held := a.must(201, "POST", "/v1/appointments", client, map[string]any{"service_id": "massage-60", "staff_id": "ana",
				"start": start.Format(time.RFC3339)}, "Idempotency-Key", "book-1")
			apptID := held["id"].(string)
			a.must(200, "POST", "/v1/appointments/"+apptID+"/cancel", client, map[string]any{"reason": piiValues["cancel_reason"]},
				"Idempotency-Key", "cancel-1")
			a.must(201, "POST", "/v1/waitlist", client, map[string]any{"service_id": "massage-60",
				"from": start.Format(time.RFC3339), "to": start.Add(4 * time.Hour).Format(time.RFC3339)}, "Idempotency-Key", "wait-1")

			// An order shipped to her address, and a return with her words.
			a.must(200, "PUT", "/v1/admin/shop/categories/oils", admin, map[string]any{"name": "Oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/products/lavender", admin, map[string]any{"name": "Lavender oil", "description": "Calming",
				"category_id": "oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/variants/lavender-50", admin, map[string]any{"product_id": "lavender", "sku": "LAV-50",
				"price_minor": 5000000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true, "version": 0})
			a.must(201, "POST", "/v1/admin/shop/variants/lavender-50/stock-movements", admin,
				map[string]any{"kind": "receipt", "qty": 4, "reason": "first delivery"}, "Idempotency-Key", "receipt-1")
			cart := a.must(201, "POST", "/v1/carts", client, nil)["id"].(string)
			a.must(200, "PUT", "/v1/carts/"+cart+"/lines/lavender-50", client, map[string]any{"qty": 2})
			order := a.must(201, "POST", "/v1/carts/"+cart+"/checkout", client, map[string]any{"fulfilment": "shipping",
				"shipping_address": map[string]any{"recipient": piiValues["ship_recipient"], "phone": phone, "line1": piiValues["ship_line1"],
					"line2": piiValues["ship_line2"], "department_code": "11", "municipality_code": "11001", "notes": piiValues["ship_notes"]}},
				"Idempotency-Key", "checkout-1")
			orderID := order["id"].(string)
			a.must(200, "POST", "/v1/shop/orders/"+orderID+"/pay", desk, nil, "Idempotency-Key", "pay-1")
			lineID := order["lines"].([]any)[0].(map[string]any)["id"].(string)
			a.must(201, "POST", "/v1/me/orders/"+orderID+"/returns", client, map[string]any{"reason": piiValues["return_reason"],
				"lines": []map[string]any{{"order_line_id": lineID, "qty": 1}}}, "Idempotency-Key", "return-1")

			// The export has it all, decrypted.
			exp := a.must(200, "GET", "/v1/me/export", client, nil)
			expJSON, _ := json.Marshal(exp)
			for _, f := range []string{"name", "email", "document", "notes", "ship_line1"} {
				if !strings.Contains(string(expJSON), piiValues[f]) {
					t.Errorf("the export lacks the %s", f)
				}
			}
			if len(exp["appointments"].([]any)) == 0 || len(exp["orders"].([]any)) != 1 {
				t.Fatalf("export records: %v", exp)
			}
			// Before anonymisation nothing is in the clear either: the
			// address and the reasons are sealed under her data key, the
			// answers stored for Idempotency-Key replays under the PII keys
			// (yet the profile's answer replays). The scanner does find what
			// is in the clear: her pseudonymous id.
			for _, h := range scanAllTables(t, env, dataDir) {
				t.Errorf("before anonymisation table %s holds the %s in the clear (as %q)", h.table, h.field, h.form)
			}
			if len(scanTables(t, env, dataDir, map[string]string{"user id": uid})) == 0 {
				t.Fatal("the scan does not find the user id, which is stored in the clear")
			}
			code, again := a.call("PUT", "/v1/me/profile", client, map[string]any{"name": piiValues["name"], "email": piiValues["email"],
				"document_type": "CC", "document_number": piiValues["document"], "birth_date": piiValues["birth_date"],
				"clinical_notes": piiValues["notes"], "version": 0}, "Idempotency-Key", "profile-1")
			if code != 200 || again["email"] != piiValues["email"] || again["version"] != float64(1) {
				t.Fatalf("the sealed profile answer replayed as %d %v", code, again)
			}
			if strings.Contains(logs.String(), piiValues["email"]) || strings.Contains(logs.String(), piiValues["document"]) {
				t.Error("PII in the server log")
			}

			// Published events are scrubbed; wait for the relay to publish them.
			testwait.For(t, 15*time.Second, "the outbox to drain", func() bool { return pendingOutbox(t, env, dataDir) == 0 })
			a.must(422, "POST", "/v1/admin/users/"+uid+"/anonymise", admin, map[string]any{"reason": "GDPR request"}, "Idempotency-Key", "anon-0")
			out := a.must(200, "POST", "/v1/admin/users/"+uid+"/anonymise", admin, map[string]any{"confirm": true, "reason": "GDPR request"},
				"Idempotency-Key", "anon-1")
			if out["revoked_sessions"] != float64(1) {
				t.Fatalf("anonymise: %v", out)
			}

			for _, h := range scanAllTables(t, env, dataDir) {
				t.Errorf("after anonymisation table %s still holds the %s (as %q)", h.table, h.field, h.form)
			}
			// Her tokens are dead; her records remain under the pseudonymous id.
			testwait.For(t, 10*time.Second, "the revoked access token to be refused", func() bool {
				code, _ := a.call("GET", "/v1/me/profile", client, nil)
				return code == 401
			})
			exp = a.must(200, "GET", "/v1/admin/users/"+uid+"/export", admin, nil)
			if p := exp["profile"].(map[string]any); p["anonymised"] != true || p["name"] != "" || p["phone"] != "" {
				t.Fatalf("profile after anonymisation: %v", p)
			}
			kept := false
			for _, ap := range exp["appointments"].([]any) {
				kept = kept || ap.(map[string]any)["ID"] == apptID
			}
			if !kept || len(exp["orders"].([]any)) != 1 || len(exp["returns"].([]any)) != 1 {
				t.Fatalf("records after anonymisation: %v", exp)
			}
		})
	}
}

// pendingOutbox counts unpublished outbox events.
func pendingOutbox(t *testing.T, env map[string]string, dataDir string) int {
	t.Helper()
	ctx := context.Background()
	const q = `SELECT COUNT(*) FROM outbox WHERE published_at IS NULL`
	var n int
	if u := env["DATABASE_URL"]; u != "" {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqliteFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
