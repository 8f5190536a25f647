// Package recaptchafake is an httptest server that speaks reCAPTCHA's
// siteverify wire format: it checks the secret, the form content type and
// the token, answers with Google's JSON (success, score, action,
// challenge_ts, hostname, error-codes), treats tokens as single use with a
// two-minute life, and can be told to fail (Faults).
package recaptchafake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
)

// tokenTTL is how long Google accepts a token.
const tokenTTL = 2 * time.Minute

// Token is what a browser's grecaptcha.execute would have produced.
type Token struct {
	Action   string
	Score    float64
	Hostname string
}

// Check is one siteverify request the fake answered.
type Check struct {
	Token, RemoteIP string
}

// Server is the fake siteverify endpoint; VerifyURL is its address.
type Server struct {
	*httptest.Server
	Secret string
	Faults fakefault.Injector

	mu       sync.Mutex
	now      func() time.Time
	requests int
	tokens   map[string]issued
	checks   []Check
}

type issued struct {
	Token
	at   time.Time
	used bool
}

// New starts a fake that accepts secret. Close it when done.
func New(secret string) *Server {
	s := &Server{Secret: secret, now: time.Now, tokens: map[string]issued{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.Faults.Close()
	s.Server.Close()
}

// VerifyURL replaces https://www.google.com/recaptcha/api/siteverify.
func (s *Server) VerifyURL() string { return s.URL + "/recaptcha/api/siteverify" }

// SetNow replaces the fake's clock (for token expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Issue returns a fresh token that verifies as t.
func (s *Server) Issue(t Token) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tok := "03AFcWeA" + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = issued{Token: t, at: s.now()}
	return tok
}

// Checks returns the requests answered (faults excluded), in order.
func (s *Server) Checks() []Check {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Check(nil), s.checks...)
}

// Requests counts every request that reached the fake, faults included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if s.Faults.Apply(w, r) {
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/recaptcha/api/siteverify" {
		http.NotFound(w, r)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		reply(w, map[string]any{"success": false, "error-codes": []string{"bad-request"}})
		return
	}
	if err := r.ParseForm(); err != nil {
		reply(w, map[string]any{"success": false, "error-codes": []string{"bad-request"}})
		return
	}
	secret, token := r.PostForm.Get("secret"), r.PostForm.Get("response")
	var codes []string
	switch {
	case secret == "":
		codes = append(codes, "missing-input-secret")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(s.Secret)) != 1:
		codes = append(codes, "invalid-input-secret")
	}
	if token == "" {
		codes = append(codes, "missing-input-response")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, Check{Token: token, RemoteIP: r.PostForm.Get("remoteip")})
	if len(codes) > 0 {
		reply(w, map[string]any{"success": false, "error-codes": codes})
		return
	}
	t, ok := s.tokens[token]
	switch {
	case !ok:
		reply(w, map[string]any{"success": false, "error-codes": []string{"invalid-input-response"}})
		return
	case t.used || s.now().Sub(t.at) > tokenTTL:
		reply(w, map[string]any{"success": false, "error-codes": []string{"timeout-or-duplicate"}})
		return
	}
	t.used = true
	s.tokens[token] = t
	reply(w, map[string]any{
		"success": true, "score": t.Score, "action": t.Action, "hostname": t.Hostname,
		"challenge_ts": t.at.UTC().Format(time.RFC3339),
	})
}

// reply writes siteverify's JSON; it always answers 200, errors included.
func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
