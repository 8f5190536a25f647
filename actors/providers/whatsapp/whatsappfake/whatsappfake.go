// Package whatsappfake is an httptest server that speaks the WhatsApp Cloud
// API send endpoint (external-apis.md §1) strictly: Bearer token, JSON body,
// messaging_product, digits-only recipients, text or approved templates with
// matching parameter count and language. It keeps the 24-hour customer
// service window per wa_id: a free-form send outside it is accepted (200 with
// a wamid) and then fails with a signed "failed" status webhook, code 131047,
// as Meta does. Faults make it answer 429/500 or hang.
package whatsappfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
)

// Sent is a message the fake accepted.
type Sent struct {
	ID, To, Type, Text string
	// Template fields, for type "template".
	Template, Language string
	Params             []string
	// Buttons of an interactive reply-button message ("id=title"), whose
	// body is in Text.
	Buttons []string
}

// Status is a status update the fake emitted (and posted to the webhook).
type Status struct {
	ID, RecipientID, Status string
	ErrorCode               int
}

// Server is the fake Graph API for one phone number id.
type Server struct {
	*httptest.Server
	Token, PhoneNumberID string
	// Faults make the next requests fail (applied before auth).
	Faults fakefault.Injector

	mu         sync.Mutex
	now        func() time.Time
	requests   int
	sent       []Sent
	statuses   []Status
	inbound    map[string]time.Time // last inbound message per wa_id
	templates  map[string]int       // name/lang -> body parameter count
	webhook    string
	appSecret  string
	deliveries sync.WaitGroup
	seq        int
}

// New starts a fake. Close it when done.
func New(token, phoneNumberID string) *Server {
	s := &Server{Token: token, PhoneNumberID: phoneNumberID, now: time.Now,
		inbound: map[string]time.Time{}, templates: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{version}/{phone}/messages", s.send)
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

// Close releases hanging requests, waits for webhook deliveries and stops.
func (s *Server) Close() {
	s.Faults.Close()
	s.Server.Close()
	s.deliveries.Wait()
}

// SetNow replaces the fake's clock (for the 24-hour window).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetWebhook makes the fake POST status updates to url, signed with
// appSecret in X-Hub-Signature-256.
func (s *Server) SetWebhook(url, appSecret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook, s.appSecret = url, appSecret
}

// ApproveTemplate registers an approved template with its body parameter count.
func (s *Server) ApproveTemplate(name, language string, params int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.templates[name+"/"+language] = params
}

// Inbound records that waID (digits only) wrote to us at at, opening the
// 24-hour window.
func (s *Server) Inbound(waID string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inbound[waID] = at
}

// Sent returns accepted messages in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// ForgetSent drops the messages recorded so far (a load run measuring the
// heap of its process must not count the fake's record).
func (s *Server) ForgetSent() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = nil
}

// Statuses returns emitted status updates in order.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Status(nil), s.statuses...)
}

// Requests counts every request that reached the fake, faults included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// graphError writes the Graph error shape.
func graphError(w http.ResponseWriter, status, code int, typ, msg, details string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "code": code,
		"error_data": map[string]string{"messaging_product": "whatsapp", "details": details},
		"fbtrace_id": "AbCdEfGhIjK",
	}})
}

