package bot

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spa-engine/spa/persistence"
)

// Intent is what the deterministic dialogue understood of a message.
type Intent string

// Intents of the deterministic dialogue.
const (
	IntentGreet    Intent = "greet"
	IntentServices Intent = "services"
	IntentBook     Intent = "book"
	IntentMine     Intent = "mine"
	IntentCancel   Intent = "cancel"
	IntentHuman    Intent = "human"
	IntentYes      Intent = "yes"
	IntentNo       Intent = "no"
	IntentThanks   Intent = "thanks"
	IntentUnknown  Intent = "unknown"
)

// Understood is one message read by the deterministic dialogue.
type Understood struct {
	Intent Intent
	Lang   string // "es" or "en"
	// Service is the catalogue service named, if any.
	Service *persistence.Service
	// Day and Clock are the date and time named (zero when absent);
	// ClockSet tells "at midnight" from no time.
	Day      time.Time
	Clock    time.Duration
	ClockSet bool
}

var (
	humanRe    = regexp.MustCompile(`\b(persona|humano|humana|asesor|asesora|agente|alguien real|recepcion|hablar con (alguien|una persona)|human|person|agent|real person|someone|representative|operator|operador)\b`)
	mineRe     = regexp.MustCompile(`\b(mis citas|mi cita|mis reservas|mi reserva|tengo (alguna )?cita|que citas tengo|cuando es mi cita|my appointments?|my bookings?|my reservations?|do i have)\b`)
	cancelRe   = regexp.MustCompile(`\b(cancel|cancela|cancelar|cancelen|anula|anular|no (puedo|podre) ir|can't make it|cannot make it)\w*\b`)
	servicesRe = regexp.MustCompile(`\b(servicios|que (hacen|ofrecen|tienen)|catalogo|precios?|menu|lista|services|what do you (offer|have)|prices?|price list)\b`)
	bookRe     = regexp.MustCompile(`\b(quiero|quisiera|reserv\w*|agend\w*|cita|turno|puedo ir|book\w*|appointment|reserve|schedule|i want|i'd like|id like|can i (get|come))\b`)
	greetRe    = regexp.MustCompile(`^(hola|buenas|buenos dias|buenas tardes|buenas noches|hey|hi|hello|good (morning|afternoon|evening)|que mas|quiubo)\b`)
	yesRe      = regexp.MustCompile(`^(si|sii+|claro|dale|listo|ok|okay|vale|de una|perfecto|confirm\w*|yes|yep|sure|sounds good)\b`)
	noRe       = regexp.MustCompile(`^(no|nop|nope|mejor no|otra hora|cambiar|change|another time)\b`)
	thanksRe   = regexp.MustCompile(`\b(gracias|muchas gracias|thanks|thank you|thx)\b`)
	englishRe  = regexp.MustCompile(`\b(i|i'd|i'm|want|would|like|tomorrow|today|at|the|my|please|hello|hi|book|appointment|cancel|thanks|what|person|can)\b`)
	spanishRe  = regexp.MustCompile(`\b(quiero|manana|hoy|las|el|la|mi|mis|por favor|hola|cita|gracias|que|una|para|con|de)\b`)

	clockRe = regexp.MustCompile(`\b(?:a las|a la|las|at|@)?\s*(\d{1,2})(?:[:h.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.|de la manana|de la tarde|de la noche|in the morning|in the afternoon|in the evening)?\b`)
	// atRe requires a marker, so "2 personas" is not read as 2 o'clock.
	atRe = regexp.MustCompile(`\b(a las|a la|las|at|@)\s*\d|\d\s*(am|pm|a\.m\.|p\.m\.)|\d[:h]\d{2}|\d\s*(de la manana|de la tarde|de la noche)`)
)

