package bot

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Verdict is the injection screen's judgement of one message.
type Verdict struct {
	Score   int
	Reasons []string
	// Blocked: the message is not sent to the model; the bot answers with
	// a fixed refusal and counts a strike.
	Blocked bool
}

// blockAt is the score from which a message is blocked (tuned on the
// "tune" split of testdata/eval.jsonl, checked on "heldout": eval_test.go).
const blockAt = 4

type signal struct {
	re     *regexp.Regexp
	weight int
	reason string
}

// The phrases are matched on the normalised text (lower case, no accents,
// leetspeak undone), Spanish and English.
var signals = []signal{
	{regexp.MustCompile(`\b(ignore|disregard|forget|override|bypass|skip)\b.{0,30}\b(instruction|instructions|rules|prompt|guidelines|directives|restrictions|policies|programming|context)\b`), 5, "override_en"},
	{regexp.MustCompile(`\b(ignora|ignore|olvida|olvidate|omite|descarta|salta|anula|desobedece|deja de seguir)\w*\b.{0,30}\b(instrucciones|reglas|indicaciones|prompt|normas|restricciones|politicas|directrices|programacion)\b`), 5, "override_es"},
	{regexp.MustCompile(`\b(system|initial|hidden|secret|original|developer)\s+(prompt|message|instructions)\b`), 4, "prompt_probe_en"},
	{regexp.MustCompile(`\b(prompt|mensaje|instrucciones)\s+(del sistema|de sistema|inicial(es)?|ocult[oa]s?|secret[oa]s?|original(es)?)\b`), 4, "prompt_probe_es"},
	{regexp.MustCompile(`\b(reveal|show|print|repeat|output|display|leak|tell me|give me|write out|dump)\b.{0,30}\b(instructions|prompt|configuration|system message|guidelines|text above|words above|everything above)\b`), 4, "leak_en"},
	{regexp.MustCompile(`\b(revela|muestra|muestrame|imprime|repite|dime|escribe|dame|copia|ensename|cuentame)\b.{0,30}\b(instrucciones|prompt|configuracion|texto anterior|mensaje del sistema|directrices|lo de arriba)\b`), 4, "leak_es"},
	{regexp.MustCompile(`\b(you are now|from now on you are|you're now|act as (a|an|the|if you)|pretend (to be|you are)|roleplay as|behave as|simulate being|you will now be)\b`), 4, "persona_en"},
	{regexp.MustCompile(`\b(ahora eres|a partir de ahora (eres|seras|vas a ser)|actua como|finge (ser|que eres)|haz de cuenta que eres|comportate como|simula ser|hazte pasar por|juega a ser)\b`), 4, "persona_es"},
	{regexp.MustCompile(`\b(jailbreak|dan mode|do anything now|developer mode|god mode|modo desarrollador|modo dios|sin restricciones|without (any )?restrictions|no restrictions|unfiltered|sin filtros?|uncensored|sin censura)\b`), 4, "jailbreak"},
	{regexp.MustCompile(`\b(new|updated|real|actual|true) (instructions|rules|task|objective)\b|\b(nuevas?|verdaderas?|reales?) (instrucciones|reglas|tarea|orden(es)?)\b`), 3, "new_rules"},
	{regexp.MustCompile(`\b(admin|administrator|root|sudo|superuser|developer|desarrollador|administrador|soporte tecnico de openai|google engineer|ingeniero de google)\b.{0,40}\b(access|acceso|mode|modo|override|command|comando|privileges|privilegios|autoriz\w*|authoriz\w*)\b`), 3, "authority"},
	{regexp.MustCompile(`\b(book|reserva|agenda|cancela|cancel|confirm|confirma)\w*\b.{0,40}\b(for|para|a nombre de|de)\b.{0,20}\b(every(one|body)|all (clients|users|appointments)|todos (los|las)|todas las citas|otro cliente|another client|other clients|otros clientes)\b`), 3, "excessive_agency"},
	{regexp.MustCompile(`\b(base64|rot13|hex|hexadecimal|encoded|codificad[oa]|decode|decodifica|descifra)\b`), 1, "encoding"},
	{regexp.MustCompile(`\b(password|contrasena|api key|apikey|token|credentials|credenciales|secret key|clave secreta|database|base de datos|sql|other (clients?|customers?|users?)('s)? (phone|data|numbers?|emails?)|datos de otros|telefonos? de (otros|los) clientes)\b`), 2, "data_probe"},
	{regexp.MustCompile(`\b(canary|canario)\b`), 3, "canary_probe"},
	{regexp.MustCompile(`\b(do not|don't|dont|never|nunca|no)\b.{0,15}\b(refus\w*|declin\w*|say no|te niegues|se niega|rechaces|negarte)\b|\bno (te niegues|puedes negarte|rechaces)\b`), 2, "no_refusal"},
	{regexp.MustCompile(`\b(respond|answer|reply|responde|contesta)\b.{0,20}\b(only|unicamente|solo|solamente)\b.{0,20}\b(with|con)\b.{0,20}\b(yes|si|ok|true|json|code|codigo)\b`), 2, "format_forcing"},
	// Overrides said without naming "instructions": the bot's earlier
	// context, what it was told or programmed, declared void.
	{regexp.MustCompile(`\b(ignora\w*|olvida\w*|omite|descarta|anula|no hagas caso|desobedece|ignore|disregard|forget|drop|override)\b.{0,40}\b(reglas?|instruc\w*|indicacion\w*|programacion|directrices|context|directives?)\b|\b(previous|prior|earlier|previas?|anteriores|original) (instructions|directives|rules|context|prompt|reglas|instrucciones|indicaciones|directrices)\b.{0,30}\b(void|cancel\w*|no longer|null|anulad\w*|ya no)|\b(ya no aplican|no longer appl\w*|applies anymore|are void|quedan anuladas)\b`), 5, "override"},
	{regexp.MustCompile(`\b((lo|el texto|texto exacto|exacto) que te (dijeron|programaron|dieron|indicaron)|you were (told|given|programmed)|te (programaron|configuraron)|your (programming|configuration|hidden|internal)|tu configuracion|configuracion interna|internal configuration|new session|nueva sesion)\b`), 3, "told_context"},
	// "Ignore the above" is the classic opening, but a client may also
	// correct a typo with it: it needs another signal.
	{regexp.MustCompile(`\b(ignore|disregard|forget|ignora|olvida)\b (all |everything )?(of )?(the above|lo de arriba)\b`), 3, "ignore_above"},
	// Role play: a new identity or a game without rules.
	{regexp.MustCompile(`\b(juguemos|let'?s play|imagina que (no )?eres|imagine you'?re|tu personaje|your character|in character|en tu papel|staying in character|eres un actor|you'?re an actor|vas a ser|you'?re (now )?(aim|dan)|no tiene(s)? reglas|has no rules|have no rules|sin limites|no limits|without limits|sin reglas)\b`), 3, "roleplay"},
	// Extraction: the text before the conversation, the canary, the tools.
	{regexp.MustCompile(`\b(repite|repeat|copia\w*|copies|paste|output|escribe|write|traduce|translate|resume|summarize|imprime|print)\b.{0,40}\b(texto|text|instructions|instrucciones|everything|todo lo que)\b.{0,40}\b(arriba|above|before|antes|recibiste|received|given|dieron|verbatim|palabra por palabra|word for word)\b`), 4, "extraction"},
	{regexp.MustCompile(`\b(marcador|marker) (interno|secreto|internal|secret)|\b(internal|secret|hidden) marker\b|\b(herramientas|tools)\b.{0,40}\b(parametros|schemas?|json)\b`), 4, "internals_probe"},
	{regexp.MustCompile(`\b(propose_\w+|my_appointments|list_services|search_availability|product_lookup|client_id|appointment_id)\b`), 4, "tool_name"},
	// Excessive agency: everyone's data or bookings, confirmations without
	// the button, bookings for third parties or in bulk.
	{regexp.MustCompile(`\b(telefonos?|numeros?|correos?|emails?|datos|agenda|citas|schedule|phone numbers|details|bookings|appointments|lista)\b.{0,30}\b(todas las clientas|todos los clientes|todas las citas|every (client|customer)|all (the )?(clients|customers)|everyone'?s?|de la clienta|of the client|de todos)\b|\b(customer emails|client list|lista de clientas?|everyone'?s (schedule|bookings|appointments|data))\b`), 4, "bulk_data"},
	{regexp.MustCompile(`\b(cancela\w*|cancel|mueve|move|bloquea|block|borra|delete)\b.{0,15}\b(todas las|all|all the|all of|every|toda la|the whole|whole)\s+(\w+'s\s+)?(citas|appointments?|bookings?|agenda|calendar|semana|week)\b`), 4, "agency"},
	{regexp.MustCompile(`\b(sin botone?s?|no (me mandes )?botones|no buttons|skip the buttons|confirm it yourself|confirmalo tu mismo|ya la aprobe|already approved)\b`), 4, "no_button"},
	{regexp.MustCompile(`\b(y|and) (confirmala|confirmalo|confirm it)\b`), 2, "self_confirm"},
	{regexp.MustCompile(`\b([5-9]|\d{2,}) (citas|appointments|slots|reservas|back-to-back)\b`), 2, "bulk_booking"},
	{regexp.MustCompile(`\b(nombres? de (clientes )?(distintos|diferentes)|a nombre de (diferentes|otra) personas?|different (client )?names|someone else'?s name|sin preguntar|without asking)\b`), 2, "third_party"},
	{regexp.MustCompile(`\b(citas|bookings|appointments|reservas|cita)\s+(del|de|for)\s+(the\s+)?(telefono|phone|numero|cliente|client|la senora|el senor|mrs|mr|los otros|otros|other)\b|\bmrs?\.? \w+'s appointment\b|\b(other clients'?|otros clientes)\b`), 4, "other_client"},
	{regexp.MustCompile(`\b(book|reserva|agenda)\w*\b.{0,25}\+?\d[\d ]{8,}\d`), 2, "booking_for_number"},
	{regexp.MustCompile(`\b(descuento del 100|100 ?% (de )?(discount|descuento)|descuento de 100|gratis sin abono|free appointment)\b|\b100 ?%`), 3, "free_ride"},
	// Social engineering: a claimed authority asking for what it has no
	// business asking the bot.
	{regexp.MustCompile(`\b(soy|i'?m|i am|this is|te escribe|habla)\b.{0,25}\b(la|el|the|a|an|de la|from)?\s*(administrador\w*|duen[oa]|gerente|desarrollador\w*|recepcionista nueva|policia|police officer|manager|owner|developer|new receptionist|soporte|support)\b|\b(trabajo en|work at|from) (google|meta|openai|whatsapp)\b|\b(said|told me) you (could|can|would)\b|\bme dijo que (tu|usted) (me )?(podias|podia|puedes|puede)\b|\b(debug mode|modo de depuracion|auditando|auditing)\b`), 2, "authority_claim"},
	{regexp.MustCompile(`\b(telefono|numero|phone number|celular)\b.{0,20}\b(personal|privado|de la masajista|de la terapeuta)\b|\bpersonal phone\b|\b(autoriza|authorize)\b.{0,20}\b(descuento|discount)\b`), 3, "private_data"},
	{regexp.MustCompile(`\b(reglas|instrucciones|rules|instructions) secret\w*\b|\bsecret (rules|instructions)\b`), 4, "secret_rules"},
	{regexp.MustCompile(`\b(rules|instructions|reglas|instrucciones)( that)? (you were given|you have been given|you got|te (dieron|pusieron|programaron)|tienes)\b`), 3, "given_rules"},
	// Another language's override (Portuguese, French, German).
	{regexp.MustCompile(`\b(ignore[sz]?|ignoriere|oublie|vergiss|esquece)\b.{0,40}\b(instructions|instrucoes|anweisungen|regles|regeln|regras)\b|\b(systemprompt|prompt systeme|prompt do sistema)\b`), 5, "override_other"},
	// Text addressed to the bot inside a name, a note or a quote.
	{regexp.MustCompile(`\b(nota para (el bot|la ia)|note to the (bot|ai|assistant)|p\.?[ds]\.? (para la ia|for the ai)|nota (interna|del administrador)|(internal|admin|manager) note|asunto dice|subject says|notas de la cita|booking notes|new order|nueva orden)\b|(^|[:,'"(] ?)(bot|ia|ai|asistente|assistant|sistema|system)\s*[,:]`), 2, "addressed_to_bot"},
	{regexp.MustCompile(`\b(chiste ofensivo|insulting joke|cerro para siempre|closed for good|answer yes to everything|responde solo con .?si)\b`), 3, "abuse_payload"},
	// Talk about the bot's own rules: not enough alone ("what are your
	// rules for kids?"), it adds up with any other signal.
	{regexp.MustCompile(`\b(tus|your|sus) (instrucciones|reglas|indicaciones|normas|politicas|instructions|rules|guidelines|restrictions|restricciones|limits|limites|prompt)\b`), 2, "its_rules"},
}

