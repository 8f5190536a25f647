package pgtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequiredFailsWithoutDatabase runs a PostgreSQL-only test in a child
// process with TEST_DATABASE_URL unset: under CI it must fail, naming the
// fix; elsewhere it must skip.
func TestRequiredFailsWithoutDatabase(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		BaseURL(t)
		return
	}
	run := func(extra ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRequiredFailsWithoutDatabase$", "-test.v")
		env := []string{"PGTEST_CHILD=1"}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TEST_DATABASE_URL=") && !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "SPA_REQUIRE_POSTGRES=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, req := range []string{"CI=true", "SPA_REQUIRE_POSTGRES=1"} {
		out, err := run(req)
		if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "make test") {
			t.Errorf("%s without TEST_DATABASE_URL: want a failure naming the fix, got err=%v:\n%s", req, err, out)
		}
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "--- SKIP") {
		t.Errorf("without CI: want a skip, got err=%v:\n%s", err, out)
	}
}
