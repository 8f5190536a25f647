package email

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/spa-engine/spa/actors/providers/email/emailfake"
	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

func newClient(t *testing.T, sink *emailfake.Server) *Client {
	t.Helper()
	c, err := New(Config{Host: sink.Host(), Port: sink.Port(), TLS: TLSNone, Username: "spa", Password: "s3cret",
		From: "Spa Serena <citas@spa.example>", Policy: resilient.Policy{Attempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var msg = sender.Message{To: "María <maria@example.com>", Channel: sender.ChannelEmail, Purpose: "appointment_confirmed",
	Subject: "Tu cita está confirmada\r\nBcc: evil@example.com", Body: "Hola María,\n\nTu cita: <b>Masaje</b>.",
	HTML: "<p>Hola María,</p><p>Tu cita: &lt;b&gt;Masaje&lt;/b&gt;.</p>"}

// TestSendThroughTheSink: the message reaches the SMTP sink with AUTH,
// the sender and recipient, a decoded UTF-8 subject that could not add a
// header, and a plain-text and an HTML part.
func TestSendThroughTheSink(t *testing.T) {
	sink := emailfake.Start(t)
	if err := newClient(t, sink).Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	got := sink.Messages()
	if len(got) != 1 || got[0].From != "citas@spa.example" || len(got[0].To) != 1 || got[0].To[0] != "maria@example.com" {
		t.Fatalf("%+v", got)
	}
	if cred, _ := base64.StdEncoding.DecodeString(got[0].Auth); string(cred) != "\x00spa\x00s3cret" {
		t.Errorf("AUTH PLAIN %q", cred)
	}
	m, err := got[0].Parsed()
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil || subject != "Tu cita está confirmada Bcc: evil@example.com" || m.Header.Get("Bcc") != "" {
		t.Errorf("subject %q (%v), Bcc %q: the subject must stay one header", subject, err, m.Header.Get("Bcc"))
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q", m.Header.Get("Content-Type"))
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts[strings.Split(p.Header.Get("Content-Type"), ";")[0]] = string(b)
	}
	if parts["text/plain"] != "Hola María,\r\n\r\nTu cita: <b>Masaje</b>." || parts["text/html"] != msg.HTML {
		t.Errorf("parts %q", parts)
	}
}

// TestRefusalsAndOutages: a 5xx for the recipient is a refusal (not
// retried); a 4xx is an outage (retried, then unavailable); a bad
// address is refused before any connection.
func TestRefusalsAndOutages(t *testing.T) {
	sink := emailfake.Start(t)
	c := newClient(t, sink)
	sink.RefuseRecipients("550 5.1.1 mailbox unavailable")
	if err := c.Send(t.Context(), msg); !errors.Is(err, sender.ErrRejected) || !strings.Contains(err.Error(), "550") {
		t.Errorf("550: %v; want rejected", err)
	}
	sink.RefuseRecipients("451 4.3.0 try again later")
	if err := c.Send(t.Context(), msg); !errors.Is(err, sender.ErrUnavailable) {
		t.Errorf("451: %v; want unavailable", err)
	}
	bad := msg
	bad.To = "not an address"
	if err := c.Send(t.Context(), bad); !errors.Is(err, sender.ErrRejected) {
		t.Errorf("bad address: %v; want rejected", err)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("%d messages accepted; want none", n)
	}
	gone := emailfake.Start(t)
	down := newClient(t, gone)
	gone.Close()
	if err := down.Send(t.Context(), msg); !errors.Is(err, sender.ErrUnavailable) {
		t.Errorf("server down: %v; want unavailable", err)
	}
}

// TestStartTLSRequired: with the default TLS mode a server that does not
// offer STARTTLS gets no credentials and no message.
func TestStartTLSRequired(t *testing.T) {
	sink := emailfake.Start(t)
	c, err := New(Config{Host: sink.Host(), Port: sink.Port(), Username: "spa", Password: "s3cret", From: "citas@spa.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), msg); !errors.Is(err, sender.ErrUnavailable) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("%v; want unavailable naming STARTTLS", err)
	}
	if len(sink.Messages()) != 0 {
		t.Fatal("a message was sent without TLS")
	}
}

func TestFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if _, ok, err := FromEnv(env(nil)); ok || err != nil {
		t.Errorf("no variables: ok %v, %v; want not configured", ok, err)
	}
	cfg, ok, err := FromEnv(env(map[string]string{EnvHost: "smtp.example.com", EnvFrom: "Spa <citas@spa.example>",
		EnvUsername: "u", EnvPassword: "s3cret", EnvPort: "2525"}))
	if !ok || err != nil || cfg.Port != 2525 || cfg.withDefaults().TLS != TLSStartTLS {
		t.Errorf("%+v %v %v", cfg, ok, err)
	}
	if strings.Contains(fmtValue(cfg), "s3cret") {
		t.Error("the password is logged")
	}
	for name, kv := range map[string]map[string]string{
		EnvFrom:     {EnvHost: "smtp.example.com"},
		EnvHost:     {EnvFrom: "citas@spa.example"},
		EnvPort:     {EnvHost: "h", EnvFrom: "citas@spa.example", EnvPort: "smtp"},
		EnvTLS:      {EnvHost: "h", EnvFrom: "citas@spa.example", EnvTLS: "ssl3"},
		EnvPassword: {EnvHost: "h", EnvFrom: "citas@spa.example", EnvUsername: "u"},
		"address":   {EnvHost: "h", EnvFrom: "not an address"},
	} {
		if _, _, err := FromEnv(env(kv)); err == nil || (name != "address" && !strings.Contains(err.Error(), name)) {
			t.Errorf("%s: %v; want an error naming it", name, err)
		}
	}
}

func fmtValue(c Config) string { return c.LogValue().String() }
