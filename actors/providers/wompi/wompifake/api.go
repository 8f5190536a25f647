package wompifake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /v1/merchants/info", s.merchantInfo)
	api.HandleFunc("GET /v1/merchants/{key}", s.merchantByKey)
	api.HandleFunc("POST /v1/tokens/cards", s.tokenizeCard)
	api.HandleFunc("POST /v1/transactions", s.createTransaction)
	api.HandleFunc("GET /v1/transactions", s.findTransactions)
	api.HandleFunc("GET /v1/transactions/{id}", s.getTransaction)
	api.HandleFunc("POST /v1/transactions/{id}/void", s.voidTransaction)
	api.HandleFunc("POST /v1/payment_sources", s.createPaymentSource)
	api.HandleFunc("PUT /v1/payment_sources/{id}/void", s.voidPaymentSource)

	root := http.NewServeMux()
	root.HandleFunc("GET /p/{$}", s.checkoutPage)
	root.HandleFunc("POST /p/pay", s.checkoutPay)
	root.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		s.requestCount++
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Key: s.keyKind(r), Body: string(body)})
		if len(s.requests) > maxRequests {
			s.requests = s.requests[len(s.requests)-maxRequests:]
		}
		s.mu.Unlock()
		if s.Faults.Apply(w, r) {
			return
		}
		api.ServeHTTP(w, r)
	}))
	return root
}

// keyKind names the bearer key sent.
func (s *Server) keyKind(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || tok == "":
		return ""
	case equal(tok, s.Keys.Public):
		return "public"
	case equal(tok, s.Keys.Private):
		return "private"
	}
	return "unknown"
}

// ---- replies ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func authError(w http.ResponseWriter, want string) {
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
		"type": "INVALID_ACCESS_TOKEN", "reason": "Se esperaba una llave " + want + " pero se recibió otra o ninguna",
	}})
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{
		"type": "NOT_FOUND_ERROR", "reason": "La entidad solicitada no existe",
	}})
}

// invalid writes the documented 422 shape: messages per field.
func invalid(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": map[string]any{
		"type": "INPUT_VALIDATION_ERROR", "messages": map[string][]string{field: {msg}},
	}})
}

// decode reads a JSON body strictly (unknown fields refused, so a typo in
// the client shows up here).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		invalid(w, "body", "JSON inválido: "+err.Error())
		return false
	}
	return true
}

// ---- merchants ----

func (s *Server) acceptance() map[string]any {
	return map[string]any{"data": map[string]any{
		"id": 1234, "name": "Spa Fake", "legal_name": "Spa Fake SAS", "public_key": s.Keys.Public,
		"accepted_currencies": []string{"COP"}, "accepted_payment_methods": []string{"CARD", "NEQUI"},
		"presigned_acceptance": map[string]any{
			"acceptance_token": s.acceptanceToken(), "type": "END_USER_POLICY",
			"permalink": s.URL + "/legal/terms.pdf",
		},
		"presigned_personal_data_auth": map[string]any{
			"acceptance_token": s.personalToken(), "type": "PERSONAL_DATA_AUTH",
			"permalink": s.URL + "/legal/personal-data.pdf",
		},
	}}
}

// The tokens are fixed per public key: the fake checks that a payment
// carries the tokens it issued.
func (s *Server) acceptanceToken() string {
	return "eyJhbGciOiJIUzI1NiJ9.fake-acceptance." + s.Keys.Public
}
func (s *Server) personalToken() string {
	return "eyJhbGciOiJIUzI1NiJ9.fake-personal-data." + s.Keys.Public
}

func (s *Server) merchantInfo(w http.ResponseWriter, r *http.Request) {
	if !equal(r.Header.Get("x-merchant-public-key"), s.Keys.Public) {
		authError(w, "pública")
		return
	}
	writeJSON(w, http.StatusOK, s.acceptance())
}