// unless: a signal does not count when its exception matches too ("cancel
// every appointment I have" is the client's own bookings).
var unless = map[string]*regexp.Regexp{
	"agency": regexp.MustCompile(`\b(i have|i've got|que tengo|mias|of mine|mine)\b`),
}

// structural markers of chat templates and fake role turns.
var structural = regexp.MustCompile(`(<\|?(im_start|im_end|system|endoftext|assistant|user)\|?>|\[/?inst\]|\[/?system\]|<</?sys>>|</?system>|^\s*(system|assistant|sistema|asistente)\s*:|"role"\s*:\s*"(system|model|assistant)"|###\s*(instruction|system|instruccion)|-{3,}\s*(end|fin|begin|inicio)|<!--|[.!?]\s+(system|sistema)\s*:)`)

// Screen scores text for prompt injection: it normalises it (NFKC, no
// zero-width or bidi characters, no accents, leetspeak undone, spaced
// letters joined), also scores any base64 or hex it decodes, and adds
// structural signals (chat-template tokens, fake role turns). Ordinary
// booking messages score 0.
func Screen(text string) Verdict {
	var v Verdict
	seen := map[string]bool{}
	add := func(reason string, w int) {
		if !seen[reason] {
			seen[reason] = true
			v.Score += w
			v.Reasons = append(v.Reasons, reason)
		}
	}
	if hidden(text) {
		add("hidden_chars", 2)
	}
	texts := []string{text}
	for _, d := range decoded(text) {
		add("decoded_payload", 1)
		texts = append(texts, d)
	}
	for _, t := range texts {
		n := Normalize(t)
		variants := []string{n, joinSpaced(n), unLeet(n)}
		for i, variant := range variants {
			if slices.Contains(variants[:i], variant) {
				continue // most text has nothing spaced out nor leet: the same string again
			}
			for _, s := range signals {
				if s.re.MatchString(variant) && (unless[s.reason] == nil || !unless[s.reason].MatchString(variant)) {
					add(s.reason, s.weight)
				}
			}
			if structural.MatchString(variant) {
				add("structural", 4)
			}
		}
		// Fake role turns start a line; Normalize joined the lines.
		for _, line := range strings.Split(t, "\n") {
			if structural.MatchString(Normalize(line)) {
				add("structural", 4)
			}
		}
	}
	if mixedScript(text) {
		add("mixed_script", 2)
	}
	v.Blocked = v.Score >= blockAt
	return v
}

