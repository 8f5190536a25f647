// Package phone turns what a caller types into a validated E.164 mobile
// number, the identity of a client in the OTP login flow.
//
// Its place: the identity endpoints parse the submitted number here before
// anything else happens, and the session actor of the design is keyed
// by the resulting E.164 string, so "300 123 4567", "+57 300 1234567" and
// "(+57) 3001234567" all reach the same actor and share one set of OTP limits.
// Parsing and validation come from nyaruka/phonenumbers, the Go port of
// Google's libphonenumber.
//
// Phone numbers are personal data. Errors returned here never contain the
// input, and Number's String is meant for storage and provider calls, while
// its LogValue (and Mask) is what reaches logs.
package phone

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region assumed for numbers typed without a country
// code: the studios open in Colombia first.
const DefaultRegion = "CO"

// MaxInputLen bounds the raw input accepted by Parse. The longest E.164
// number is 16 characters; generous room is left for spaces, dashes,
// parentheses and an extension-free "tel:" prefix, while keeping hostile
// inputs away from the library's regular expressions.
const MaxInputLen = 64

// Error is the type of every error returned by this package. Code is a
// stable machine-readable reason an endpoint can put in its response details;
// the message never contains the number itself.
type Error struct {
	// Code is the stable reason, e.g. "phone_not_mobile".
	Code string
	msg  string
}

// Error implements error.
func (e *Error) Error() string { return "phone: " + e.msg }

// Errors returned by Parse, distinguished with errors.Is. All of them mean
// "this is not a number we can send a code to"; they differ so the client can
// be told what to fix.
var (
	// ErrEmpty: the input was blank.
	ErrEmpty = &Error{Code: "phone_empty", msg: "number is empty"}
	// ErrTooLong: the input exceeds MaxInputLen bytes.
	ErrTooLong = &Error{Code: "phone_too_long", msg: "input is too long"}
	// ErrNotANumber: the input does not look like a phone number at all.
	ErrNotANumber = &Error{Code: "phone_not_a_number", msg: "input is not a phone number"}
	// ErrInvalidCountryCode: the number has an unknown country calling code,
	// or has none and the default region is unknown.
	ErrInvalidCountryCode = &Error{Code: "phone_invalid_country_code", msg: "invalid country code"}
	// ErrTooShort: too few digits to be a phone number.
	ErrTooShort = &Error{Code: "phone_too_short", msg: "number is too short"}
	// ErrInvalid: the number parses but is not a valid, assigned-range number
	// for its region (wrong length or prefix).
	ErrInvalid = &Error{Code: "phone_invalid", msg: "number is not valid"}
	// ErrNotMobile: the number is valid but the numbering plan says it cannot
	// be a mobile (fixed line, toll free, premium rate, VoIP...), so it cannot
	// receive an SMS or WhatsApp code.
	ErrNotMobile = &Error{Code: "phone_not_mobile", msg: "number is not a mobile number"}
	// ErrHasExtension: the number carries an extension ("ext. 12"), which
	// marks a switchboard rather than a phone that receives messages.
	ErrHasExtension = &Error{Code: "phone_has_extension", msg: "number has an extension"}
)

// ErrUnknownRegion is returned by NewParser for a region code the library
// has no metadata for.
var ErrUnknownRegion = errors.New("phone: unknown default region")

// Number is a validated mobile number. The zero value is not a valid number.
type Number struct {
	// E164 is the canonical form, e.g. "+573001234567": the key of the
	// session actor and the value given to SMS/WhatsApp providers.
	E164 string
	// CountryCode is the country calling code, e.g. 57.
	CountryCode int
	// Region is the ISO 3166-1 alpha-2 region of the number, e.g. "CO"
	// ("001" for non-geographic numbers).
	Region string
}

// String returns the E.164 form. It is the full number: use Masked or let
// slog call LogValue when logging.
func (n Number) String() string { return n.E164 }

// Masked returns the number with every digit hidden except the country code
// and the last two digits, e.g. "+57********67".
func (n Number) Masked() string { return Mask(n.E164) }

