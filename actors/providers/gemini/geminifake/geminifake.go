// Package geminifake is an httptest server that speaks Gemini's
// generateContent (external-apis.md §4): x-goog-api-key, JSON bodies, the
// error shape with RetryInfo, function calls carrying a thoughtSignature
// that must come back unchanged (as Gemini 3 demands, 400 otherwise).
// Tests script its replies (text, function calls, blocks), add latency,
// inject faults (429 with retryDelay, 5xx, hangs) and read every request
// it received, raw, to assert what reached the model.
package geminifake

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/spa-engine/spa/actors/providers/gemini"
	"github.com/spa-engine/spa/actors/providers/internal/fakefault"
)

// Reply is what the fake answers to one request.
type Reply struct {
	Text  string
	Calls []gemini.FunctionCall
	// Block, if set, answers a blocked prompt (no candidates).
	Block string
	// FinishReason defaults to STOP.
	FinishReason string
}

// Logged is one request that passed authentication.
type Logged struct {
	Raw     []byte
	Request gemini.Request
}

// Server is the fake endpoint for one API key.
type Server struct {
	*httptest.Server
	Key string
	// Faults make the next requests fail (applied after the latency,
	// before authentication).
	Faults fakefault.Injector

	mu       sync.Mutex
	latency  time.Duration
	script   func(*gemini.Request) Reply
	queue    []Reply
	log      []Logged
	issued   map[string]bool // thought signatures handed out
	seq      int
	requests int
	done     chan struct{}
}

// Error bodies in Google's shape.
const (
	// RateLimited is a 429 asking for a one-second pause.
	RateLimited = `{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1s"}]}}`
	// Overloaded is a 503.
	Overloaded = `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`
)

// New starts a fake accepting key. Close it when done.
func New(key string) *Server {
	s := &Server{Key: key, issued: map[string]bool{}, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1beta/models/{call}", s.generate)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		lat := s.latency
		s.mu.Unlock()
		if lat > 0 {
			t := time.NewTimer(lat)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.done:
				t.Stop()
			}
		}
		if s.Faults.Apply(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return s
}

// Close releases waiting requests and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.Faults.Close()
	s.Server.Close()
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Script answers every request not served by Queue with fn.
func (s *Server) Script(fn func(*gemini.Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = fn
}

// Queue answers the next requests with rs, one each, before Script.
func (s *Server) Queue(rs ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, rs...)
}

// Log returns the authenticated requests received, in order.
func (s *Server) Log() []Logged {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Logged(nil), s.log...)
}

// ForgetLog drops the requests logged so far (a load run measuring the
// heap of its process must not count the fake's log).
func (s *Server) ForgetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

// Requests counts every request that reached the fake, faults included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func apiError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func (s *Server) generate(w http.ResponseWriter, r *http.Request) {
	model, ok := strings.CutSuffix(r.PathValue("call"), ":generateContent")
	if !ok || model == "" {
		apiError(w, http.StatusNotFound, "NOT_FOUND", "method not found")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("x-goog-api-key")), []byte(s.Key)) != 1 {
		apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Content-Type must be application/json")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return
	}
	var req gemini.Request
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
		return
	}
	if msg := s.invalid(&req); msg != "" {
		apiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg)
		return
	}

	s.mu.Lock()
	s.log = append(s.log, Logged{Raw: raw, Request: req})
	var rep Reply
	switch {
	case len(s.queue) > 0:
		rep, s.queue = s.queue[0], s.queue[1:]
	case s.script != nil:
		rep = s.script(&req)
	default:
		rep = Reply{Text: "ok"}
	}
	out := gemini.Response{ModelVersion: model, ResponseID: fmt.Sprintf("fake-%d", s.seq+1),
		UsageMetadata: gemini.UsageMetadata{PromptTokenCount: len(raw) / 4, CandidatesTokenCount: len(rep.Text)/4 + 1}}
	out.UsageMetadata.TotalTokenCount = out.UsageMetadata.PromptTokenCount + out.UsageMetadata.CandidatesTokenCount
	if rep.Block != "" {
		out.PromptFeedback = &gemini.PromptFeedback{BlockReason: rep.Block}
	} else {
		c := gemini.Candidate{Content: gemini.Content{Role: "model"}, FinishReason: rep.FinishReason}
		if c.FinishReason == "" {
			c.FinishReason = "STOP"
		}
		if rep.Text != "" {
			c.Content.Parts = append(c.Content.Parts, gemini.Part{Text: rep.Text})
		}
		for _, fc := range rep.Calls {
			s.seq++
			sig := fmt.Sprintf("c2lnLSVk%04d", s.seq) // opaque, base64-looking
			s.issued[sig] = true
			call := fc
			if len(call.Args) == 0 {
				call.Args = json.RawMessage(`{}`)
			}
			c.Content.Parts = append(c.Content.Parts, gemini.Part{FunctionCall: &call, ThoughtSignature: sig})
		}
		out.Candidates = []gemini.Candidate{c}
	}
	s.seq++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// invalid checks what Gemini checks: contents present, known roles, and
// every function call sent back with the signature it was issued.
func (s *Server) invalid(req *gemini.Request) string {
	if len(req.Contents) == 0 {
		return "* GenerateContentRequest.contents: contents is not specified"
	}
	declared := map[string]bool{}
	for _, t := range req.Tools {
		for _, d := range t.FunctionDeclarations {
			declared[d.Name] = true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range req.Contents {
		if c.Role != "user" && c.Role != "model" {
			return "Please use a valid role: user, model."
		}
		for _, p := range c.Parts {
			if p.FunctionCall != nil && !s.issued[p.ThoughtSignature] {
				return "Function call is missing a thought_signature in functionCall parts."
			}
			if p.FunctionResponse != nil && !declared[p.FunctionResponse.Name] {
				return "function response names an undeclared function"
			}
		}
	}
	return ""
}

// FailWith makes every request answer status with body until Recover
// (for callers outside the providers tree, which cannot name fakefault).
func (s *Server) FailWith(status int, body string) {
	s.Faults.Always(fakefault.Fault{Status: status, Body: body})
}

// Recover ends FailWith.
func (s *Server) Recover() { s.Faults.Clear() }
