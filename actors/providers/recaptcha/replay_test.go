package recaptcha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spa-engine/spa/actors/providers/recaptcha/recaptchafake"
)

// singleUse is the model of reCAPTCHA tokens: per token, the state is
// whether it was used; a verification passes only on an unused token and is
// refused as a duplicate only on a used one.
var singleUse = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			k := op.Input.(string)
			if _, ok := by[k]; !ok {
				order = append(order, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return false },
	Step: func(state, _, output any) (bool, any) {
		used := state.(bool)
		if output.(bool) { // passed
			return !used, true
		}
		return used, true
	},
	DescribeOperation: func(in, out any) string { return fmt.Sprintf("verify(%s) → %v", in, out) },
}

// TestReplayedTokensAreLinearizable verifies a few tokens from many
// goroutines at once through the whole client (retry wrapper, breaker,
// HTTP) and checks with porcupine that the history is explained by each
// token passing once and every other use being refused after it.
func TestReplayedTokensAreLinearizable(t *testing.T) {
	fake, v := setup(t, Config{})
	const tokens, workers = 4, 8
	toks := make([]string, tokens)
	for i := range toks {
		toks[i] = fake.Issue(recaptchafake.Token{Action: "login", Score: 0.9})
	}
	var (
		mu  sync.Mutex
		ops []porcupine.Operation
		wg  sync.WaitGroup
	)
	t0 := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range toks {
				tok := toks[(i+w)%tokens]
				call := time.Since(t0).Nanoseconds()
				_, err := v.Verify(context.Background(), tok, "", "login")
				ret := time.Since(t0).Nanoseconds()
				if err != nil && !errors.Is(err, ErrInvalidToken) {
					t.Errorf("Verify: %v", err)
					return
				}
				mu.Lock()
				ops = append(ops, porcupine.Operation{ClientId: w, Input: tok, Output: err == nil, Call: call, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if res := porcupine.CheckOperations(singleUse, ops); !res {
		t.Fatalf("history of %d verifications is not linearizable", len(ops))
	}
	passed := 0
	for _, op := range ops {
		if op.Output.(bool) {
			passed++
		}
	}
	if passed != tokens {
		t.Fatalf("%d verifications passed, want exactly %d (one per token)", passed, tokens)
	}
}

// TestSingleUseModelCatchesReplay shows the model can fail: a refusal that
// finished before the only success began cannot be explained.
func TestSingleUseModelCatchesReplay(t *testing.T) {
	bad := []porcupine.Operation{
		{ClientId: 0, Input: "t", Output: false, Call: 0, Return: 10},
		{ClientId: 1, Input: "t", Output: true, Call: 20, Return: 30},
	}
	if porcupine.CheckOperations(singleUse, bad) {
		t.Fatal("accepted a duplicate refusal before the first use")
	}
	twice := []porcupine.Operation{
		{ClientId: 0, Input: "t", Output: true, Call: 0, Return: 10},
		{ClientId: 1, Input: "t", Output: true, Call: 5, Return: 30},
	}
	if porcupine.CheckOperations(singleUse, twice) {
		t.Fatal("accepted a token passing twice")
	}
}
