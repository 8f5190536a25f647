// Package email delivers the email channel of notifications over SMTP
// with the standard library's net/smtp (frozen, but complete for
// submitting a message) and mime/multipart for the message itself: a
// plain-text part and an HTML part (multipart/alternative). Calls go
// through the resilience wrapper like the other providers; emailfake is a
// local SMTP sink for the tests.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/actors/providers/resilient"
	"github.com/spa-engine/spa/actors/providers/sender"
)

// Client submits emails to one SMTP server. It is a sender.Sender for
// sender.ChannelEmail.
type Client struct {
	cfg    Config
	from   *mail.Address
	caller *resilient.Caller
}

// New returns a Client; m may be nil.
func New(cfg Config, m *resilient.Metrics) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	from, _ := mail.ParseAddress(cfg.From)
	return &Client{cfg: cfg, from: from, caller: resilient.New("smtp", cfg.Policy, m)}, nil
}

// LogValue keeps the password out of logs if a Client is ever logged.
func (c *Client) LogValue() slog.Value { return c.cfg.LogValue() }

// Send delivers m (ChannelEmail: To an address, Subject, Body the plain
// text, HTML the HTML part). Errors wrap sender.ErrRejected (bad address,
// the server refused the recipient or the message: 5xx) or
// sender.ErrUnavailable (network, timeouts, 4xx, refused credentials).
func (c *Client) Send(ctx context.Context, m sender.Message) error {
	if m.Channel != sender.ChannelEmail {
		return fmt.Errorf("%w: email: unsupported channel %q", sender.ErrRejected, m.Channel)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil || strings.ContainsAny(to.Address, "\r\n<>") {
		return fmt.Errorf("%w: email: the recipient is not an email address", sender.ErrRejected)
	}
	if strings.TrimSpace(m.Body) == "" {
		return fmt.Errorf("%w: email: empty body", sender.ErrRejected)
	}
	msg, err := c.compose(to, m)
	if err != nil {
		return fmt.Errorf("%w: email: %w", sender.ErrRejected, err)
	}
	err = c.caller.Do(ctx, func(ctx context.Context) error { return c.deliver(ctx, to.Address, msg) })
	var perm *permanent
	switch {
	case err == nil:
		return nil
	case errors.As(err, &perm):
		return fmt.Errorf("%w: %w", sender.ErrRejected, err)
	default:
		return fmt.Errorf("%w: %w", sender.ErrUnavailable, err)
	}
}

// permanent is a 5xx reply about the recipient or the message.
type permanent struct{ err error }

func (p *permanent) Error() string { return "email: refused: " + p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// classify maps an SMTP failure: 4xx and the network are transient; a 5xx
// about credentials (530, 534, 535) is a configuration problem, final and
// unavailable; another 5xx refuses this recipient or message.
func classify(err error) error {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		switch {
		case tp.Code >= 400 && tp.Code < 500:
			return resilient.Transient(err, 0)
		case tp.Code == 530 || tp.Code == 534 || tp.Code == 535:
			return fmt.Errorf("email: credentials refused: %w", err)
		default:
			return &permanent{err}
		}
	}
	return resilient.Transient(err, 0)
}

// deliver is one SMTP session, bounded by ctx and the configured timeout.
func (c *Client) deliver(ctx context.Context, to string, msg []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	addr := net.JoinHostPort(c.cfg.Host, strconv.Itoa(c.cfg.Port))
	var conn net.Conn
	if c.cfg.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{Config: &tls.Config{ServerName: c.cfg.Host, MinVersion: tls.VersionTLS12}}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return resilient.Transient(err, 0)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled context ends the session at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	cl, err := smtp.NewClient(conn, c.cfg.Host)
	if err != nil {
		_ = conn.Close()
		return classify(err)
	}
	defer cl.Close()
	if c.cfg.TLS == TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return errors.New("email: the server does not offer STARTTLS (set " + EnvTLS + "=tls or none)")
		}
		if err := cl.StartTLS(&tls.Config{ServerName: c.cfg.Host, MinVersion: tls.VersionTLS12}); err != nil {
			return classify(err)
		}
	}
	if c.cfg.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.cfg.Username, c.cfg.Password, c.cfg.Host)); err != nil {
			return classify(err)
		}
	}
	if err := cl.Mail(c.from.Address); err != nil {
		return classify(err)
	}
	if err := cl.Rcpt(to); err != nil {
		return classify(err)
	}
	w, err := cl.Data()
	if err != nil {
		return classify(err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify(err)
	}
	if err := w.Close(); err != nil {
		return classify(err)
	}
	_ = cl.Quit()
	return nil
}

// compose is the message: headers, then a multipart/alternative of the
// plain text and, when given, the HTML (both quoted-printable UTF-8).
// Header values come from parsed addresses and a Q-encoded subject, so
// nothing in them can start a header of its own.
func (c *Client) compose(to *mail.Address, m sender.Message) ([]byte, error) {
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := c.from.Address[strings.LastIndexByte(c.from.Address, '@')+1:]
	subject := strings.Join(strings.Fields(m.Subject), " ")
	header := [][2]string{
		{"From", c.from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", time.Now().UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
	}
	mw := multipart.NewWriter(&b)
	header = append(header, [2]string{"Content-Type", "multipart/alternative; boundary=" + mw.Boundary()})
	var head bytes.Buffer
	for _, h := range header {
		head.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	head.WriteString("\r\n")
	parts := []struct{ typ, body string }{{"text/plain; charset=utf-8", m.Body}}
	if m.HTML != "" {
		parts = append(parts, struct{ typ, body string }{"text/html; charset=utf-8", m.HTML})
	}
	for _, p := range parts {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {p.typ}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(p.body, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return append(head.Bytes(), b.Bytes()...), nil
}

var _ sender.Sender = (*Client)(nil)
