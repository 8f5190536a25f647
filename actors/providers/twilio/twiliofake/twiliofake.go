// Package twiliofake is an httptest server that speaks Twilio's Messages and
// Verify wire format (external-apis.md §2) strictly: HTTP Basic auth with the
// account SID and token, form-encoded bodies, the documented required fields
// and error JSON. It records what it was sent and can be told to fail
// (Faults) so client tests exercise retries, breakers and timeouts.
package twiliofake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
)

// Message is a message the fake accepted.
type Message struct {
	SID, To, From, Body, MessagingServiceSID string
	// ContentSID, ContentVariables and ValidityPeriod as posted (a
	// content template; its validity in seconds).
	ContentSID, ContentVariables, ValidityPeriod string
}

// Server is the fake. Use APIBaseURL and VerifyBaseURL as the client's
// base URLs.
type Server struct {
	*httptest.Server
	AccountSID, AuthToken, VerifyServiceSID string

	// Faults make the next requests fail (applied before auth, like an
	// outage in front of Twilio).
	Faults fakefault.Injector

	mu       sync.Mutex
	now      func() time.Time
	requests int
	messages []Message
	blocked  map[string]bool
	pending  map[string]*verification // by To
	sends    map[string][]time.Time   // Verify sends by To, for 60203
	seq      int
}

type verification struct {
	sid, to, channel, code string
	created                time.Time
	checks                 int
}

// Verify limits as documented: codes live 10 minutes, 5 sends per number
// per 10 minutes, 5 wrong checks.
const (
	codeTTL     = 10 * time.Minute
	maxSends    = 5
	maxChecks   = 5
	sendsWindow = 10 * time.Minute
)

