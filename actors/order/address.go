package order

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/spa-engine/spa/actors/order/divipola"
	"github.com/spa-engine/spa/persistence"
)

// FieldError is one invalid field of an address; Field is the snake_case
// name the HTTP API uses.
type FieldError struct {
	Field   string
	Message string
}

// InvalidAddress lists every invalid field of a fulfilment. Messages
// never repeat the input: it is PII.
type InvalidAddress []FieldError

func (e InvalidAddress) Error() string {
	var b strings.Builder
	b.WriteString("order: invalid shipping address:")
	for _, f := range e {
		b.WriteString(" " + f.Field + " " + f.Message + ";")
	}
	return b.String()
}

// Unwrap makes an invalid address an ErrInvalid.
func (e InvalidAddress) Unwrap() error { return persistence.ErrInvalid }

// CheckFulfilment validates how an order reaches the client and returns
// the address normalised (trimmed, phone in E.164, the department taken
// from the municipality when left out). Pickup takes no address; shipping
// needs a recipient, a Colombian phone, a street line and a DIVIPOLA
// municipality inside the given department, and an optional 6-digit
// postal code that starts with the department's code, as 4-72's codes do.
func CheckFulfilment(f persistence.Fulfilment, a persistence.ShippingAddress) (persistence.ShippingAddress, error) {
	var errs InvalidAddress
	add := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }
	switch f {
	case persistence.FulfilmentPickup:
		if a != (persistence.ShippingAddress{}) {
			add("shipping_address", "must be left out for pickup in studio")
			return a, errs
		}
		return a, nil
	case persistence.FulfilmentShipping:
	default:
		add("fulfilment", "must be pickup or shipping")
		return a, errs
	}
	a.Recipient, a.Line1, a.Line2 = strings.TrimSpace(a.Recipient), strings.TrimSpace(a.Line1), strings.TrimSpace(a.Line2)
	a.Notes, a.PostalCode = strings.TrimSpace(a.Notes), strings.TrimSpace(a.PostalCode)
	a.DepartmentCode, a.MunicipalityCode = strings.TrimSpace(a.DepartmentCode), strings.TrimSpace(a.MunicipalityCode)
	textField := func(field, v string, minLen, maxLen int) {
		if n := utf8.RuneCountInString(v); n < minLen || n > maxLen || strings.ContainsAny(v, "\x00\r\n\t") {
			if minLen == 0 {
				add(field, "must be at most "+strconv.Itoa(maxLen)+" characters on one line")
			} else {
				add(field, "must be "+strconv.Itoa(minLen)+" to "+strconv.Itoa(maxLen)+" characters on one line")
			}
		}
	}
	textField("recipient", a.Recipient, 2, 100)
	textField("line1", a.Line1, 5, 200)
	textField("line2", a.Line2, 0, 200)
	textField("notes", a.Notes, 0, 300)

	if e164, ok := colombianPhone(a.Phone); ok {
		a.Phone = e164
	} else {
		add("phone", "must be a valid Colombian phone number")
	}

	m, ok := divipola.MunicipalityByCode(a.MunicipalityCode)
	placeOK := ok && (a.DepartmentCode == "" || a.DepartmentCode == m.DepartmentCode)
	switch {
	case !ok:
		add("municipality_code", "must be a DANE DIVIPOLA municipality code (5 digits)")
	case a.DepartmentCode == "":
		a.DepartmentCode = m.DepartmentCode
	case a.DepartmentCode != m.DepartmentCode:
		if _, known := divipola.DepartmentByCode(a.DepartmentCode); !known {
			add("department_code", "must be a DANE DIVIPOLA department code (2 digits)")
		} else {
			add("municipality_code", "is not in the given department")
		}
	}
	if a.PostalCode != "" && (len(a.PostalCode) != 6 || !allDigits(a.PostalCode) ||
		(placeOK && !strings.HasPrefix(a.PostalCode, a.DepartmentCode))) {
		add("postal_code", "must be 6 digits starting with the department code")
	}
	if len(errs) > 0 {
		return a, errs
	}
	return a, nil
}

// colombianPhone parses a phone number typed with or without +57 and
// returns it in E.164 when it is a valid Colombian number.
func colombianPhone(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 32 {
		return "", false
	}
	n, err := phonenumbers.Parse(raw, "CO")
	if err != nil || !phonenumbers.IsValidNumberForRegion(n, "CO") {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
