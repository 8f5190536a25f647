package wompifake

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// checkout is a web checkout request, as the page receives it.
type checkout struct {
	PublicKey, Currency, Reference, Signature, RedirectURL, Expiration, Email string
	Amount                                                                    int64
}

// errCheckout is a checkout the fake refuses, with the status to answer.
type errCheckout struct {
	status int
	msg    string
}

func (e *errCheckout) Error() string { return e.msg }

// parseCheckout reads and checks the checkout parameters (the page's query
// or the pay form, which repeats them).
func (s *Server) parseCheckout(v url.Values) (checkout, error) {
	c := checkout{
		PublicKey: v.Get("public-key"), Currency: v.Get("currency"), Reference: v.Get("reference"),
		Signature: v.Get("signature:integrity"), RedirectURL: v.Get("redirect-url"),
		Expiration: v.Get("expiration-time"), Email: v.Get("customer-data:email"),
	}
	amount, err := strconv.ParseInt(v.Get("amount-in-cents"), 10, 64)
	switch {
	case !equal(c.PublicKey, s.Keys.Public):
		return c, &errCheckout{http.StatusUnauthorized, "public-key inválida"}
	case c.Currency != "COP":
		return c, &errCheckout{http.StatusBadRequest, "currency debe ser COP"}
	case err != nil || amount <= 0:
		return c, &errCheckout{http.StatusBadRequest, "amount-in-cents inválido"}
	case c.Reference == "" || len(c.Reference) > 255:
		return c, &errCheckout{http.StatusBadRequest, "reference inválida"}
	}
	c.Amount = amount
	if !equal(c.Signature, s.integrity(c.Reference, amount, c.Currency, c.Expiration)) {
		return c, &errCheckout{http.StatusBadRequest, "La firma de integridad es inválida"}
	}
	if c.Expiration != "" {
		exp, err := time.Parse("2006-01-02T15:04:05.000Z", c.Expiration)
		if err != nil {
			return c, &errCheckout{http.StatusBadRequest, "expiration-time inválido"}
		}
		s.mu.Lock()
		now := s.now()
		s.mu.Unlock()
		if !now.Before(exp) {
			return c, &errCheckout{http.StatusGone, "El link de pago expiró"}
		}
	}
	if c.RedirectURL != "" {
		if u, err := url.Parse(c.RedirectURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return c, &errCheckout{http.StatusBadRequest, "redirect-url inválida"}
		}
	}
	return c, nil
}

var page = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="es"><head><meta charset="utf-8"><title>Wompi (fake) · Pagar {{.Pesos}}</title></head>
<body>
<h1>Wompi de prueba</h1>
<p>Referencia: <code id="reference">{{.C.Reference}}</code></p>
<p>Total a pagar: <strong id="amount">{{.Pesos}}</strong> <span id="amount-in-cents">({{.C.Amount}} centavos)</span></p>
<form method="post" action="pay">
{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button type="submit" name="outcome" value="APPROVED" id="approve">Aprobar</button>
<button type="submit" name="outcome" value="DECLINED" id="decline">Rechazar</button>
</form>
</body></html>
`))

// pesos renders cents as COP with Colombian separators: $ 49.900,00.
func pesos(cents int64) string {
	whole := strconv.FormatInt(cents/100, 10)
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("$ %s,%02d COP", b.String(), cents%100)
}

func (s *Server) checkoutPage(w http.ResponseWriter, r *http.Request) {
	c, err := s.parseCheckout(r.URL.Query())
	if err != nil {
		checkoutError(w, err)
		return
	}
	fields := map[string]string{}
	for k, v := range r.URL.Query() {
		fields[k] = v[0]
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, map[string]any{"C": c, "Pesos": pesos(c.Amount), "Fields": fields})
}

func checkoutError(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	var ce *errCheckout
	if errors.As(err, &ce) {
		status = ce.status
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(err.Error() + "\n"))
}

// checkoutPay is the page's form: it creates the transaction (CARD), resolves
// it as the button said (or, without a button, as Outcome / DefaultOutcome
// say, approving by default), fires the event and redirects.
func (s *Server) checkoutPay(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		checkoutError(w, err)
		return
	}
	tx, err := s.pay(r.PostForm, Outcome(r.PostForm.Get("outcome")))
	if err != nil {
		checkoutError(w, err)
		return
	}
	if tx.RedirectURL == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintf(w, "Transacción %s: %s\n", tx.ID, tx.Status)
		return
	}
	u, _ := url.Parse(*tx.RedirectURL) // checked by parseCheckout
	q := u.Query()
	q.Set("id", tx.ID)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// PayCheckout pays a checkout link as the page's buttons do, without HTTP:
// outcome Approve or Decline as the payer's choice, or Sandbox to follow
// Outcome / DefaultOutcome (approving when neither is set). It returns the
// transaction as resolved.
func (s *Server) PayCheckout(checkoutURL string, outcome Outcome) (Transaction, error) {
	u, err := url.Parse(checkoutURL)
	if err != nil {
		return Transaction{}, err
	}
	return s.pay(u.Query(), outcome)
}

func (s *Server) pay(v url.Values, outcome Outcome) (Transaction, error) {
	c, err := s.parseCheckout(v)
	if err != nil {
		return Transaction{}, err
	}
	switch outcome {
	case Approve, Decline, Error, Sandbox:
	default:
		return Transaction{}, &errCheckout{http.StatusBadRequest, "outcome inválido"}
	}
	email := c.Email
	if email == "" {
		email = "pagador@example.com"
	}
	tx := Transaction{
		AmountInCents: c.Amount, Reference: c.Reference, Currency: c.Currency, CustomerEmail: email,
		PaymentMethodType: "CARD",
		PaymentMethod:     map[string]any{"type": "CARD", "installments": 1, "extra": map[string]any{"last_four": "4242"}},
	}
	if c.RedirectURL != "" {
		tx.RedirectURL = ptr(c.RedirectURL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	created, err := s.newTransactionLocked(tx)
	if err != nil {
		return Transaction{}, &errCheckout{http.StatusConflict, "La referencia ya ha sido usada"}
	}
	if outcome == Sandbox {
		s.resolveLocked(created, Approve)
	} else {
		s.finalizeLocked(created, string(outcome))
	}
	return *created, nil
}
