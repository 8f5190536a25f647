package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/spa-engine/spa/actors/testwait"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
	"github.com/spa-engine/spa/messages"
	"google.golang.org/protobuf/proto"
)

// buildBinary compiles the spa command once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spa")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a spa serve child process.
type process struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	exited chan error
}

func startProcess(t *testing.T, bin string, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "SPA_ADMIN_ADDR=127.0.0.1:0") // env may override
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout := &syncBuffer{}
	p := &process{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	testwait.For(t, 30*time.Second, "the server to listen", func() bool {
		select {
		case err := <-p.exited:
			t.Fatalf("server exited: %v\n%s", err, p.stderr.String())
		default:
		}
		p.base = listeningURL(stdout.String())
		return p.base != ""
	})
	return p
}

type studioPut struct {
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	Currency string `json:"currency"`
	Version  int64  `json:"version"`
}

type reply struct {
	status   int
	body     []byte
	replayed bool
}

func putStudio(client *http.Client, base, token, key string, body studioPut) (reply, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPut, base+"/v1/admin/studio", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{res.StatusCode, rb, res.Header.Get("Idempotent-Replayed") == "true"}, nil
}

// TestKillMidRequestLosesNothing kills the server with SIGKILL while studio
// updates stream in, restarts it on the same data, and shows that every
// update a client saw acknowledged kept its idempotency record (it replays),
// its audit entry and its outbox event (published exactly once per event id
// to JetStream after the restart), and that the request cut off mid-flight
// either committed whole or not at all.
func TestKillMidRequestLosesNothing(t *testing.T) {
	bin := buildBinary(t)
	for name, envFor := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			dataDir := t.TempDir()
			natsPort := natstest.FreePort(t)
			env := envFor(t)
			env["SPA_DATA_DIR"] = dataDir
			env["SPA_HTTP_ADDR"] = "127.0.0.1:0"
			env["SPA_NATS_PORT"] = strconv.Itoa(natsPort)
			env["SPA_IDEMPOTENCY_LOCK_TTL"] = "1s"

			p := startProcess(t, bin, env)
			token := issueToken(t, dataDir, "crash-test", "admin")
			client := &http.Client{Timeout: 10 * time.Second}

			type sent struct {
				key  string
				body studioPut
				rep  reply
			}
			var acked []sent
			var cut *sent // the request in flight when the server died
			sending := make(chan int, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer close(sending)
				version := int64(0)
				for i := 0; ; i++ {
					s := sent{key: fmt.Sprintf("crash-%d", i), body: studioPut{
						Name: fmt.Sprintf("Studio %d", i), TimeZone: "America/Bogota", Currency: "COP", Version: version}}
					select {
					case sending <- i:
					default:
					}
					rep, err := putStudio(client, p.base, token, s.key, s.body)
					if err != nil {
						cut = &s
						return
					}
					if rep.status != http.StatusOK {
						t.Errorf("PUT %s = %d %s", s.key, rep.status, rep.body)
						return
					}
					s.rep = rep
					acked = append(acked, s)
					version++
				}
			}()
			for i := range sending {
				if i >= 25 {
					break
				}
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-done
			<-p.exited
			if len(acked) < 25 {
				t.Fatalf("only %d updates acknowledged before the kill", len(acked))
			}
			if cut == nil {
				t.Fatal("no request was cut off by the kill")
			}

			p2 := startProcess(t, bin, env)
			for _, s := range acked {
				rep, err := putStudio(client, p2.base, token, s.key, s.body)
				if err != nil {
					t.Fatal(err)
				}
				if rep.status != s.rep.status || !bytes.Equal(rep.body, s.rep.body) || !rep.replayed {
					t.Fatalf("replay of %s after restart = %d replayed=%v %s, want %d %s", s.key, rep.status, rep.replayed, rep.body, s.rep.status, s.rep.body)
				}
			}
			// The cut request's key may still be locked by its dead attempt:
			// once the lock expires, a retry either replays its committed
			// response or runs it now. Either way it succeeds exactly once.
			var final reply
			testwait.For(t, 15*time.Second, "the cut-off key to be retryable", func() bool {
				rep, err := putStudio(client, p2.base, token, cut.key, cut.body)
				if err != nil {
					t.Fatal(err)
				}
				final = rep
				return rep.status != http.StatusConflict
			})
			if final.status != http.StatusOK {
				t.Fatalf("retry of the cut-off request = %d %s", final.status, final.body)
			}
			var studio struct {
				Version int64 `json:"version"`
			}
			if err := json.Unmarshal(final.body, &studio); err != nil {
				t.Fatal(err)
			}
			committed := int64(len(acked) + 1)
			if studio.Version != committed {
				t.Fatalf("studio version %d, want %d (acked %d plus the cut-off one)", studio.Version, committed, len(acked))
			}
			if n := countAudit(t, client, p2.base, token); n != int(committed) {
				t.Fatalf("audit entries for the studio = %d, want %d", n, committed)
			}
			checkStream(t, natsPort, committed)

			if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-p2.exited:
				if err != nil {
					t.Fatalf("graceful shutdown exit: %v\n%s", err, p2.stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("server did not stop on SIGTERM")
			}
		})
	}
}

// countAudit pages through the studio's audit log.
func countAudit(t *testing.T, client *http.Client, base, token string) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/admin/audit?subject=studio/default&limit=200&before="+cursor, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Entries []struct {
				Action string `json:"action"`
			} `json:"entries"`
			Next string `json:"next"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("audit page: %d %v", res.StatusCode, err)
		}
		for _, e := range page.Entries {
			if e.Action == "studio.update" {
				n++
			}
		}
		if page.Next == "" {
			return n
		}
		cursor = page.Next
	}
}

// checkStream waits until JetStream holds one StudioUpdated event for each
// version 1..want, and no more.
func checkStream(t *testing.T, natsPort int, want int64) {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stream jetstream.Stream
	testwait.For(t, 15*time.Second, fmt.Sprintf("%d events in the stream", want), func() bool {
		stream, err = js.Stream(ctx, "SPA_EVENTS")
		if err != nil {
			return false
		}
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(want)
	})
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]string{}
	ids := map[string]bool{}
	batch, err := cons.Fetch(int(want)+10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		var ev messages.Event
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			t.Fatalf("undecodable event: %v", err)
		}
		var su messages.StudioUpdated
		if err := ev.Payload.UnmarshalTo(&su); err != nil {
			t.Fatalf("event %s is not StudioUpdated: %v", ev.Id, err)
		}
		if ids[ev.Id] {
			t.Fatalf("event %s published twice", ev.Id)
		}
		ids[ev.Id] = true
		if prev, dup := seen[su.Version]; dup {
			t.Fatalf("version %d has two events (%s, %s)", su.Version, prev, ev.Id)
		}
		seen[su.Version] = ev.Id
	}
	for v := int64(1); v <= want; v++ {
		if _, ok := seen[v]; !ok {
			t.Fatalf("no event for studio version %d (have %d events)", v, len(seen))
		}
	}
	if int64(len(seen)) != want {
		t.Fatalf("%d events in the stream, want %d", len(seen), want)
	}
}
