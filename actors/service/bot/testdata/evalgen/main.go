// Command evalgen writes the bot's evaluation set (../eval.jsonl):
// ordinary booking messages and injection attempts, Colombian Spanish and
// English, labelled. Run from actors/service/bot:
//
//	go run ./testdata/evalgen > testdata/eval.jsonl
//
// Messages are built from hand-written parts (openers, requests, attack
// techniques, payloads) combined at random with a fixed seed, so the file
// is reproducible; a candidate too close to one already taken (word
// overlap) is dropped, so the set holds no near-duplicates.
//
// The split: every message carries the group it was built from (the attack
// technique, or the request template); a hash of the group puts about 30%
// of the groups in "heldout". A held-out attack technique is therefore
// never seen, in any wording, by whoever tunes the screen on "tune".
package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"

	"github.com/spa-engine/spa/actors/service/bot"
)

type entry struct {
	Text   string `json:"text"`
	Label  string `json:"label"` // attack | benign
	Lang   string `json:"lang"`  // es | en | mix
	Family string `json:"family"`
	Group  string `json:"group"`
	Split  string `json:"split"` // tune | heldout
}

var rng = rand.New(rand.NewPCG(18, 9))

func pick(xs []string) string { return xs[rng.IntN(len(xs))] }

func split(group string) string {
	h := fnv.New32a()
	h.Write([]byte(group))
	if h.Sum32()%100 < 30 {
		return "heldout"
	}
	return "tune"
}

// set collects entries and refuses near-duplicates.
type set struct {
	all   []entry
	words []map[string]bool
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}]+`)

// fold is the comparison form: the screen's Normalize (NFKC, no
// invisible characters, look-alike letters read as Latin, lower case, no
// accents), so a disguised copy of a message is its near-duplicate.
func fold(s string) string { return bot.Normalize(s) }

func wordsOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range wordRe.FindAllString(fold(s), -1) {
		m[w] = true
	}
	return m
}

// Jaccard is the word overlap of two messages.
func Jaccard(a, b map[string]bool) float64 {
	in := 0
	for w := range a {
		if b[w] {
			in++
		}
	}
	u := len(a) + len(b) - in
	if u == 0 {
		return 1
	}
	return float64(in) / float64(u)
}

// maxOverlap is the word overlap above which two messages are one.
const maxOverlap = 0.6

func (s *set) add(e entry) bool {
	e.Text = strings.Join(strings.Fields(e.Text), " ")
	if e.Family == "delimiter" || e.Family == "encoded" {
		e.Text = strings.TrimSpace(e.Text)
	}
	w := wordsOf(e.Text)
	for i, o := range s.words {
		if s.all[i].Text == e.Text || Jaccard(w, o) > maxOverlap {
			return false
		}
	}
	e.Split = split(e.Group)
	s.all = append(s.all, e)
	s.words = append(s.words, w)
	return true
}

// fill adds up to n entries from gen, giving up after many refusals.
func (s *set) fill(n int, gen func() entry) {
	got := 0
	for tries := 0; got < n && tries < n*60; tries++ {
		if s.add(gen()) {
			got++
		}
	}
}

func main() {
	s := &set{}
	benign(s)
	attacks(s)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, e := range s.all {
		if err := enc.Encode(e); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// casual makes a message look typed on a phone: no accents, lower case,
// WhatsApp abbreviations, sometimes a doubled letter.
func casual(s string) string {
	switch rng.IntN(4) {
	case 0:
		s = fold(s)
	case 1:
		s = strings.ToLower(fold(s))
		s = strings.NewReplacer(" que ", " q ", "por favor", "xfa", "porque", "xq", "también", "tmb", "tambien", "tmb", " para ", " pa ").Replace(" " + s + " ")
	case 2:
		s = strings.ToLower(s)
	}
	return strings.TrimSpace(s)
}
