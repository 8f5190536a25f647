package loadgen

import (
	"strings"
	"testing"
)

// TestReportBot: the bot's result file becomes its own section; without
// one there is none.
func TestReportBot(t *testing.T) {
	if md := report(t, resultDir(t, benchRuns())); strings.Contains(md, "## WhatsApp bot") {
		t.Fatal("a bot section without a bot result")
	}
	n := &Result{Label: EngineLabel, Name: "bot", Scenario: ScenarioBot, Mode: "burst",
		Correct: Correctness{OK: true, Unchecked: "answers counted at the fake WhatsApp", Violations: []string{}},
		Bot: &Bot{Conversations: 1000, Messages: 3000, Answered: 3000, AckP50Ms: 4.2, AckP99Ms: 31, ModelMs: 300,
			DrainSeconds: 35.5, AnswersPerSec: 84.5, HeapPerConversation: 12288, Driver: "postgres"}}
	md := report(t, resultDir(t, append(benchRuns(), n)))
	wantLines(t, md,
		"## WhatsApp bot",
		"1000 conversations (phones) write at once",
		"after 300 ms; conversations stored in postgres",
		"| 1000 | 3000 | 4.20 ms | 31.0 ms | 3000 | 0 | 0 | 0 | 35.5 s | 84 | 12.0 KiB |",
		"All runs passed.",
	)
}
