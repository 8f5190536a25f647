package loadgen

import (
	"fmt"
	"strings"
)

// ScenarioNotifications names the notifications fan-out result, written
// by cmd/spa's BenchmarkNotificationFanOut (make bench), not by a
// loadgen run.
const ScenarioNotifications = "notifications"

// Notifications summarises a fan-out: Events confirmations published at
// once, each turned into one message by the node's notification consumer.
type Notifications struct {
	Events     int     `json:"events"`
	PerSec     float64 `json:"messages_per_second"`
	P50Ms      float64 `json:"p50_ms"` // from the event's publication to the provider call
	P99Ms      float64 `json:"p99_ms"`
	Duplicates int     `json:"duplicates"` // messages the provider got more than once
	Driver     string  `json:"driver"`     // the store the consumer recorded them in
}

func writeNotifications(b *strings.Builder, rs []*Result) {
	var n *Notifications
	for _, r := range rs {
		if r.Scenario == ScenarioNotifications && r.Notifications != nil {
			n = r.Notifications
		}
	}
	if n == nil {
		return
	}
	b.WriteString("\n## Notifications fan-out\n\n")
	fmt.Fprintf(b, "`go test -bench NotificationFanOut ./cmd/spa` (`-benchtime %dx`): %d appointment confirmations published to the event stream at once, each turned into a WhatsApp message by the node's notification consumer (recorded in %s) and handed to a provider that answers at once; latency is from an event's publication to its provider call.\n\n",
		n.Events, n.Events, n.Driver)
	b.WriteString("| events | messages/s | p50 | p99 | duplicates |\n|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(b, "| %d | %s | %s | %s | %d |\n", n.Events, num(n.PerSec, ""), num(n.P50Ms, "ms"), num(n.P99Ms, "ms"), n.Duplicates)
}
