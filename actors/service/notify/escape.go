package notify

import (
	"strings"
	"unicode"

	"github.com/spa-engine/spa/actors/providers/sender"
)

// Escaping a printed variable for its channel. Variables carry data others
// typed (a service's name, a staff member's name): printed into a message
// they must not change its shape. The template's own text is the admin's
// and is not escaped. An email's HTML part is escaped whole by
// html/template (emailHTML), so its plain text only needs escapeLine.

// escapeLine keeps a value on one line of plain text: control characters
// (newlines included: a value cannot add lines that look like the
// studio's) become spaces, and the bidirectional overrides that can
// reorder what a reader sees are dropped.
func escapeLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return -1
		case unicode.IsControl(r):
			return ' '
		}
		return r
	}, s)
}

// whatsAppMarkup maps WhatsApp's formatting markers (*bold*, _italic_,
// ~strike~, `code`) to look-alikes WhatsApp does not interpret: WhatsApp
// has no escape for them, and a name like "*GRATIS*" must not turn bold.
var whatsAppMarkup = strings.NewReplacer("*", "∗", "_", "ˍ", "~", "∼", "`", "ˋ")

// escapeWhatsApp is a value as plain WhatsApp text.
func escapeWhatsApp(s string) string { return whatsAppMarkup.Replace(escapeLine(s)) }

// escaperFor is the escaper of a printed variable on ch.
func escaperFor(ch sender.Channel) func(string) string {
	if ch == sender.ChannelWhatsApp {
		return escapeWhatsApp
	}
	return escapeLine
}
