package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// secret32 is 32 random bytes (production refuses patterned secrets).
const secret32 = "hBJGL5rcvVN1xlYbyW+E64G8IAzYAtI3vr9WWZd+KXg="

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig("serve", nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != modeDev || c.HTTPAddr != "127.0.0.1:8080" || c.DatabaseURL != "" || c.NATSPort != 4250 ||
		c.BodyLimit != 1<<20 || c.IdempotencyTTL != 24*time.Hour || c.TokenSecret != nil {
		t.Fatalf("unexpected defaults: %+v", c)
	}
}

func TestParseConfigPrecedence(t *testing.T) {
	c, err := parseConfig("serve", []string{"--http-addr", "127.0.0.1:0"},
		env(map[string]string{"SPA_HTTP_ADDR": "127.0.0.1:9000", "SPA_BODY_LIMIT": "2048", "DATABASE_URL": "postgresql://u@h/db"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:0" {
		t.Errorf("flag should win over env: %q", c.HTTPAddr)
	}
	if c.BodyLimit != 2048 || c.DatabaseURL != "postgresql://u@h/db" {
		t.Errorf("env not applied: %+v", c)
	}
}

func TestParseConfigErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad mode", nil, map[string]string{"SPA_MODE": "prod"}, "SPA_MODE:"},
		{"bad addr env", nil, map[string]string{"SPA_HTTP_ADDR": "8080"}, "SPA_HTTP_ADDR:"},
		{"bad addr flag", []string{"--http-addr", "x"}, nil, "--http-addr:"},
		{"mysql url", nil, map[string]string{"DATABASE_URL": "mysql://root@localhost/db"}, "DATABASE_URL: unsupported scheme"},
		{"nats port", nil, map[string]string{"SPA_NATS_PORT": "70000"}, "SPA_NATS_PORT:"},
		{"duration", nil, map[string]string{"SPA_IDEMPOTENCY_TTL": "forever"}, "SPA_IDEMPOTENCY_TTL:"},
		{"body limit", nil, map[string]string{"SPA_BODY_LIMIT": "-1"}, "SPA_BODY_LIMIT:"},
		{"cors", nil, map[string]string{"SPA_CORS_ORIGINS": "example.com"}, "SPA_CORS_ORIGINS:"},
		{"log level", nil, map[string]string{"SPA_LOG_LEVEL": "loud"}, "SPA_LOG_LEVEL:"},
		{"short secret", nil, map[string]string{"SPA_TOKEN_SECRET": base64.StdEncoding.EncodeToString([]byte("short"))}, "SPA_TOKEN_SECRET: decodes to 5 bytes"},
		{"secret not base64", nil, map[string]string{"SPA_TOKEN_SECRET": "%%%"}, "SPA_TOKEN_SECRET: must be base64"},
		{"production without secret", nil, map[string]string{"SPA_MODE": "production"}, "SPA_TOKEN_SECRET: required in production mode"},
		{"stray argument", []string{"extra"}, nil, "unexpected argument"},
		{"test hook in production", nil, map[string]string{"SPA_MODE": "production", "SPA_TOKEN_SECRET": secret32, "SPA_TEST_SPLIT_BRAIN": "1"}, "SPA_TEST_SPLIT_BRAIN: a test hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig("serve", tc.args, env(tc.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseConfigNeverEchoesSecrets(t *testing.T) {
	const pw = "s3cr3t-pass"
	for _, e := range []map[string]string{
		{"DATABASE_URL": "mysql://u:" + pw + "@h/db"},
		{"SPA_TOKEN_SECRET": pw + "%%"},
	} {
		if _, err := parseConfig("serve", nil, env(e), io.Discard); err == nil || strings.Contains(err.Error(), pw) {
			t.Fatalf("error %v leaks the secret", err)
		}
	}
}

func TestProductionWithSecret(t *testing.T) {
	c, err := parseConfig("serve", nil, env(map[string]string{"SPA_MODE": "production", "SPA_TOKEN_SECRET": secret32}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TokenSecret) != 32 {
		t.Fatalf("secret not decoded: %d bytes", len(c.TokenSecret))
	}
	if err := loadSecrets(&c); err != nil {
		t.Fatal(err)
	}
}

func TestDevSecretsPersist(t *testing.T) {
	dir := t.TempDir()
	c := config{Mode: modeDev, DataDir: dir}
	if err := loadSecrets(&c); err != nil {
		t.Fatal(err)
	}
	first := c.TokenSecret
	st, err := os.Stat(filepath.Join(dir, devSecretsFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("dev secrets file mode %v, want 0600", st.Mode().Perm())
	}
	c2 := config{Mode: modeDev, DataDir: dir}
	if err := loadSecrets(&c2); err != nil {
		t.Fatal(err)
	}
	if len(first) < 32 || string(first) != string(c2.TokenSecret) {
		t.Fatal("dev secret not reused across restarts")
	}
}

// FuzzParseConfig: any environment either yields a config whose values all
// pass validation again, or an error naming a setting; never a panic.
func FuzzParseConfig(f *testing.F) {
	f.Add("dev", ":8080", "", "4250", "24h", "https://a.example", "1048576")
	f.Add("production", "127.0.0.1:0", "postgres://x@y/z", "-1", "1m", "*", "1024")
	f.Add("", "[::1]:99999", "postgres://%zz", "x", "0", ",,", "")
	f.Fuzz(func(t *testing.T, mode, addr, dbURL, natsPort, ttl, cors, body string) {
		e := map[string]string{"SPA_MODE": mode, "SPA_HTTP_ADDR": addr, "DATABASE_URL": dbURL,
			"SPA_NATS_PORT": natsPort, "SPA_IDEMPOTENCY_TTL": ttl, "SPA_CORS_ORIGINS": cors, "SPA_BODY_LIMIT": body,
			"SPA_TOKEN_SECRET": secret32}
		c, err := parseConfig("serve", nil, env(e), io.Discard)
		if err != nil {
			if !strings.Contains(err.Error(), ":") {
				t.Fatalf("error does not name its source: %v", err)
			}
			return
		}
		if c.Mode != modeDev && c.Mode != modeProduction {
			t.Fatalf("invalid mode accepted: %q", c.Mode)
		}
		if _, err := hostPort(c.HTTPAddr); err != nil {
			t.Fatalf("invalid addr accepted: %q", c.HTTPAddr)
		}
		if c.BodyLimit < 1024 || c.IdempotencyTTL < time.Minute || c.NATSPort < -1 || c.NATSPort > 65535 {
			t.Fatalf("out-of-range value accepted: %+v", c)
		}
		if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres") {
			t.Fatalf("non-postgres URL accepted: %q", c.DatabaseURL)
		}
	})
}

// TestRangeErrorsSuggestAcceptedValues: every setting refused for being out
// of range suggests an example ("such as X or Y"), and each example is
// accepted by the same setting.
func TestRangeErrorsSuggestAcceptedValues(t *testing.T) {
	suggested := 0
	for _, s := range settings {
		for _, bad := range []string{"-99999999", "99999999999h", "nonsense"} {
			_, err := parseConfig("serve", []string{"--" + s.flag, bad}, env(nil), io.Discard)
			if err == nil {
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, "must be a duration in") && !strings.Contains(msg, "must be an integer in") {
				continue
			}
			i := strings.Index(msg, " such as ")
			if i < 0 {
				t.Errorf("%s=%s: a range error without an example: %s", s.flag, bad, msg)
				continue
			}
			examples := strings.Split(strings.SplitN(msg[i+len(" such as "):], ",", 2)[0], " or ")
			for _, ex := range examples {
				suggested++
				if _, err := parseConfig("serve", []string{"--" + s.flag, ex}, env(nil), io.Discard); err != nil {
					t.Errorf("%s: the suggested example %q is refused: %v", s.flag, ex, err)
				}
			}
		}
	}
	if suggested < 20 {
		t.Fatalf("only %d examples checked: the range settings were not exercised", suggested)
	}
}

// TestServeHelpGoesToStdout: spa serve -h prints every flag, with its
// kind, to stdout and succeeds; a bad flag is an error on stderr.
func TestServeHelpGoesToStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"serve", "-h"}, env(nil), &stdout, &stderr); err != nil {
		t.Fatalf("serve -h: %v", err)
	}
	for _, want := range []string{"-admin-addr string", "-hold-ttl duration", "-body-limit int", "SPA_ADMIN_ADDR"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	stdout.Reset()
	if err := run(t.Context(), []string{"serve", "--no-such-flag"}, env(nil), &stdout, &stderr); err == nil || stdout.Len() != 0 || !strings.Contains(stderr.String(), "no-such-flag") {
		t.Fatalf("bad flag: err %v, stdout %q", err, stdout.String())
	}
}
