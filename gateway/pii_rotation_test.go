package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spa-engine/spa/actors/auth"
	"github.com/spa-engine/spa/actors/auth/pii"
	"github.com/spa-engine/spa/actors/service/privacy"
	"github.com/spa-engine/spa/persistence"
)

// A profile as a versioned register: put(name, version) succeeds when the
// version matches and bumps it; get returns the current (name, version).
// Key rotation must be invisible to it.
type regInput struct {
	put     bool
	name    string
	version int64 // put: the version the writer read
}

type regOutput struct {
	ok      bool // put: stored; get: answered
	name    string
	version int64
}

type regState struct {
	name    string
	version int64
}

var profileRegister = porcupine.Model{
	Init: func() any { return regState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(regState), input.(regInput), output.(regOutput)
		if !in.put {
			return out.ok && out.name == st.name && out.version == st.version, st
		}
		if in.version != st.version {
			return !out.ok, st
		}
		next := regState{name: in.name, version: st.version + 1}
		return out.ok && out.version == next.version, next
	},
	Equal: func(a, b any) bool { return a == b },
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v -> %+v", input, output)
	},
}

// TestPIIRotationUnderConcurrentEdits: two gateways share a store, one
// still sealing under k1 (a node at the first step of a rollout), one under
// k2, while
// rotation passes run; clients edit and read one profile throughout. The
// recorded history must be linearizable as a versioned register (no lost
// or phantom edit, no version bumped by re-encryption, every read opens)
// and a last pass leaves nothing under k1.
func TestPIIRotationUnderConcurrentEdits(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{3}, pii.KeyLen), bytes.Repeat([]byte{9}, pii.KeyLen)
	// The old node is at step one of a rollout: k2 loaded, k1 still primary.
	oldRing, _ := pii.NewKeyring(pii.KeyringConfig{Primary: "k1", Keys: map[string][]byte{"k1": k1, "k2": k2}})
	newRing, _ := pii.NewKeyring(pii.KeyringConfig{Primary: "k2", Keys: map[string][]byte{"k1": k1, "k2": k2}})
	index, _ := pii.NewBlindIndex(bytes.Repeat([]byte{2}, pii.MinIndexKeyLen))
	e := newEnv(t, func(d *Deps) { d.Identity = &Identity{Keyring: newRing, Index: index} })
	oldApp, err := New(Deps{Store: e.store, Tokens: e.tokens, Identity: &Identity{Keyring: oldRing, Index: index},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tok := e.token("client-rot", auth.RoleClient)
	call := func(old bool, method, body string) (int, map[string]any) {
		app := e.app
		if old {
			app = oldApp
		}
		res, err := app.Test(newRequest(method, "/v1/me/profile", body, jsonHdr(tok)), -1)
		if err != nil {
			return 0, nil
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}

	rot, err := privacy.NewRotation(e.store, newRing, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rot.Pause = 0
	var (
		mu  sync.Mutex
		ops []porcupine.Operation
		wg  sync.WaitGroup
	)
	record := func(client int, in regInput, out regOutput, callT, retT int64) {
		mu.Lock()
		ops = append(ops, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: callT, Return: retT})
		mu.Unlock()
	}
	start := time.Now()
	since := func() int64 { return int64(time.Since(start)) }
	const clients, rounds = 4, 12
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				old := (c+i)%2 == 0
				t0 := since()
				status, m := call(old, "GET", "")
				t1 := since()
				if status != 200 {
					t.Errorf("client %d get: %d %v", c, status, m)
					return
				}
				name, _ := m["name"].(string)
				version := int64(m["version"].(float64))
				record(c, regInput{}, regOutput{ok: true, name: name, version: version}, t0, t1)

				newName := fmt.Sprintf("c%d-r%d", c, i)
				body := fmt.Sprintf(`{"name":%q,"email":"c%d@example.com","clinical_notes":"round %d","version":%d}`, newName, c, i, version)
				t2 := since()
				status, m = call(!old, "PUT", body)
				t3 := since()
				switch status {
				case 200:
					record(c, regInput{put: true, name: newName, version: version},
						regOutput{ok: true, name: newName, version: int64(m["version"].(float64))}, t2, t3)
				case 409:
					record(c, regInput{put: true, name: newName, version: version}, regOutput{}, t2, t3)
				default:
					t.Errorf("client %d put: %d %v", c, status, m)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	passes := 0
	var rotator sync.WaitGroup
	rotator.Add(1)
	go func() {
		defer rotator.Done()
		for {
			// A breath between passes, as the node's loop leaves one: a
			// rotator re-taking SQLite's write lock back to back starves
			// the clients' writes on a loaded machine (the lock is not
			// fair), which would test the machine, not the rotation.
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if _, err := rot.RunOnce(context.Background()); err != nil {
				t.Errorf("rotation pass: %v", err)
				return
			}
			passes++
		}
	}()
	// Wait for the clients, then the rotator.
	wg.Wait()
	close(stop)
	rotator.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if passes == 0 {
		t.Fatal("no rotation pass ran during the edits")
	}
	if res := porcupine.CheckOperationsTimeout(profileRegister, ops, 10*time.Second); res != porcupine.Ok {
		t.Fatalf("the history of %d operations is not linearizable as a versioned register (%v)", len(ops), res)
	}
	// The old node stops writing; one more pass moves what it last wrote.
	if _, err := rot.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = e.store.InTx(context.Background(), func(tx persistence.Tx) error {
		row, err := tx.ProfileGet(context.Background(), "client-rot")
		if err != nil {
			return err
		}
		for field, ct := range row.Ciphers() {
			if id, _ := pii.KeyID(*ct); len(*ct) > 0 && id != "k2" {
				t.Errorf("%s still under %q", field, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