type request struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Text             *struct {
		PreviewURL bool   `json:"preview_url"`
		Body       string `json:"body"`
	} `json:"text"`
	Template *struct {
		Name     string `json:"name"`
		Language struct {
			Code string `json:"code"`
		} `json:"language"`
		Components []struct {
			Type       string `json:"type"`
			Parameters []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
	Interactive *struct {
		Type string `json:"type"`
		Body struct {
			Text string `json:"text"`
		} `json:"body"`
		Action struct {
			Buttons []struct {
				Type  string `json:"type"`
				Reply struct {
					ID    string `json:"id"`
					Title string `json:"title"`
				} `json:"reply"`
			} `json:"buttons"`
		} `json:"action"`
	} `json:"interactive"`
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.Token)) != 1 {
		graphError(w, http.StatusUnauthorized, 190, "OAuthException", "Invalid OAuth access token - Cannot parse access token", "")
		return
	}
	if r.PathValue("phone") != s.PhoneNumberID {
		graphError(w, http.StatusBadRequest, 100, "GraphMethodException", "Unsupported post request. Object does not exist", "")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		graphError(w, http.StatusBadRequest, 100, "OAuthException", "(#100) Invalid parameter", "Content-Type must be application/json")
		return
	}
	var req request
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		graphError(w, http.StatusBadRequest, 100, "OAuthException", "(#100) Invalid parameter", "malformed JSON: "+err.Error())
		return
	}
	if req.MessagingProduct != "whatsapp" {
		graphError(w, http.StatusBadRequest, 100, "OAuthException", "(#100) The parameter messaging_product is required.", "")
		return
	}
	if !digits(req.To) {
		graphError(w, http.StatusBadRequest, 131009, "OAuthException", "(#131009) Parameter value is not valid", "to must be digits only")
		return
	}
	sent := Sent{To: req.To, Type: req.Type}
	switch req.Type {
	case "text":
		if req.Text == nil || req.Text.Body == "" || len(req.Text.Body) > 4096 {
			graphError(w, http.StatusBadRequest, 100, "OAuthException", "(#100) Invalid parameter", "text.body is required (at most 4096 characters)")
			return
		}
		sent.Text = req.Text.Body
	case "template":
		t := req.Template
		if t == nil || t.Name == "" || t.Language.Code == "" {
			graphError(w, http.StatusBadRequest, 100, "OAuthException", "(#100) Invalid parameter", "template.name and template.language.code are required")
			return
		}
		for _, c := range t.Components {
			if c.Type == "body" {
				for _, p := range c.Parameters {
					sent.Params = append(sent.Params, p.Text)
				}
			}
		}
		sent.Template, sent.Language = t.Name, t.Language.Code
	case "interactive":
		in := req.Interactive
		if in == nil || in.Type != "button" || in.Body.Text == "" || len(in.Action.Buttons) == 0 || len(in.Action.Buttons) > 3 {
			graphError(w, http.StatusBadRequest, 131009, "OAuthException", "(#131009) Parameter value is not valid", "interactive button messages need a body and 1-3 buttons")
			return
		}
		for _, b := range in.Action.Buttons {
			if b.Type != "reply" || b.Reply.ID == "" || len(b.Reply.ID) > 256 || b.Reply.Title == "" || len([]rune(b.Reply.Title)) > 20 {
				graphError(w, http.StatusBadRequest, 131009, "OAuthException", "(#131009) Parameter value is not valid", "button title at most 20 characters, id at most 256")
				return
			}
			sent.Buttons = append(sent.Buttons, b.Reply.ID+"="+b.Reply.Title)
		}
		sent.Text = in.Body.Text
	default:
		graphError(w, http.StatusBadRequest, 100, "OAuthException", "(#100) Invalid parameter", "unsupported type")
		return
	}

	s.mu.Lock()
	if sent.Type == "template" {
		want, ok := s.templates[sent.Template+"/"+sent.Language]
		if !ok {
			s.mu.Unlock()
			graphError(w, http.StatusBadRequest, 132001, "OAuthException", "(#132001) Template name does not exist in the translation", "")
			return
		}
		if want != len(sent.Params) {
			s.mu.Unlock()
			graphError(w, http.StatusBadRequest, 132000, "OAuthException", "(#132000) Number of parameters does not match the expected number of params", "")
			return
		}
	}
	s.seq++
	sent.ID = fmt.Sprintf("wamid.FAKE%020d", s.seq)
	s.sent = append(s.sent, sent)
	now := s.now()
	last, opened := s.inbound[req.To]
	// Only templates may leave the window: Meta accepts the rest and
	// fails them afterwards.
	outside := sent.Type != "template" && (!opened || now.Sub(last) >= 24*time.Hour)
	var st Status
	if outside {
		st = Status{ID: sent.ID, RecipientID: req.To, Status: "failed", ErrorCode: 131047}
		s.statuses = append(s.statuses, st)
		if s.webhook != "" {
			s.deliveries.Add(1)
			go s.deliver(s.webhook, s.appSecret, st, now)
		}
	}
	s.mu.Unlock()

	reply := map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{{"input": req.To, "wa_id": req.To}},
		"messages":          []map[string]string{{"id": sent.ID}},
	}
	if sent.Type == "template" {
		reply["messages"] = []map[string]string{{"id": sent.ID, "message_status": "accepted"}}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// deliver posts a failed-status webhook, signed like Meta signs it.
func (s *Server) deliver(url, secret string, st Status, at time.Time) {
	defer s.deliveries.Done()
	body, _ := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry": []any{map[string]any{"id": "102290129340398", "changes": []any{map[string]any{
			"field": "messages",
			"value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]string{"display_phone_number": "15550783881", "phone_number_id": s.PhoneNumberID},
				"statuses": []any{map[string]any{
					"id": st.ID, "status": st.Status, "timestamp": strconv.FormatInt(at.Unix(), 10), "recipient_id": st.RecipientID,
					"errors": []any{map[string]any{
						"code": st.ErrorCode, "title": "Re-engagement message", "message": "Re-engagement message",
						"error_data": map[string]string{"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
					}},
				}},
			},
		}}}},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

func digits(s string) bool {
	return len(s) >= 8 && len(s) <= 15 && strings.Trim(s, "0123456789") == ""
}
