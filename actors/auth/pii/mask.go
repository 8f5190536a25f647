package pii

import (
	"strings"
	"unicode/utf8"
)

// MaskEmail hides an email address for logs and for roles that do not need
// it, keeping the first character of the local part and of the domain and the
// top-level domain: "maria.perez@example.com" becomes "m***@e***.com".
// Anything that is not shaped like an address becomes "***".
func MaskEmail(email string) string {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "***"
	}
	local, domain := email[:at], email[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	if dot <= 0 || dot == len(domain)-1 {
		return firstRune(local) + "***@***"
	}
	return firstRune(local) + "***@" + firstRune(domain) + "***" + domain[dot:]
}

// MaskDocument hides an identity document number, keeping its last four
// characters when it has at least eight, its last two when it has four to
// seven, and nothing when shorter: "1.234.567.890" becomes "******7890".
// Separators are dropped first so they do not count.
func MaskDocument(doc string) string {
	n := Normalize(FieldDocument, doc)
	l := utf8.RuneCountInString(n)
	keep := 0
	switch {
	case l >= 8:
		keep = 4
	case l >= 4:
		keep = 2
	}
	if l == 0 {
		return "***"
	}
	r := []rune(n)
	return strings.Repeat("*", l-keep) + string(r[l-keep:])
}

// MaskAll hides a value completely, for fields such as birth dates and
// clinical notes that are never shown in part; the result does not even
// reveal the length.
func MaskAll(string) string { return "***" }

func firstRune(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return "*"
	}
	return s[:size]
}