// merchantByKey is the older GET /merchants/{public_key}.
func (s *Server) merchantByKey(w http.ResponseWriter, r *http.Request) {
	if !equal(r.PathValue("key"), s.Keys.Public) {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, s.acceptance())
}

// ---- tokens ----

func (s *Server) tokenizeCard(w http.ResponseWriter, r *http.Request) {
	if s.keyKind(r) != "public" {
		authError(w, "pública")
		return
	}
	var c struct {
		Number     string `json:"number"`
		CVC        string `json:"cvc"`
		ExpMonth   string `json:"exp_month"`
		ExpYear    string `json:"exp_year"`
		CardHolder string `json:"card_holder"`
	}
	if !decode(w, r, &c) {
		return
	}
	month, _ := strconv.Atoi(c.ExpMonth)
	switch {
	case len(c.Number) < 13 || len(c.Number) > 19 || !digits(c.Number):
		invalid(w, "number", "Número de tarjeta inválido")
		return
	case (len(c.CVC) != 3 && len(c.CVC) != 4) || !digits(c.CVC):
		invalid(w, "cvc", "CVC inválido")
		return
	case len(c.ExpMonth) != 2 || month < 1 || month > 12:
		invalid(w, "exp_month", "Mes inválido")
		return
	case len(c.ExpYear) != 2 || !digits(c.ExpYear):
		invalid(w, "exp_year", "Año inválido")
		return
	case len(strings.TrimSpace(c.CardHolder)) < 5:
		invalid(w, "card_holder", "Debe tener al menos 5 caracteres")
		return
	}
	brand := "MASTERCARD"
	if c.Number[0] == '4' {
		brand = "VISA"
	}
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("tok_test_%d_%s", s.seq, c.Number[len(c.Number)-4:])
	s.tokens[id] = c.Number
	now := s.now().UTC()
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"status": "CREATED", "data": map[string]any{
		"id": id, "created_at": now.Format("2006-01-02T15:04:05.000Z"), "brand": brand,
		"name": brand + "-" + c.Number[len(c.Number)-4:], "last_four": c.Number[len(c.Number)-4:],
		"bin": c.Number[:6], "exp_year": c.ExpYear, "exp_month": c.ExpMonth, "card_holder": c.CardHolder,
		"expires_at": now.Add(30 * 24 * time.Hour).Format("2006-01-02T15:04:05.000Z"),
	}})
}

// ---- transactions ----

type paymentMethod struct {
	Type         string `json:"type"`
	Token        string `json:"token"`
	Installments int    `json:"installments"`
	PhoneNumber  string `json:"phone_number"`
}

type createBody struct {
	AcceptanceToken    string         `json:"acceptance_token"`
	AcceptPersonalAuth string         `json:"accept_personal_auth"`
	AmountInCents      json.Number    `json:"amount_in_cents"`
	Currency           string         `json:"currency"`
	Signature          string         `json:"signature"`
	CustomerEmail      string         `json:"customer_email"`
	Reference          string         `json:"reference"`
	PaymentMethod      *paymentMethod `json:"payment_method"`
	PaymentSourceID    int64          `json:"payment_source_id"`
	Recurrent          bool           `json:"recurrent"`
	RedirectURL        string         `json:"redirect_url"`
	ExpirationTime     string         `json:"expiration_time"`
}

