package wompi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ChecksumHeader carries the event's checksum; it must equal signature.checksum.
const ChecksumHeader = "X-Event-Checksum"

// Event types Wompi posts.
const (
	EventTransactionUpdated = "transaction.updated"
	EventNequiTokenUpdated  = "nequi_token.updated"
)

const (
	// DefaultEventWindow is how old an event may be: Wompi retries a
	// failed delivery for up to 24 hours, plus an hour's margin for clocks
	// and queues. Older ones are refused, so a captured event cannot be
	// replayed forever.
	DefaultEventWindow = 25 * time.Hour
	// MaxFutureSkew is how far ahead of our clock an event's timestamp may be.
	MaxFutureSkew = 5 * time.Minute
	// MaxEventBytes caps an event body; Wompi's are about 1 KiB.
	MaxEventBytes = 64 << 10
	// maxProperties bounds signature.properties.
	maxProperties = 32
)

// Why an event is refused. All wrap ErrInvalidEvent: answer 401 and apply
// nothing (Wompi retries; reconciliation catches up with real payments).
var (
	ErrInvalidEvent    = errors.New("wompi: event refused")
	ErrMissingChecksum = fmt.Errorf("%w: no %s header", ErrInvalidEvent, ChecksumHeader)
	ErrBadChecksum     = fmt.Errorf("%w: checksum does not match", ErrInvalidEvent)
	ErrStaleEvent      = fmt.Errorf("%w: timestamp too old", ErrInvalidEvent)
	ErrFutureEvent     = fmt.Errorf("%w: timestamp in the future", ErrInvalidEvent)
	ErrMalformedEvent  = fmt.Errorf("%w: malformed", ErrInvalidEvent)
	ErrNoEventsSecret  = fmt.Errorf("%w: no events secret configured", ErrInvalidEvent)
)

// ErrUnsupportedEvent: the checksum holds but the event is of a type we do
// not act on (anything but transaction.updated). It does not wrap
// ErrInvalidEvent: answer 200 so Wompi stops retrying, and apply nothing.
// Such events are not trusted further than that: Wompi's checksum joins
// the values without separators, so for a shape we do not check, values can
// be shifted from one field to the next without changing it.
var ErrUnsupportedEvent = errors.New("wompi: event type not handled")

// Event is an authentic event. Only the values in Signed (and Timestamp)
// are covered by the checksum; for transaction.updated VerifyEvent insists
// that the transaction's id, status and amount are among them. Its
// reference, currency and e-mail are NOT signed: before attaching a
// transaction to a payment intent for the first time, confirm them with
// Client.GetTransaction, or compare them with what the intent expects.
type Event struct {
	Type        string
	Environment string
	// Timestamp is the signed Unix time of the event, in seconds.
	Timestamp int64
	SentAt    string
	// Checksum is the verified checksum, in lowercase hex. It is the same
	// for a redelivery of the same event, so it serves as the event's key
	// for replay detection.
	Checksum string
	// Properties are the signed paths (under data) in signing order;
	// Signed maps each to the exact text that was hashed.
	Properties []string
	Signed     map[string]string
	// Data is the raw "data" object, for event types other than
	// transaction.updated.
	Data json.RawMessage
	// Transaction is data.transaction for transaction.updated, else nil.
	Transaction *Transaction
}

// Key is the event's identity for replay detection (its checksum).
func (e Event) Key() string { return e.Checksum }

// envelope is the top level of an event body.
type envelope struct {
	Event       string          `json:"event"`
	Data        json.RawMessage `json:"data"`
	Environment string          `json:"environment"`
	Signature   struct {
		Properties []string `json:"properties"`
		Checksum   string   `json:"checksum"`
	} `json:"signature"`
	Timestamp json.RawMessage `json:"timestamp"`
	SentAt    string          `json:"sent_at"`
}

// transactionSigned are the fields a transaction.updated event signs
// (external-apis.md §3), and the only ones we act on.
var transactionSigned = []string{"transaction.id", "transaction.status", "transaction.amount_in_cents"}

