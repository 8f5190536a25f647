package natsserver_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/spa-engine/spa/cluster/natsserver"
	"github.com/spa-engine/spa/cluster/natsserver/natstest"
)

func TestStartReadyStop(t *testing.T) {
	s := natstest.Run(t)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	url := s.ClientURL()
	if url == "" || strings.HasSuffix(url, ":4222") || strings.HasSuffix(url, ":-1") || strings.HasSuffix(url, ":0") {
		t.Fatalf("ClientURL = %q, want a random port", url)
	}

	// A TCP client and the in-process connection see each other.
	tcp, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("tcp connect: %v", err)
	}
	defer tcp.Close()
	sub, err := tcp.SubscribeSync("ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := tcp.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().Publish("ping", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("message over in-process connection not delivered: %v", err)
	}

	js, err := s.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Fatalf("JetStream not usable: %v", err)
	}

	extra, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s.Stop() // idempotent
	if err := s.Ready(); err == nil {
		t.Fatal("Ready after Stop = nil, want error")
	}
	if !s.Conn().IsClosed() || !extra.IsClosed() {
		t.Fatal("client connections not closed by Stop")
	}
	if _, err := s.Connect(); err == nil {
		t.Fatal("Connect after Stop succeeded")
	}
}

func TestInProcessOnly(t *testing.T) {
	s, err := natsserver.Start(context.Background(), natsserver.Config{Port: 0, StoreDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if u := s.ClientURL(); u != "" {
		t.Fatalf("ClientURL = %q, want empty", u)
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	hp := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	start := time.Now()
	_, err = natsserver.Start(context.Background(), natsserver.Config{
		Host: "127.0.0.1", Port: port, StoreDir: t.TempDir(),
	}, nil)
	if err == nil {
		t.Fatal("Start on a used port succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), hp) {
		t.Fatalf("error %q does not name %s", err, hp)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("port-in-use reported after %s, want fast failure", d)
	}
}

func TestStoreDirRequired(t *testing.T) {
	if _, err := natsserver.Start(context.Background(), natsserver.Config{Port: -1}, nil); err == nil {
		t.Fatal("Start without StoreDir succeeded")
	}
}

// TestSecretIsRequiredOfClients: with a secret, a TCP client without the
// token is refused, one with it and the in-process connection get in.
func TestSecretIsRequiredOfClients(t *testing.T) {
	s, err := natsserver.Start(context.Background(), natsserver.Config{Port: -1, StoreDir: t.TempDir(), Secret: "s3cret-for-test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	if nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without the secret connected")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Token("s3cret-for-test"))
	if err != nil {
		t.Fatalf("a client with the secret: %v", err)
	}
	nc.Close()
	if err := s.Conn().Publish("ping", []byte("x")); err != nil || s.Conn().Flush() != nil {
		t.Fatalf("in-process connection: %v", err)
	}
}
