package partition

import "testing"

func TestTokensGrowAcrossEpochsAndBucketGenerations(t *testing.T) {
	const gen = 1_790_000_000 // a bucket created in 2026
	if Token(gen, 5) >= Token(gen, 6) {
		t.Fatal("a later epoch must give a larger token")
	}
	// A bucket recreated a second later restarts its revisions at 1.
	if Token(gen+1, 1) <= Token(gen, 1<<31) {
		t.Fatal("a newer bucket's first token must exceed the old bucket's")
	}
	// Database-issued single-node epochs are small counters.
	if Token(gen, 1) <= 1<<40 {
		t.Fatal("lease tokens must exceed single-node epochs")
	}
	if Token(gen, 1) < 0 {
		t.Fatal("overflow")
	}
}
