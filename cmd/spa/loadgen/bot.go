package loadgen

import (
	"fmt"
	"strings"
)

// ScenarioBot names the WhatsApp bot's load result, written by cmd/spa's
// BenchmarkBotConversations (make bench), not by a loadgen run.
const ScenarioBot = "bot"

// Bot summarises the bot's load run: Conversations phones writing at once
// through the signed webhook, the model a fake answering after ModelMs.
type Bot struct {
	Conversations int `json:"conversations"`
	// Messages posted (Conversations × messages each), and answered: the
	// messages that got exactly their own answer.
	Messages int `json:"messages"`
	Answered int `json:"answered"`
	// Duplicates are answers beyond the first to one message; OutOfOrder
	// the answers that came before the answer to an earlier message of
	// the same phone; Missing the messages never answered.
	Duplicates int `json:"duplicates"`
	OutOfOrder int `json:"out_of_order"`
	Missing    int `json:"missing"`
	// AckP50Ms and AckP99Ms: the webhook's answer time, as the provider
	// sees it.
	AckP50Ms float64 `json:"ack_p50_ms"`
	AckP99Ms float64 `json:"ack_p99_ms"`
	ModelMs  float64 `json:"model_ms"` // the fake model's delay per request
	// DrainSeconds is from the first webhook to the last answer;
	// AnswersPerSec the answers over that time.
	DrainSeconds  float64 `json:"drain_seconds"`
	AnswersPerSec float64 `json:"answers_per_second"`
	// HeapPerConversation is the Go heap held per idle conversation: the
	// heap after GC once every message was answered, less the heap before
	// the run, over Conversations.
	HeapPerConversation float64 `json:"heap_bytes_per_conversation"`
	Driver              string  `json:"driver"`
}

func writeBot(b *strings.Builder, rs []*Result) {
	var n *Bot
	for _, r := range rs {
		if r.Scenario == ScenarioBot && r.Bot != nil {
			n = r.Bot
		}
	}
	if n == nil {
		return
	}
	b.WriteString("\n## WhatsApp bot\n\n")
	fmt.Fprintf(b, "`go test -bench BotConversations ./cmd/spa` (`-benchtime %dx`): %d conversations (phones) write at once to one node through the signed WhatsApp webhook, %d messages in all, each phone's messages sent without waiting for the answers; the model is a fake Gemini answering every request after %s; conversations stored in %s. Ack is the webhook's answer time; an answer is counted once per message, in order per phone; memory is the Go heap held per idle conversation after GC.\n\n",
		n.Conversations, n.Conversations, n.Messages, num(n.ModelMs, "ms"), n.Driver)
	b.WriteString("| conversations | messages | ack p50 | ack p99 | answered | duplicates | out of order | missing | drained in | answers/s | heap per idle conversation |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(b, "| %d | %d | %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", n.Conversations, n.Messages, num(n.AckP50Ms, "ms"),
		num(n.AckP99Ms, "ms"), n.Answered, n.Duplicates, n.OutOfOrder, n.Missing, num(n.DrainSeconds, "s"), num(n.AnswersPerSec, ""),
		num(n.HeapPerConversation/1024, "KiB"))
}