// invisible are zero-width and bidirectional control characters.
func invisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2069, r == 0xFEFF, r == 0x00AD, r == 0x180E:
		return true
	}
	return false
}

// hidden reports invisible characters, but not the zero-width joiner
// that builds emoji (💆‍♀️): only one between letters counts.
func hidden(s string) bool {
	rs := []rune(s)
	for i, r := range rs {
		if !invisible(r) {
			continue
		}
		if r == 0x200D && (i == 0 || !unicode.IsLetter(rs[i-1])) {
			continue
		}
		return true
	}
	return false
}

// stripMarks removes accents. A chain keeps state, so each call makes its
// own (sharing one is a data race).
func stripMarks() transform.Transformer {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}

// confusables are Cyrillic and Greek letters drawn like Latin ones
// ("іgnоrе" with Cyrillic і, о, е); NFKC leaves them alone.
var confusables = map[rune]rune{
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's', 'һ': 'h', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T', 'Х': 'X', 'І': 'I', 'Ј': 'J', 'Ѕ': 'S',
	'α': 'a', 'ε': 'e', 'ο': 'o', 'ρ': 'p', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'τ': 't', 'υ': 'u',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O', 'Ρ': 'P', 'Τ': 'T', 'Χ': 'X', 'Υ': 'Y', 'Ζ': 'Z',
}

