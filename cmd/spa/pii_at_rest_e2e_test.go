package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/testwait"
)

// journeyPII are the personal values of TestJourneyLeavesNoPIIInClear's
// client. The journey writes each of them into free text too — the
// cancellation reason names her, the return reason gives her email, the
// shipping address her name, number and notes — so the check reaches the
// columns and events that held free text in the clear.
var journeyPII = map[string]string{
	"name":  "Eulalia Benavides-Quimbaya",
	"email": "eulalia.bq@journey-example.test",
	"phone": "+573164441122",
	"notes": "Hipertensa, evitar piedras calientes EBQ",
}

// fileHit is one PII value found in a file under the data dir.
type fileHit struct{ file, field, form string }

// scanFiles reads every file under dir (the SQLite database with its -wal
// and -shm, the JetStream store) as raw bytes and reports each value of
// values found in any of its encodings.
func scanFiles(t *testing.T, dir string, values map[string]string) (hits []fileHit, scanned []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		scanned = append(scanned, rel)
		for field, v := range values {
			for _, form := range encodings(v) {
				if bytes.Contains(b, []byte(form)) {
					hits = append(hits, fileHit{rel, field, form})
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, scanned
}

// TestJourneyLeavesNoPIIInClear is issue 15's done-when for personal data
// at rest, on each driver: a client signs up, fills her profile (name,
// email, notes), books and cancels with a reason, orders with a shipping
// address, returns a line with a reason, most of it under
// Idempotency-Keys; then, before any anonymisation, neither the rows of
// any table (PostgreSQL rows cast to text; SQLite rows), nor the raw bytes
// of the SQLite file and its WAL, nor the JetStream store (the events
// published for the journey) hold her name, email, phone or notes in any
// usual encoding. The answers still read back in the clear through the API.
func TestJourneyLeavesNoPIIInClear(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir, env := t.TempDir(), envFor(t)
			base, _, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			admin := issueToken(t, dataDir, "owner", "admin")
			desk := issueToken(t, dataDir, "desk", "receptionist")
			v := journeyPII
			client, _ := signIn(t, a, logs, v["phone"])
			prof := a.must(200, "PUT", "/v1/me/profile", client, map[string]any{"name": v["name"], "email": v["email"],
				"document_type": "CC", "document_number": "52123987", "birth_date": "1979-11-02",
				"clinical_notes": v["notes"], "version": 0}, "Idempotency-Key", "j-profile")
			if prof["clinical_notes"] != v["notes"] {
				t.Fatalf("profile %v", prof)
			}

			week := everyDay("08:00", "18:00")
			a.must(200, "PUT", "/v1/admin/staff/ana", admin, map[string]any{"name": "Ana", "skills": []string{"massage"},
				"time_zone": "America/Bogota", "weekly_hours": week, "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/services/massage-60", admin, map[string]any{"name": "Masaje", "category": "body",
				"duration_minutes": 60, "price_minor": 12000000, "required_skills": []string{"massage"}, "active": true, "version": 0})
			bogota, _ := time.LoadLocation("America/Bogota")
			day := time.Now().In(bogota).AddDate(0, 0, 3)
			start := time.Date(day.Year(), day.Month(), day.Day(), 11, 0, 0, 0, bogota)
			held := a.must(201, "POST", "/v1/appointments", client, map[string]any{"service_id": "massage-60", "staff_id": "ana",
				"start": start.Format(time.RFC3339)}, "Idempotency-Key", "j-book")
			apptID := held["id"].(string)
			cancelReason := v["name"] + " viaja; llamar al " + v["phone"]
			a.must(200, "POST", "/v1/appointments/"+apptID+"/cancel", client, map[string]any{"reason": cancelReason},
				"Idempotency-Key", "j-cancel")

			a.must(200, "PUT", "/v1/admin/shop/categories/oils", admin, map[string]any{"name": "Oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/products/lavender", admin, map[string]any{"name": "Lavender oil", "description": "Calming",
				"category_id": "oils", "active": true, "version": 0})
			a.must(200, "PUT", "/v1/admin/shop/variants/lavender-50", admin, map[string]any{"product_id": "lavender", "sku": "LAV-50",
				"price_minor": 5000000, "tax_rate_bp": 1900, "low_stock_threshold": 1, "active": true, "version": 0})
			a.must(201, "POST", "/v1/admin/shop/variants/lavender-50/stock-movements", admin,
				map[string]any{"kind": "receipt", "qty": 4, "reason": "first delivery"}, "Idempotency-Key", "j-receipt")
			cart := a.must(201, "POST", "/v1/carts", client, nil)["id"].(string)
			a.must(200, "PUT", "/v1/carts/"+cart+"/lines/lavender-50", client, map[string]any{"qty": 2}, "Idempotency-Key", "j-line")
			order := a.must(201, "POST", "/v1/carts/"+cart+"/checkout", client, map[string]any{"fulfilment": "shipping",
				"shipping_address": map[string]any{"recipient": v["name"], "phone": v["phone"], "line1": "Carrera 7 # 71-21",
					"line2": "Oficina 502", "department_code": "11", "municipality_code": "11001", "notes": v["notes"]}},
				"Idempotency-Key", "j-checkout")
			orderID := order["id"].(string)
			a.must(200, "POST", "/v1/shop/orders/"+orderID+"/pay", desk, nil, "Idempotency-Key", "j-pay")
			lineID := order["lines"].([]any)[0].(map[string]any)["id"].(string)
			a.must(201, "POST", "/v1/me/orders/"+orderID+"/returns", client, map[string]any{"reason": "escribir a " + v["email"],
				"lines": []map[string]any{{"order_line_id": lineID, "qty": 1}}}, "Idempotency-Key", "j-return")

			// What is sealed still reads back in the clear, to whom may see it.
			exp := a.must(200, "GET", "/v1/me/export", client, nil)
			got := exp["orders"].([]any)[0].(map[string]any)
			if !strings.Contains(jsonOf(t, got), v["notes"]) || !strings.Contains(jsonOf(t, exp["returns"]), v["email"]) {
				t.Fatalf("the export lacks the sealed address or reason: %v", exp)
			}
			code, again := a.call("PUT", "/v1/me/profile", client, map[string]any{"name": v["name"], "email": v["email"],
				"document_type": "CC", "document_number": "52123987", "birth_date": "1979-11-02",
				"clinical_notes": v["notes"], "version": 0}, "Idempotency-Key", "j-profile")
			if code != 200 || again["email"] != v["email"] {
				t.Fatalf("the profile answer replayed as %d %v", code, again)
			}

			// Every event of the journey is in the stream before the scan.
			testwait.For(t, 15*time.Second, "the outbox to drain", func() bool { return pendingOutbox(t, env, dataDir) == 0 })

			for _, h := range scanTables(t, env, dataDir, v) {
				t.Errorf("table %s holds the %s in the clear (as %q)", h.table, h.field, h.form)
			}
			hits, files := scanFiles(t, dataDir, v)
			for _, h := range hits {
				t.Errorf("file %s holds the %s in the clear (as %q)", h.file, h.field, h.form)
			}
			// The scan read what it had to: the database (SQLite) and the
			// stream's message blocks, which hold the journey's events.
			var stream, db bool
			for _, f := range files {
				stream = stream || strings.HasSuffix(f, ".blk")
				db = db || f == sqliteFile+"-wal"
			}
			if !stream || (env["DATABASE_URL"] == "" && !db) {
				t.Fatalf("the scan missed the stream or the database: %v", files)
			}
			inStream, _ := scanFiles(t, filepath.Join(dataDir, "nats"), map[string]string{"appointment": apptID})
			if len(inStream) == 0 {
				t.Fatal("the journey's AppointmentChanged events are not in the stream files")
			}
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
