package loadgen

import (
	"os"
	"path/filepath"
	"testing"
)

// TestProcCPU: the four time fields after the command name, whatever the
// name holds, in seconds (USER_HZ 100).
func TestProcCPU(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
	line := "4242 (post gres) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 100 25 20 0 1 0 100 0 0\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	secs, comm, err := procCPU(path)
	if err != nil || comm != "post gres) x" || secs != 4.25 {
		t.Fatalf("procCPU = %v s, %q, %v; want 4.25 s, %q", secs, comm, err, "post gres) x")
	}
	if err := os.WriteFile(path, []byte("4242 (spa) S 1 2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := procCPU(path); err == nil {
		t.Fatal("a short stat line was read")
	}
}

// TestSnapshotCPUOfThisProcess: the server's counter is this process's,
// it grows with work done, and a missing pid is an error.
func TestSnapshotCPUOfThisProcess(t *testing.T) {
	before, err := snapshotCPU([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 200_000_000 {
		x ^= i
	}
	after, err := snapshotCPU([]int{os.Getpid()})
	if err != nil || after.server <= before.server {
		t.Fatalf("server CPU %v -> %v (%d), %v: want it to grow", before.server, after.server, x, err)
	}
	if u := before.use(after, 4); u.PerSuccessMs != 1000*(u.ServerSeconds+u.DatabaseSeconds)/4 {
		t.Fatalf("use = %+v", u)
	}
	if _, err := snapshotCPU([]int{os.Getpid(), 1 << 30}); err == nil {
		t.Fatal("a missing server pid was measured")
	}
}

// TestReportCPU: the spread runs' CPU per confirmed booking, both engines,
// and the 0.4 ms goal judged on the actors' keyed run.
func TestReportCPU(t *testing.T) {
	rs := benchRuns()
	for _, r := range rs {
		if r.Scenario == ScenarioSpread && r.Label == EngineLabel && r.Name == "spread" {
			r.CPU = &CPUUse{ServerSeconds: 6, DatabaseSeconds: 3, PerSuccessMs: 0.5}
		}
	}
	md := report(t, resultDir(t, rs))
	wantLines(t, md,
		"| actors spread | keyed | 6.00 s | 3.00 s | 0.50 ms |",
		"| lock-baseline spread | keyed | — | — | not measured |",
		"Goal (issue 20): the actors' keyed `spread` at most 0.4 ms per confirmed booking: **not met** (0.50 ms).",
	)
}