// mixedScript reports a word mixing Latin letters with Cyrillic or Greek
// ones: no es-CO or English client writes that, a homoglyph attack does.
func mixedScript(s string) bool {
	for _, w := range strings.Fields(s) {
		latin, other := false, false
		for _, r := range w {
			switch {
			case unicode.Is(unicode.Latin, r):
				latin = true
			case unicode.Is(unicode.Cyrillic, r), unicode.Is(unicode.Greek, r):
				other = true
			}
		}
		if latin && other {
			return true
		}
	}
	return false
}

// Normalize is the text the screen and the deterministic dialogue read:
// NFKC (full-width and styled letters become plain), invisible characters
// removed, Cyrillic and Greek look-alikes read as Latin, lower case,
// accents removed, whitespace collapsed.
func Normalize(s string) string {
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
		}
		if l, ok := confusables[r]; ok {
			return l
		}
		return r
	}, s)
	s = strings.ToLower(s)
	if t, _, err := transform.String(stripMarks(), s); err == nil {
		s = t
	}
	return strings.Join(strings.Fields(s), " ")
}

var leet = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "i", "|", "l", "+", "t")

// unLeet undoes leetspeak ("1gn0r3" → "ignore"); only used for scoring,
// since it would also turn "a las 3" into "a las e".
func unLeet(s string) string { return leet.Replace(s) }

