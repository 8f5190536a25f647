package notify

import (
	"fmt"
	"strings"
	"time"
)

// Dates and durations as a client reads them, in the appointment's local
// time. Written out here rather than with a locale library: two languages,
// and the Colombian forms ("3:00 p. m.") are what clients expect.

var (
	weekdaysES = [...]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
	monthsES   = [...]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
		"septiembre", "octubre", "noviembre", "diciembre"}
)

// formatWhen is t in loc as "martes 8 de diciembre, 3:00 p. m." (es-CO)
// or "Tuesday, December 8, 3:00 PM" (en).
func formatWhen(t time.Time, loc *time.Location, lang string) string {
	t = t.In(loc)
	if lang == LanguageEnglish {
		return t.Format("Monday, January 2, 3:04 PM")
	}
	return fmt.Sprintf("%s %d de %s, %s", weekdaysES[t.Weekday()], t.Day(), monthsES[t.Month()-1], clockES(t))
}

// clockES is "3:00 p. m." / "9:30 a. m.".
func clockES(t time.Time) string {
	suffix := "a. m."
	if t.Hour() >= 12 {
		suffix = "p. m."
	}
	h := t.Hour() % 12
	if h == 0 {
		h = 12
	}
	return fmt.Sprintf("%d:%02d %s", h, t.Minute(), suffix)
}

// formatDuration is d rounded down to the minute: "1 hora 30 minutos",
// "15 minutos" (es-CO) or "1 hour 30 minutes" (en); under a minute reads
// as "menos de un minuto" / "less than a minute".
func formatDuration(d time.Duration, lang string) string {
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	unit := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	words := [...]string{"hora", "horas", "minuto", "minutos", "menos de un minuto"}
	if lang == LanguageEnglish {
		words = [...]string{"hour", "hours", "minute", "minutes", "less than a minute"}
	}
	var parts []string
	if h > 0 {
		parts = append(parts, unit(h, words[0], words[1]))
	}
	if m > 0 {
		parts = append(parts, unit(m, words[2], words[3]))
	}
	if len(parts) == 0 {
		return words[4]
	}
	return strings.Join(parts, " ")
}