// VerifyEvent checks an event posted by Wompi and parses it. body is the raw
// request body, headerChecksum the X-Event-Checksum header. The checksum is
// SHA256 hex of the values of signature.properties (each a path under
// "data", in the order given), then the top-level timestamp, then the
// events secret; it must equal both the header and signature.checksum,
// compared in constant time and without regard to case (Wompi's docs print
// it in uppercase). Numbers are hashed exactly as written in the body
// (4490000, never 4.49e+06). The timestamp must be no older than window
// (DefaultEventWindow when window <= 0) and no more than MaxFutureSkew
// ahead of now.
//
// A body with a key twice in one object (also differing only in case) is
// refused: encoding/json would read one copy into a struct and another
// into a map, so the fields we act on could differ from the ones signed.
func VerifyEvent(body []byte, headerChecksum, eventsSecret string, now time.Time, window time.Duration) (Event, error) {
	if eventsSecret == "" {
		return Event{}, ErrNoEventsSecret
	}
	headerChecksum = strings.TrimSpace(headerChecksum)
	if headerChecksum == "" {
		return Event{}, ErrMissingChecksum
	}
	if len(body) == 0 || len(body) > MaxEventBytes {
		return Event{}, fmt.Errorf("%w: body of %d bytes", ErrMalformedEvent, len(body))
	}
	if err := checkUniqueKeys(body); err != nil {
		return Event{}, err
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	ts, err := parseTimestamp(env.Timestamp)
	if err != nil {
		return Event{}, err
	}
	props := env.Signature.Properties
	if len(props) == 0 || len(props) > maxProperties {
		return Event{}, fmt.Errorf("%w: signature.properties must name 1 to %d fields", ErrMalformedEvent, maxProperties)
	}
	var data map[string]any
	ddec := json.NewDecoder(bytes.NewReader(env.Data))
	ddec.UseNumber()
	if err := ddec.Decode(&data); err != nil || data == nil {
		return Event{}, fmt.Errorf("%w: data must be an object", ErrMalformedEvent)
	}

	h := sha256.New()
	signed := make(map[string]string, len(props))
	for _, p := range props {
		v, err := resolve(data, p)
		if err != nil {
			return Event{}, err
		}
		signed[p] = v
		h.Write([]byte(v))
	}
	h.Write(env.Timestamp) // the digits exactly as sent
	h.Write([]byte(eventsSecret))
	want := []byte(hex.EncodeToString(h.Sum(nil)))
	// Both comparisons always run, so timing does not tell which failed.
	okHeader := hmac.Equal([]byte(strings.ToLower(headerChecksum)), want)
	okBody := hmac.Equal([]byte(strings.ToLower(env.Signature.Checksum)), want)
	if !okHeader || !okBody {
		return Event{}, ErrBadChecksum
	}

	if window <= 0 {
		window = DefaultEventWindow
	}
	at := time.Unix(ts, 0)
	switch {
	case now.Sub(at) > window:
		return Event{}, ErrStaleEvent
	case at.Sub(now) > MaxFutureSkew:
		return Event{}, ErrFutureEvent
	}

	ev := Event{
		Type: env.Event, Environment: env.Environment, Timestamp: ts, SentAt: env.SentAt,
		Checksum: string(want), Properties: append([]string(nil), props...), Signed: signed, Data: env.Data,
	}
	if ev.Type != EventTransactionUpdated {
		return ev, ErrUnsupportedEvent
	}
	{
		// Exactly the transaction's id, status and amount, in any order:
		// a further signed field next to the amount (say a reference
		// starting with digits) would let digits move between the two.
		// Should Wompi ever sign more, events are refused (401) and
		// reconciliation still applies every payment.
		if len(props) != len(transactionSigned) || len(signed) != len(props) {
			return Event{}, fmt.Errorf("%w: transaction.updated must sign exactly %v", ErrMalformedEvent, transactionSigned)
		}
		for _, p := range transactionSigned {
			if _, ok := signed[p]; !ok {
				return Event{}, fmt.Errorf("%w: %s is not signed", ErrMalformedEvent, p)
			}
		}
		var d struct {
			Transaction map[string]json.RawMessage `json:"transaction"`
		}
		if err := json.Unmarshal(env.Data, &d); err != nil || d.Transaction == nil {
			return Event{}, fmt.Errorf("%w: data.transaction", ErrMalformedEvent)
		}
		t := lenientTransaction(d.Transaction)
		// The struct must hold exactly what was signed, and the status must
		// be one Wompi uses: with the status a known word and the amount
		// all digits, the joined values split back into id, status and
		// amount one way only, so no boundary between them can be moved.
		if !t.Status.known() {
			return Event{}, fmt.Errorf("%w: unknown transaction status", ErrMalformedEvent)
		}
		if t.ID == "" || t.ID != signed["transaction.id"] || string(t.Status) != signed["transaction.status"] ||
			strconv.FormatInt(t.AmountInCents, 10) != signed["transaction.amount_in_cents"] {
			return Event{}, fmt.Errorf("%w: transaction fields differ from the signed ones", ErrMalformedEvent)
		}
		ev.Transaction = &t
	}
	return ev, nil
}

// lenientTransaction reads the fields we know from an event's transaction
// by their exact names. A field of an unexpected type is left zero instead
// of refusing the event: the fields we act on are the signed ones, which
// VerifyEvent compares with what was read here.
func lenientTransaction(m map[string]json.RawMessage) Transaction {
	var t Transaction
	str := func(k string, dst *string) { _ = json.Unmarshal(m[k], dst) }
	num := func(k string, dst *int64) { _ = json.Unmarshal(m[k], dst) }
	str("id", &t.ID)
	str("created_at", &t.CreatedAt)
	str("finalized_at", &t.FinalizedAt)
	str("reference", &t.Reference)
	num("amount_in_cents", &t.AmountInCents)
	str("currency", &t.Currency)
	str("customer_email", &t.CustomerEmail)
	str("payment_method_type", &t.PaymentMethodType)
	var status string
	str("status", &status)
	t.Status = Status(status)
	str("status_message", &t.StatusMessage)
	num("payment_source_id", &t.PaymentSourceID)
	str("redirect_url", &t.RedirectURL)
	str("payment_link_id", &t.PaymentLinkID)
	return t
}

// parseTimestamp accepts an unquoted non-negative integer of seconds, the
// form Wompi sends; the same bytes go into the checksum.
func parseTimestamp(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if s == "" || len(s) > 18 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: timestamp must be integer seconds", ErrMalformedEvent)
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp: %v", ErrMalformedEvent, err)
	}
	return ts, nil
}