var spacedRe = regexp.MustCompile(`\b(\w[ .\-_*]){3,}\w\b`)

// joinSpaced joins letters written apart ("i g n o r a" → "ignora").
func joinSpaced(s string) string {
	return spacedRe.ReplaceAllStringFunc(s, func(m string) string {
		return strings.Map(func(r rune) rune {
			if r == ' ' || r == '.' || r == '-' || r == '_' || r == '*' {
				return -1
			}
			return r
		}, m)
	})
}

var (
	b64Re = regexp.MustCompile(`[A-Za-z0-9+/_\-]{16,}={0,2}`)
	hexRe = regexp.MustCompile(`\b(?:[0-9a-fA-F]{2}[ :]?){8,}\b`)
)

// decoded returns the printable texts hidden as base64 or hex in s.
func decoded(s string) []string {
	var out []string
	for _, m := range b64Re.FindAllString(s, 8) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(m); err == nil && printable(b) {
				out = append(out, string(b))
				break
			}
		}
	}
	for _, m := range hexRe.FindAllString(s, 8) {
		h := strings.NewReplacer(" ", "", ":", "").Replace(m)
		if b, err := hex.DecodeString(h); err == nil && printable(b) {
			out = append(out, string(b))
		}
	}
	return out
}

func printable(b []byte) bool {
	if len(b) < 6 || !utf8.Valid(b) {
		return false
	}
	letters := 0
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\t' {
			return false
		}
		if unicode.IsLetter(r) || r == ' ' {
			letters++
		}
	}
	return letters*10 >= utf8.RuneCount(b)*7
}
