package notify

import "time"

// FormatWhen is t in loc as a client reads it: "martes 8 de diciembre,
// 3:00 p. m." (es-CO) or "Tuesday, December 8, 3:00 PM" (en). The WhatsApp
// bot writes times the way notifications do.
func FormatWhen(t time.Time, loc *time.Location, lang string) string {
	if lang == "en" {
		lang = LanguageEnglish
	}
	return formatWhen(t, loc, lang)
}

// FormatClock is the time of day alone: "3:00 p. m." or "3:00 PM".
func FormatClock(t time.Time, loc *time.Location, lang string) string {
	if lang == LanguageEnglish {
		return t.In(loc).Format("3:04 PM")
	}
	return clockES(t.In(loc))
}