var weekdays = map[string]time.Weekday{
	"domingo": time.Sunday, "lunes": time.Monday, "martes": time.Tuesday, "miercoles": time.Wednesday,
	"jueves": time.Thursday, "viernes": time.Friday, "sabado": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// synonyms map words clients use to words in service names (both
// languages: the catalogue is in one, clients write in either).
var synonyms = map[string][]string{
	"massage": {"masaje"}, "masaje": {"massage"}, "masajes": {"masaje", "massage"},
	"nails": {"unas", "manicure"}, "unas": {"nails", "manicure"}, "manicura": {"manicure"},
	"pedicura": {"pedicure"}, "facial": {"facial"}, "limpieza": {"facial", "cleaning"},
	"hair": {"cabello", "pelo"}, "cabello": {"hair"}, "corte": {"haircut", "cut"},
	"waxing": {"depilacion"}, "depilacion": {"waxing", "wax"},
}

// Understand reads msg (already normalised by Normalize) in the studio's
// zone at now against the active services.
func Understand(msg string, services []persistence.Service, now time.Time) Understood {
	u := Understood{Intent: IntentUnknown, Lang: language(msg)}
	u.Service = matchService(msg, services)
	u.Day, u.Clock, u.ClockSet = when(msg, now)
	switch {
	case humanRe.MatchString(msg):
		u.Intent = IntentHuman
	case cancelRe.MatchString(msg):
		u.Intent = IntentCancel
	case mineRe.MatchString(msg):
		u.Intent = IntentMine
	case u.Service != nil || bookRe.MatchString(msg) || (!u.Day.IsZero() && u.ClockSet):
		u.Intent = IntentBook
	case servicesRe.MatchString(msg):
		u.Intent = IntentServices
	case yesRe.MatchString(msg):
		u.Intent = IntentYes
	case noRe.MatchString(msg):
		u.Intent = IntentNo
	case thanksRe.MatchString(msg):
		u.Intent = IntentThanks
	case greetRe.MatchString(msg):
		u.Intent = IntentGreet
	case !u.Day.IsZero() || u.ClockSet:
		u.Intent = IntentBook // "mañana a las 3" after a question
	}
	return u
}

func language(msg string) string {
	en := len(englishRe.FindAllString(msg, -1))
	es := len(spanishRe.FindAllString(msg, -1))
	if en > es {
		return "en"
	}
	return "es"
}

func matchService(msg string, services []persistence.Service) *persistence.Service {
	words := strings.FieldsFunc(msg, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	var want []string
	for _, w := range words {
		if len(w) >= 4 {
			want = append(want, w)
			want = append(want, synonyms[w]...)
		}
	}
	best, bestScore := -1, 0
	for i, sv := range services {
		name := Normalize(sv.Name + " " + sv.ID + " " + sv.Category)
		score := 0
		for _, n := range strings.FieldsFunc(name, func(r rune) bool { return !(r >= 'a' && r <= 'z') }) {
			if len(n) < 4 {
				continue
			}
			for _, w := range want {
				if stem(n) == stem(w) {
					score++
				}
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return nil
	}
	return &services[best]
}

// stem is a crude stem: the first five letters ("masajes" and "masaje").
func stem(w string) string {
	if len(w) > 5 {
		return w[:5]
	}
	return w
}

// when finds a day and a time of day. Hours 1 to 7 without am/pm are
// afternoon ("a las 3" is 15:00: nobody books a massage at 3 am).
func when(msg string, now time.Time) (day time.Time, clock time.Duration, clockSet bool) {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	switch {
	case strings.Contains(msg, "pasado manana") || strings.Contains(msg, "day after tomorrow"):
		day = today.AddDate(0, 0, 2)
	case strings.Contains(msg, "manana") && !strings.Contains(msg, "de la manana") || strings.Contains(msg, "tomorrow"):
		day = today.AddDate(0, 0, 1)
	case strings.Contains(msg, "hoy") || strings.Contains(msg, "today") || strings.Contains(msg, "tonight") || strings.Contains(msg, "esta tarde"):
		day = today
	default:
		for name, wd := range weekdays {
			if regexp.MustCompile(`\b` + name + `\b`).MatchString(msg) {
				d := (int(wd) - int(today.Weekday()) + 7) % 7
				if d == 0 {
					d = 7
				}
				day = today.AddDate(0, 0, d)
				break
			}
		}
	}
	if !atRe.MatchString(msg) {
		return day, 0, false
	}
	for _, m := range clockRe.FindAllStringSubmatch(msg, -1) {
		h, err := strconv.Atoi(m[1])
		if err != nil || h > 23 {
			continue
		}
		mins := 0
		if m[2] != "" {
			mins, _ = strconv.Atoi(m[2])
			if mins > 59 {
				continue
			}
		}
		switch suffix := m[3]; {
		case strings.HasPrefix(suffix, "p") || strings.Contains(suffix, "tarde") || strings.Contains(suffix, "noche") || strings.Contains(suffix, "afternoon") || strings.Contains(suffix, "evening"):
			if h < 12 {
				h += 12
			}
		case strings.HasPrefix(suffix, "a") || strings.Contains(suffix, "manana") || strings.Contains(suffix, "morning"):
			if h == 12 {
				h = 0
			}
		default:
			if h >= 1 && h <= 7 {
				h += 12
			}
		}
		if day.IsZero() {
			day = today
		}
		return day, time.Duration(h)*time.Hour + time.Duration(mins)*time.Minute, true
	}
	return day, 0, false
}