// LogValue implements slog.LogValuer so a Number passed to a logger is
// masked without the caller having to remember to.
func (n Number) LogValue() slog.Value { return slog.StringValue(n.Masked()) }

// Parser parses numbers typed without a country code as belonging to its
// default region. The zero value uses DefaultRegion. A Parser is immutable
// and safe for concurrent use.
type Parser struct {
	region string
}

// NewParser returns a Parser for the given default region (ISO 3166-1
// alpha-2, case-insensitive). An empty region means DefaultRegion.
func NewParser(defaultRegion string) (Parser, error) {
	if defaultRegion == "" {
		return Parser{region: DefaultRegion}, nil
	}
	r := strings.ToUpper(defaultRegion)
	if !phonenumbers.GetSupportedRegions()[r] {
		return Parser{}, ErrUnknownRegion
	}
	return Parser{region: r}, nil
}

// Region returns the parser's default region.
func (p Parser) Region() string {
	if p.region == "" {
		return DefaultRegion
	}
	return p.region
}

// Parse validates raw and returns it as a mobile Number, or one of the
// package's errors. Numbers with an explicit "+" (or international dialling
// prefix) keep their own country; others are read in the parser's region.
func (p Parser) Parse(raw string) (Number, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Number{}, ErrEmpty
	}
	if len(s) > MaxInputLen {
		return Number{}, ErrTooLong
	}
	num, err := phonenumbers.Parse(s, p.Region())
	if err != nil {
		return Number{}, mapLibError(err)
	}
	if num.GetExtension() != "" {
		return Number{}, ErrHasExtension
	}
	if !phonenumbers.IsValidNumber(num) {
		return Number{}, ErrInvalid
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
		// FIXED_LINE_OR_MOBILE is the library saying it cannot tell (the
		// North American plan, for one): accept, as the brief asks to reject
		// only what is known not to be mobile.
	default:
		return Number{}, ErrNotMobile
	}
	return Number{
		E164:        phonenumbers.Format(num, phonenumbers.E164),
		CountryCode: int(num.GetCountryCode()),
		Region:      phonenumbers.GetRegionCodeForNumber(num),
	}, nil
}

// Parse parses raw with DefaultRegion; see Parser.Parse.
func Parse(raw string) (Number, error) { return Parser{}.Parse(raw) }

func mapLibError(err error) error {
	switch {
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return ErrInvalidCountryCode
	case errors.Is(err, phonenumbers.ErrTooShortNSN), errors.Is(err, phonenumbers.ErrTooShortAfterIDD):
		return ErrTooShort
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return ErrTooLong
	default:
		// ErrNotANumber and anything a future library version adds: the
		// library's own message may quote the input, so it is not wrapped.
		return ErrNotANumber
	}
}

// Mask hides a phone number for logs, keeping only the country code and the
// last two digits: "+573001234567" becomes "+57********67". It accepts any
// string, so it is safe on unvalidated input: something that is not in E.164
// form keeps at most its last two digits, and strings with fewer than six
// digits are hidden completely.
func Mask(s string) string {
	digits := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	if len(digits) < 6 {
		return "***"
	}
	cc := 0
	if strings.HasPrefix(s, "+") && len(digits) == len(s)-1 {
		cc = countryCodeLen(string(digits))
	}
	var b strings.Builder
	if cc > 0 {
		b.WriteByte('+')
		b.Write(digits[:cc])
	}
	b.WriteString(strings.Repeat("*", len(digits)-cc-2))
	b.Write(digits[len(digits)-2:])
	return b.String()
}

// countryCodeLen finds the calling code at the start of an E.164 digit
// string. Calling codes are a prefix code of one to three digits, so at most
// one prefix length is assigned.
func countryCodeLen(digits string) int {
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, err := strconv.Atoi(digits[:l])
		if err != nil || cc == 0 {
			return 0
		}
		if phonenumbers.GetRegionCodeForCountryCode(cc) != phonenumbers.UNKNOWN_REGION {
			return l
		}
	}
	return 0
}