func (s *Server) createTransaction(w http.ResponseWriter, r *http.Request) {
	kind := s.keyKind(r)
	if kind != "public" && kind != "private" {
		authError(w, "pública o privada")
		return
	}
	var b createBody
	if !decode(w, r, &b) {
		return
	}
	amount, err := strconv.ParseInt(b.AmountInCents.String(), 10, 64)
	switch {
	case err != nil || amount <= 0:
		invalid(w, "amount_in_cents", "Debe ser un entero positivo")
		return
	case b.Currency != "COP":
		invalid(w, "currency", "Moneda no soportada")
		return
	case b.Reference == "" || len(b.Reference) > 255:
		invalid(w, "reference", "Referencia inválida")
		return
	case !strings.Contains(b.CustomerEmail, "@"):
		invalid(w, "customer_email", "Correo inválido")
		return
	case !equal(b.Signature, s.integrity(b.Reference, amount, b.Currency, b.ExpirationTime)):
		invalid(w, "signature", "La firma es inválida")
		return
	}
	tx := Transaction{
		AmountInCents: amount, Reference: b.Reference, Currency: b.Currency, CustomerEmail: b.CustomerEmail,
	}
	if b.RedirectURL != "" {
		tx.RedirectURL = ptr(b.RedirectURL)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var sandbox Outcome
	switch {
	case b.PaymentSourceID != 0:
		if kind != "private" {
			authError(w, "privada")
			return
		}
		src, ok := s.sources[b.PaymentSourceID]
		if !ok || src.Status != "AVAILABLE" {
			invalid(w, "payment_source_id", "La fuente de pago no existe o no está disponible")
			return
		}
		if b.PaymentMethod == nil || b.PaymentMethod.Installments < 1 {
			invalid(w, "payment_method", "installments es requerido")
			return
		}
		tx.PaymentSourceID = ptr(src.ID)
		tx.PaymentMethodType = src.Type
		tx.PaymentMethod = map[string]any{"type": src.Type, "installments": b.PaymentMethod.Installments}
		sandbox = cardOutcome(s.tokens[src.Token])
	default:
		if !equal(b.AcceptanceToken, s.acceptanceToken()) {
			invalid(w, "acceptance_token", "El token de aceptación es inválido o expiró")
			return
		}
		if !equal(b.AcceptPersonalAuth, s.personalToken()) {
			invalid(w, "accept_personal_auth", "El token de autorización de datos personales es inválido o expiró")
			return
		}
		m := b.PaymentMethod
		if m == nil {
			invalid(w, "payment_method", "Es requerido")
			return
		}
		switch m.Type {
		case "CARD":
			number, ok := s.tokens[m.Token]
			if !ok {
				invalid(w, "payment_method", "El token de tarjeta no existe")
				return
			}
			if m.Installments < 1 || m.Installments > 36 {
				invalid(w, "payment_method", "installments debe estar entre 1 y 36")
				return
			}
			tx.PaymentMethod = map[string]any{"type": "CARD", "token": m.Token, "installments": m.Installments,
				"extra": map[string]any{"last_four": number[len(number)-4:]}}
			sandbox = cardOutcome(number)
		case "NEQUI":
			if len(m.PhoneNumber) != 10 || !digits(m.PhoneNumber) {
				invalid(w, "payment_method", "phone_number debe tener 10 dígitos")
				return
			}
			tx.PaymentMethod = map[string]any{"type": "NEQUI", "phone_number": m.PhoneNumber}
			sandbox = nequiOutcome(m.PhoneNumber)
		default:
			invalid(w, "payment_method", "Tipo de método de pago no soportado")
			return
		}
		tx.PaymentMethodType = m.Type
	}
	created, err := s.newTransactionLocked(tx)
	if err != nil {
		invalid(w, "reference", "La referencia ya ha sido usada")
		return
	}
	reply := *created // PENDING, as Wompi answers; the outcome follows
	s.resolveLocked(created, sandbox)
	writeJSON(w, http.StatusCreated, map[string]any{"data": reply, "meta": map[string]any{}})
}

func (s *Server) getTransaction(w http.ResponseWriter, r *http.Request) {
	switch s.keyKind(r) {
	case "private":
	case "unknown":
		authError(w, "privada")
		return
	default:
		// Wompi answers 404 to anonymous and public-key reads.
		notFound(w)
		return
	}
	s.mu.Lock()
	tx, ok := s.txs[r.PathValue("id")]
	var c Transaction
	if ok {
		c = *tx
	}
	s.mu.Unlock()
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": c, "meta": map[string]any{}})
}

func (s *Server) findTransactions(w http.ResponseWriter, r *http.Request) {
	if s.keyKind(r) != "private" {
		authError(w, "privada")
		return
	}
	ref := r.URL.Query().Get("reference")
	if ref == "" {
		invalid(w, "reference", "Es requerido")
		return
	}
	s.mu.Lock()
	out := []Transaction{}
	for _, id := range s.byRef[ref] {
		out = append(out, *s.txs[id])
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": out, "meta": map[string]any{"page": 1, "page_size": len(out)}})
}

func (s *Server) voidTransaction(w http.ResponseWriter, r *http.Request) {
	if s.keyKind(r) != "private" {
		authError(w, "privada")
		return
	}
	var b struct {
		AmountInCents *int64 `json:"amount_in_cents"`
	}
	if r.ContentLength != 0 && !decode(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[r.PathValue("id")]
	switch {
	case !ok:
		notFound(w)
		return
	case tx.PaymentMethodType != "CARD":
		invalid(w, "transaction", "Solo se pueden anular transacciones con tarjeta")
		return
	case tx.Status != "APPROVED":
		invalid(w, "transaction", "Solo se pueden anular transacciones aprobadas")
		return
	case b.AmountInCents != nil && *b.AmountInCents != tx.AmountInCents:
		invalid(w, "amount_in_cents", "Solo se admite anular el total")
		return
	}
	tx.Status = "VOIDED"
	s.emitLocked(tx, s.now().UTC())
	writeJSON(w, http.StatusCreated, map[string]any{"data": map[string]any{
		"status": "APPROVED", "status_message": nil, "transaction": *tx,
	}})
}

// ---- payment sources ----

func (s *Server) createPaymentSource(w http.ResponseWriter, r *http.Request) {
	if s.keyKind(r) != "private" {
		authError(w, "privada")
		return
	}
	var b struct {
		Type               string `json:"type"`
		Token              string `json:"token"`
		CustomerEmail      string `json:"customer_email"`
		AcceptanceToken    string `json:"acceptance_token"`
		AcceptPersonalAuth string `json:"accept_personal_auth"`
	}
	if !decode(w, r, &b) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	number, ok := s.tokens[b.Token]
	switch {
	case b.Type != "CARD":
		invalid(w, "type", "La fuente de pago de prueba solo admite CARD")
		return
	case !ok:
		invalid(w, "token", "El token no existe")
		return
	case !strings.Contains(b.CustomerEmail, "@"):
		invalid(w, "customer_email", "Correo inválido")
		return
	case !equal(b.AcceptanceToken, s.acceptanceToken()):
		invalid(w, "acceptance_token", "El token de aceptación es inválido o expiró")
		return
	case b.AcceptPersonalAuth != "" && !equal(b.AcceptPersonalAuth, s.personalToken()):
		invalid(w, "accept_personal_auth", "El token de autorización de datos personales es inválido o expiró")
		return
	}
	s.seq++
	src := &source{ID: int64(3890 + s.seq), Type: b.Type, Token: b.Token, CustomerEmail: b.CustomerEmail, Status: "AVAILABLE"}
	s.sources[src.ID] = src
	writeJSON(w, http.StatusCreated, map[string]any{"data": sourceJSON(src, number)})
}

func sourceJSON(src *source, number string) map[string]any {
	pd := map[string]any{"type": src.Type}
	if len(number) >= 4 {
		pd["last_four"] = number[len(number)-4:]
	}
	return map[string]any{"id": src.ID, "type": src.Type, "token": src.Token, "status": src.Status,
		"customer_email": src.CustomerEmail, "public_data": pd}
}

func (s *Server) voidPaymentSource(w http.ResponseWriter, r *http.Request) {
	if s.keyKind(r) != "private" {
		authError(w, "privada")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[id]
	if err != nil || !ok {
		notFound(w)
		return
	}
	src.Status = "VOIDED"
	writeJSON(w, http.StatusOK, map[string]any{"data": sourceJSON(src, s.tokens[src.Token])})
}

func digits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
