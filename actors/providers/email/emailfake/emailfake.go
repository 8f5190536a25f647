// Package emailfake is a local SMTP sink for tests: it speaks enough of
// SMTP (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for net/smtp
// to submit a message, keeps every message it accepted, and can be told
// to refuse recipients with a given reply.
package emailfake

import (
	"bufio"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
)

// Message is one message the sink accepted.
type Message struct {
	From string
	To   []string
	Auth string // the AUTH PLAIN credentials given, base64 as sent ("" for none)
	Data string // headers and body, dot-unstuffed, CRLF line ends
}

// Parsed is Data as a mail message.
func (m Message) Parsed() (*mail.Message, error) { return mail.ReadMessage(strings.NewReader(m.Data)) }

// Server is a running sink on 127.0.0.1.
type Server struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	messages []Message
	rcptErr  string // a reply to every RCPT, e.g. "550 5.1.1 no such user"; "": accepted
	conns    map[net.Conn]bool
}

// Start runs a sink until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Host and Port are where the sink listens.
func (s *Server) Host() string { return "127.0.0.1" }

func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// RefuseRecipients makes every RCPT answer reply (a full SMTP reply such
// as "550 5.1.1 mailbox unavailable" or "451 4.3.0 try later"); "" accepts
// again.
func (s *Server) RefuseRecipients(reply string) {
	s.mu.Lock()
	s.rcptErr = reply
	s.mu.Unlock()
}

// Messages are the accepted messages, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Close stops the sink and waits for its sessions.
func (s *Server) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}

func (s *Server) session(c net.Conn) {
	r := bufio.NewReader(c)
	reply := func(lines ...string) bool {
		_, err := c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
		return err == nil
	}
	if !reply("220 emailfake ESMTP") {
		return
	}
	var cur Message
	var auth string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			reply("250-emailfake", "250-8BITMIME", "250 AUTH PLAIN")
		case "AUTH":
			mech, cred, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") || cred == "" {
				reply("504 5.5.4 only AUTH PLAIN with initial response")
				continue
			}
			auth = cred
			reply("235 2.7.0 authenticated")
		case "MAIL":
			cur = Message{From: address(arg), Auth: auth}
			reply("250 2.1.0 ok")
		case "RCPT":
			s.mu.Lock()
			refuse := s.rcptErr
			s.mu.Unlock()
			if refuse != "" {
				reply(refuse)
				continue
			}
			cur.To = append(cur.To, address(arg))
			reply("250 2.1.5 ok")
		case "DATA":
			if len(cur.To) == 0 {
				reply("554 5.5.1 no valid recipients")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.Data = b.String()
			s.mu.Lock()
			s.messages = append(s.messages, cur)
			s.mu.Unlock()
			cur = Message{}
			reply("250 2.0.0 queued")
		case "RSET":
			cur = Message{}
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 command not implemented")
		}
	}
}

// address is the mailbox of "FROM:<a@b> SIZE=…" or "TO:<a@b>".
func address(arg string) string {
	_, v, _ := strings.Cut(arg, ":")
	v, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	return strings.Trim(v, "<>")
}
