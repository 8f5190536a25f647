package bot

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Vault maps the placeholders Scrub put in a text to what they replaced.
// It never leaves the turn: the model sees placeholders, the client gets
// its own values back in the outgoing text (Restore).
type Vault map[string]string

var (
	emailRe = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	// cardRe: 13 to 19 digits, optionally grouped by spaces or dashes.
	cardRe = regexp.MustCompile(`\b\d(?:[ \-]?\d){12,18}\b`)
	// nitRe: a Colombian NIT, 9 digits (dots allowed) and its check digit.
	nitRe = regexp.MustCompile(`\b\d{3}\.?\d{3}\.?\d{3}\s?-\s?\d\b`)
	// docRe: a cédula (6 to 10 digits, dots allowed) shortly after a word
	// that names it; a bare number is not assumed to be one.
	docRe = regexp.MustCompile(`(?i)\b(c[eé]dula|c\.?\s?c\.?|documento|identificaci[oó]n|doc\.?|id|ti|tarjeta de identidad)\b[^0-9\n]{0,20}(\d{1,3}(?:\.?\d{3}){1,3}|\d{6,10})\b`)
	// phoneRe finds candidates; phonenumbers decides.
	phoneRe = regexp.MustCompile(`\+?\(?\d[\d ()\-.]{5,18}\d`)
)

// Scrub replaces personal data in text by placeholders ([EMAIL_1],
// [CARD_1], [NIT_1], [DOC_1], [PHONE_1]) before anything reaches the model:
// emails, card numbers that pass Luhn, NITs whose mod-11 check digit is
// right, cédulas next to a word that names them, and numbers
// libphonenumber calls valid (Colombia unless they carry a country code).
// v collects what was replaced; the same value gets the same placeholder.
func Scrub(text string, v Vault) string {
	text = replace(text, emailRe, "EMAIL", v, nil)
	text = replace(text, cardRe, "CARD", v, luhn)
	text = replace(text, nitRe, "NIT", v, nitValid)
	text = docRe.ReplaceAllStringFunc(text, func(m string) string {
		sub := docRe.FindStringSubmatchIndex(m)
		return m[:sub[4]] + v.put("DOC", m[sub[4]:sub[5]])
	})
	text = replace(text, phoneRe, "PHONE", v, phoneValid)
	return text
}

func replace(text string, re *regexp.Regexp, kind string, v Vault, ok func(string) bool) string {
	return re.ReplaceAllStringFunc(text, func(m string) string {
		if ok != nil && !ok(m) {
			return m
		}
		return v.put(kind, m)
	})
}

// put returns the placeholder of value, adding one if new.
func (v Vault) put(kind, value string) string {
	for k, x := range v {
		if x == value && strings.HasPrefix(k, "["+kind+"_") {
			return k
		}
	}
	n := 1
	for k := range v {
		if strings.HasPrefix(k, "["+kind+"_") {
			n++
		}
	}
	k := fmt.Sprintf("[%s_%d]", kind, n)
	v[k] = value
	return k
}

// Restore puts the client's own values back into an outgoing text.
func Restore(text string, v Vault) string {
	for k, x := range v {
		text = strings.ReplaceAll(text, k, x)
	}
	return text
}

func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// luhn is the card number checksum.
func luhn(s string) bool {
	d := digitsOf(s)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := range len(d) {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// nitWeights are DIAN's weights, from the rightmost digit of the number.
var nitWeights = []int{3, 7, 13, 17, 19, 23, 29, 37, 41, 43, 47, 53, 59, 67, 71}

// nitValid checks a NIT's mod-11 check digit (the digit after the dash).
func nitValid(s string) bool {
	d := digitsOf(s)
	if len(d) < 2 || len(d)-1 > len(nitWeights) {
		return false
	}
	num, check := d[:len(d)-1], int(d[len(d)-1]-'0')
	sum := 0
	for i := range len(num) {
		sum += int(num[len(num)-1-i]-'0') * nitWeights[i]
	}
	r := sum % 11
	if r > 1 {
		r = 11 - r
	}
	return r == check
}

// phoneValid asks libphonenumber whether a candidate is a real number.
func phoneValid(s string) bool {
	if n := len(digitsOf(s)); n < 7 || n > 15 {
		return false
	}
	num, err := phonenumbers.Parse(s, "CO")
	return err == nil && phonenumbers.IsValidNumber(num)
}
