package loadgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPUUse is the CPU the server and the database spent during a run, read
// from /proc before and after it (Linux; the generator's own CPU is not
// counted). Per success is what one confirmed booking cost them.
type CPUUse struct {
	ServerSeconds   float64 `json:"server_seconds"`
	DatabaseSeconds float64 `json:"database_seconds"` // every local postgres process, exited backends included
	// PerSuccessMs is (server + database) per successful claim (0: none
	// succeeded).
	PerSuccessMs float64 `json:"per_success_ms"`
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux this runs on (it is fixed by the kernel's ABI, not HZ).
const clockTicks = 100

// cpuSnapshot is the CPU seconds used so far by the server and by the
// database's processes.
type cpuSnapshot struct{ server, database float64 }

// snapshotCPU reads the servers' (pids: one per node) and PostgreSQL's
// CPU time.
func snapshotCPU(pids []int) (cpuSnapshot, error) {
	var s cpuSnapshot
	for _, pid := range pids {
		t, _, err := procCPU(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return s, fmt.Errorf("server pid %d: %w", pid, err)
		}
		s.server += t
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		// A backend that exits mid-run leaves its time in the postmaster's
		// reaped-children counters, so each process counts its own time and
		// its children's.
		if t, comm, err := procCPU(f); err == nil && comm == "postgres" {
			s.database += t
		}
	}
	return s, nil
}

// procCPU reads a /proc/<pid>/stat: utime + stime + cutime + cstime in
// seconds, and the command name.
func procCPU(path string) (float64, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", err
	}
	// The command name is in parentheses and may hold spaces: fields are
	// counted after its closing one.
	open, closing := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
	if open < 0 || closing < open {
		return 0, "", fmt.Errorf("%s: unreadable", path)
	}
	fields := strings.Fields(string(b[closing+1:]))
	// fields[0] is field 3 (state); utime..cstime are fields 14..17.
	if len(fields) < 15 {
		return 0, "", fmt.Errorf("%s: short", path)
	}
	var ticks float64
	for _, f := range fields[11:15] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", path, err)
		}
		ticks += v
	}
	return ticks / clockTicks, string(b[open+1 : closing]), nil
}

// use is what was spent between s and end, per success.
func (s cpuSnapshot) use(end cpuSnapshot, successes int64) *CPUUse {
	u := &CPUUse{ServerSeconds: end.server - s.server, DatabaseSeconds: end.database - s.database}
	if successes > 0 {
		u.PerSuccessMs = 1000 * (u.ServerSeconds + u.DatabaseSeconds) / float64(successes)
	}
	return u
}

// writeCPU is the CPU one confirmed booking cost in spread (issue 20's
// goal: ≤ 0.4 ms for the actors, server and PostgreSQL together).
func writeCPU(b *strings.Builder, rs []*Result) {
	b.WriteString("\n### CPU per confirmed booking\n\n")
	b.WriteString("Server and PostgreSQL CPU time during each `spread` run (from /proc: the server process, and every local `postgres` process with its exited children), over the run's confirmed bookings. The generator's own CPU is not counted.\n\n")
	b.WriteString("| run | claims | server | PostgreSQL | per confirmed booking |\n|---|---|---:|---:|---:|\n")
	for _, label := range []string{EngineLabel, BaselineLabel} {
		for _, run := range keyedAndUnkeyed(ScenarioSpread) {
			r := find(rs, label, run.name)
			if r == nil || r.CPU == nil {
				fmt.Fprintf(b, "| %s spread | %s | — | — | not measured |\n", label, run.keys)
				continue
			}
			fmt.Fprintf(b, "| %s spread | %s | %.2f s | %.2f s | %s |\n", label, run.keys,
				r.CPU.ServerSeconds, r.CPU.DatabaseSeconds, num(r.CPU.PerSuccessMs, "ms"))
		}
	}
	if a := find(rs, EngineLabel, ScenarioSpread); a != nil && a.CPU != nil {
		fmt.Fprintf(b, "\nGoal (issue 20): the actors' keyed `spread` at most 0.4 ms per confirmed booking: %s (%s).\n",
			verdict(a.CPU.PerSuccessMs <= 0.4), num(a.CPU.PerSuccessMs, "ms"))
	}
}