// resolve returns the text of the scalar at path (dot-separated) under
// data: strings as they are, numbers as written, booleans as true/false.
// A missing field, null, object or array is refused: nothing authentic
// can be built on a value we cannot name.
func resolve(data map[string]any, path string) (string, error) {
	var cur any = data
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok || seg == "" {
			return "", fmt.Errorf("%w: signed property %q not found", ErrMalformedEvent, path)
		}
		if cur, ok = m[seg]; !ok {
			return "", fmt.Errorf("%w: signed property %q not found", ErrMalformedEvent, path)
		}
	}
	switch v := cur.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	default:
		return "", fmt.Errorf("%w: signed property %q is not a scalar", ErrMalformedEvent, path)
	}
}

// maxDepth bounds nesting in checkUniqueKeys.
const maxDepth = 32

// checkUniqueKeys refuses invalid JSON, trailing data, nesting deeper than
// maxDepth, and any object with two keys equal under case folding.
func checkUniqueKeys(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := walkValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the event", ErrMalformedEvent)
	}
	return nil
}

func walkValue(dec *json.Decoder, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deep", ErrMalformedEvent)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return fmt.Errorf("%w: %v", ErrMalformedEvent, err)
			}
			key, _ := kt.(string)
			// encoding/json matches struct fields by Unicode case
			// folding; lower(upper(k)) folds the cases that matter (K
			// and the Kelvin sign, s and the long s) to one key.
			fk := strings.ToLower(strings.ToUpper(key))
			if seen[fk] {
				return fmt.Errorf("%w: duplicate key %q", ErrMalformedEvent, key)
			}
			seen[fk] = true
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return fmt.Errorf("%w: %v", ErrMalformedEvent, err)
	}
	return nil
}