// New starts a fake for one account. Close it when done.
func New(accountSID, authToken string) *Server {
	s := &Server{
		AccountSID: accountSID, AuthToken: authToken, VerifyServiceSID: "VA00000000000000000000000000000000",
		now:     time.Now,
		blocked: map[string]bool{},
		pending: map[string]*verification{},
		sends:   map[string][]time.Time{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.createMessage)
	mux.HandleFunc("POST /v2/Services/{service}/Verifications", s.startVerification)
	mux.HandleFunc("POST /v2/Services/{service}/VerificationCheck", s.checkVerification)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		if s.Faults.Apply(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return s
}

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	s.Faults.Close()
	s.Server.Close()
}

// APIBaseURL replaces https://api.twilio.com.
func (s *Server) APIBaseURL() string { return s.URL }

// VerifyBaseURL replaces https://verify.twilio.com/v2.
func (s *Server) VerifyBaseURL() string { return s.URL + "/v2" }

// SetNow replaces the fake's clock (for Verify expiry and send windows).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Block makes messages to number fail with 21610 (recipient unsubscribed).
func (s *Server) Block(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[number] = true
}

// Messages returns the accepted messages in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Requests counts every request that reached the fake, faults included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// PendingCode returns the Verify code waiting for to, as the phone would
// receive it.
func (s *Server) PendingCode(to string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.pending[to]
	if !ok || s.now().Sub(v.created) >= codeTTL {
		return "", false
	}
	return v.code, true
}

// writeError writes Twilio's error JSON.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authorize checks Basic auth (constant time) and the form content type,
// and parses the form. It writes the error reply when it returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.AccountSID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.AuthToken)) != 1 {
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		writeError(w, http.StatusBadRequest, 20001, "Content-Type must be application/x-www-form-urlencoded")
		return false
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "malformed form body")
		return false
	}
	return true
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if r.PathValue("sid") != s.AccountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	f := r.PostForm
	to, from, body, msid := f.Get("To"), f.Get("From"), f.Get("Body"), f.Get("MessagingServiceSid")
	switch {
	case to == "":
		writeError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case from == "" && msid == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case body == "" && f.Get("ContentSid") == "" && len(f["MediaUrl"]) == 0:
		writeError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	toNum, toWA := strings.CutPrefix(to, "whatsapp:")
	if !e164(toNum) {
		writeError(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number")
		return
	}
	if from != "" {
		fromNum, fromWA := strings.CutPrefix(from, "whatsapp:")
		if !e164(fromNum) {
			writeError(w, http.StatusBadRequest, 21212, "Invalid 'From' Phone Number")
			return
		}
		if toWA != fromWA {
			writeError(w, http.StatusBadRequest, 21910, "Invalid From and To pair. From and To should be of the same channel")
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blocked[toNum] {
		writeError(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
		return
	}
	s.seq++
	m := Message{SID: fmt.Sprintf("SM%032d", s.seq), To: to, From: from, Body: body, MessagingServiceSID: msid,
		ContentSID: f.Get("ContentSid"), ContentVariables: f.Get("ContentVariables"), ValidityPeriod: f.Get("ValidityPeriod")}
	s.messages = append(s.messages, m)
	status := "queued"
	if msid != "" {
		status = "accepted"
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": m.SID, "account_sid": s.AccountSID, "to": to, "from": nullable(from), "body": body,
		"status": status, "num_segments": "1", "num_media": "0", "direction": "outbound-api",
		"error_code": nil, "error_message": nil, "price": nil, "price_unit": "USD",
		"date_created": s.now().UTC().Format(time.RFC1123Z), "api_version": "2010-04-01",
		"uri":                   "/2010-04-01/Accounts/" + s.AccountSID + "/Messages/" + m.SID + ".json",
		"messaging_service_sid": nullable(msid),
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) startVerification(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if r.PathValue("service") != s.VerifyServiceSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	to, channel := r.PostForm.Get("To"), r.PostForm.Get("Channel")
	if !e164(to) {
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter `To`")
		return
	}
	switch channel {
	case "sms", "whatsapp", "call", "email":
	default:
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter: Channel")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	recent := s.sends[to][:0]
	for _, t := range s.sends[to] {
		if now.Sub(t) < sendsWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= maxSends {
		s.sends[to] = recent
		writeError(w, http.StatusTooManyRequests, 60203, "Max send attempts reached")
		return
	}
	s.sends[to] = append(recent, now)
	v, ok := s.pending[to]
	if !ok || now.Sub(v.created) >= codeTTL {
		s.seq++
		v = &verification{sid: fmt.Sprintf("VE%032d", s.seq), to: to, channel: channel, code: newCode(), created: now}
		s.pending[to] = v
	}
	s.messages = append(s.messages, Message{SID: v.sid, To: to, Body: "Your verification code is: " + v.code})
	writeJSON(w, http.StatusCreated, s.verificationJSON(v, "pending", false))
}

func (s *Server) checkVerification(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	if r.PathValue("service") != s.VerifyServiceSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	to, code := r.PostForm.Get("To"), r.PostForm.Get("Code")
	if to == "" || code == "" {
		writeError(w, http.StatusBadRequest, 60200, "Invalid parameter")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.pending[to]
	if !ok || s.now().Sub(v.created) >= codeTTL {
		delete(s.pending, to)
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	if subtle.ConstantTimeCompare([]byte(code), []byte(v.code)) == 1 {
		delete(s.pending, to)
		writeJSON(w, http.StatusOK, s.verificationJSON(v, "approved", true))
		return
	}
	v.checks++
	if v.checks > maxChecks {
		delete(s.pending, to)
		writeError(w, http.StatusTooManyRequests, 60202, "Max check attempts reached")
		return
	}
	writeJSON(w, http.StatusOK, s.verificationJSON(v, "pending", false))
}

func (s *Server) verificationJSON(v *verification, status string, valid bool) map[string]any {
	return map[string]any{
		"sid": v.sid, "service_sid": s.VerifyServiceSID, "account_sid": s.AccountSID,
		"to": v.to, "channel": v.channel, "status": status, "valid": valid,
		"date_created": v.created.UTC().Format(time.RFC3339),
		"url":          s.URL + "/v2/Services/" + s.VerifyServiceSID + "/Verifications/" + v.sid,
	}
}

// newCode draws 6 digits from crypto/rand.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%06d", n.Int64())
}

func e164(s string) bool {
	if len(s) < 9 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
