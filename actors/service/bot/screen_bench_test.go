package bot

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"
)

// BenchmarkScreen scores every message of the evaluation set once per
// iteration: the screen runs on every inbound message, before any turn.
func BenchmarkScreen(b *testing.B) {
	f, err := os.Open("testdata/eval.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var texts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct{ Text string }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			b.Fatal(err)
		}
		texts = append(texts, c.Text)
	}
	b.ResetTimer()
	for range b.N {
		for _, t := range texts {
			Screen(t)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(texts)), "ns/message")
}
