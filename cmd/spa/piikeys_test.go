package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/testwait"
)

func TestParsePIIKeys(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	primary, keys, err := parsePIIKeys("k2:" + k2 + ", k1:" + k1)
	if err != nil || primary != "k2" || len(keys) != 2 || keys["k1"][0] != 1 || keys["k2"][0] != 2 {
		t.Fatalf("parse: %q %v %v", primary, keys, err)
	}
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for _, bad := range []string{"", "k1", ":" + k1, "k1:" + short, "k1:not base64!", "k1:" + k1 + ",k1:" + k1} {
		_, _, err := parsePIIKeys(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), short) {
			t.Errorf("the error echoes key material: %v", err)
		}
	}
}

// TestPIIKeyRotationEndToEnd: data sealed under the derived key is
// re-encrypted in the background after a restart with SPA_PII_KEYS naming
// a new primary, and still reads back the same; on each driver.
func TestPIIKeyRotationEndToEnd(t *testing.T) {
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir, env := t.TempDir(), envFor(t)
			base, stop, logs := serveInProcess(t, env, dataDir)
			a := api{t, base}
			access, _ := signIn(t, a, logs, "+573204445566")
			a.must(200, "PUT", "/v1/me/profile", access, map[string]any{"name": "Rotación Prueba", "email": "rot@example.test", "version": 0})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if ids := cipherKeyIDs(t, env, dataDir); len(ids) == 0 || !onlyKey(ids, derivedPIIKeyID) {
				t.Fatalf("before rotation: %v", ids)
			}

			env2 := map[string]string{piiKeysEnv: "k2:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}
			for k, v := range env {
				env2[k] = v
			}
			base, _, _ = serveInProcess(t, env2, dataDir)
			a = api{t, base}
			testwait.For(t, 20*time.Second, "the rotation pass", func() bool {
				_, body := metricsOf(t, base)
				return strings.Contains(body, "spa_pii_rotation_running 0") &&
					strings.Contains(body, `spa_pii_rotation_rows_total{outcome="rewritten",table="client_profiles"} 1`)
			})
			if ids := cipherKeyIDs(t, env, dataDir); !onlyKey(ids, "k2") {
				t.Fatalf("after rotation: %v", ids)
			}
			if p := a.must(200, "GET", "/v1/me/profile", access, nil); p["name"] != "Rotación Prueba" || p["phone"] != "+573204445566" {
				t.Fatalf("profile after rotation: %v", p)
			}
		})
	}
}

func onlyKey(ids []string, want string) bool {
	for _, id := range ids {
		if id != want {
			return false
		}
	}
	return len(ids) > 0
}

// cipherKeyIDs returns the key id of every phone and profile ciphertext.
func cipherKeyIDs(t *testing.T, env map[string]string, dataDir string) []string {
	t.Helper()
	const q = `SELECT phone_cipher FROM users UNION ALL SELECT name_cipher FROM client_profiles
		UNION ALL SELECT email_cipher FROM client_profiles`
	var blobs [][]byte
	ctx := context.Background()
	if u := env["DATABASE_URL"]; u != "" {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, _ := conn.Query(ctx, q)
		if blobs, err = pgx.CollectRows(rows, pgx.RowTo[[]byte]); err != nil {
			t.Fatal(err)
		}
	} else {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, sqliteFile)+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			blobs = append(blobs, b)
		}
	}
	var ids []string
	for _, b := range blobs {
		id, err := pii.KeyID(b)
		if err != nil {
			t.Fatalf("not a ciphertext: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}
