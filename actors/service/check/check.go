// Package check holds the field checks use-case services share: a
// collector of field problems that becomes one validation_failed answer,
// and the small predicates (printable text, ids, time zones, email
// addresses) several services apply to what callers send.
//
// They live beside the services, not in the HTTP edge, so the API and
// non-HTTP callers (the WhatsApp bot) are held to the same rules; the
// gateway uses them too for what it parses itself (path and query
// parameters).
package check

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // time zones validate the same on a distroless image as on a laptop
	"unicode/utf8"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/persistence/money"
)

// Fields collects every problem of one request, so a form can mark all
// bad fields in one round trip.
type Fields []fault.FieldError

// Add records a problem with field.
func (f *Fields) Add(field, msg string) {
	*f = append(*f, fault.FieldError{Field: field, Message: msg})
}

// Err is the validation_failed answer for the problems collected, or nil.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return fault.Invalid("", f...)
}

// Amount checks v is an amount of money in minor units: 0 to money.Max
// (10^12), so no price, balance or total built from them can overflow.
// min is 0 or 1 (whether zero is allowed).
func (f *Fields) Amount(field string, v, min int64) {
	if v < min || v > money.Max {
		f.Add(field, fmt.Sprintf("must be from %d to %d (COP minor units)", min, money.Max))
	}
}

// Text trims v and checks it holds min to max printable characters.
func (f *Fields) Text(field, v string, min, max int) string {
	v = strings.TrimSpace(v)
	if n := utf8.RuneCountInString(v); n < min || n > max || strings.ContainsFunc(v, Control) {
		f.Add(field, fmt.Sprintf("must be %d to %d printable characters", min, max))
	}
	return v
}

// Slug is the shape of the ids admins choose (services, staff, resources,
// products): lower-case letters, digits, - and _, 1 to 64 of them.
var Slug = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ClientID is the shape of client ids (token subjects) given by staff.
var ClientID = regexp.MustCompile(`^[A-Za-z0-9+._:-]{1,64}$`)

// Control reports an ASCII control character.
func Control(r rune) bool { return r < 0x20 || r == 0x7f }

// Bounded keeps client-chosen names short and printable in our messages.
func Bounded(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if Control(r) {
			return '?'
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return s
}

// TimeZone accepts names time.LoadLocation knows, but not the two it maps
// to the host's settings ("" and "Local"), which would make the studio's
// rules depend on where the server runs.
func TimeZone(tz string) bool {
	if tz == "" || tz == "Local" || len(tz) > 64 {
		return false
	}
	_, err := time.LoadLocation(tz)
	return err == nil
}

// Email is a sanity check, not RFC 5322: a bare address with a dotted
// domain. Deliverability is the mailer's business.
func Email(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	return at > 0 && strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}
