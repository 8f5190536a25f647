package bot

import (
	"encoding/base64"
	"encoding/hex"
	"regexp"
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
// training split of testdata/screen, checked on the held-out split).
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
	{regexp.MustCompile(`\b(reveal|show|print|repeat|output|display|leak|tell me|give me|write out|dump)\b.{0,30}\b(instructions|prompt|rules|configuration|system message|guidelines|text above|words above|everything above)\b`), 4, "leak_en"},
	{regexp.MustCompile(`\b(revela|muestra|muestrame|imprime|repite|dime|escribe|dame|copia|ensename|cuentame)\b.{0,30}\b(instrucciones|prompt|reglas|configuracion|texto anterior|mensaje del sistema|directrices|lo de arriba)\b`), 4, "leak_es"},
	{regexp.MustCompile(`\b(you are now|from now on you are|you're now|act as|pretend (to be|you are)|roleplay as|behave as|simulate being|you will now be)\b`), 3, "persona_en"},
	{regexp.MustCompile(`\b(ahora eres|a partir de ahora (eres|seras|vas a ser)|actua como|finge (ser|que eres)|haz de cuenta que eres|comportate como|simula ser|hazte pasar por|juega a ser)\b`), 3, "persona_es"},
	{regexp.MustCompile(`\b(jailbreak|dan mode|do anything now|developer mode|god mode|modo desarrollador|modo dios|sin restricciones|without (any )?restrictions|no restrictions|unfiltered|sin filtros?|uncensored|sin censura)\b`), 4, "jailbreak"},
	{regexp.MustCompile(`\b(new|updated|real|actual|true) (instructions|rules|task|objective)\b|\b(nuevas?|verdaderas?|reales?) (instrucciones|reglas|tarea|orden(es)?)\b`), 3, "new_rules"},
	{regexp.MustCompile(`\b(admin|administrator|root|sudo|superuser|developer|desarrollador|administrador|soporte tecnico de openai|google engineer|ingeniero de google)\b.{0,40}\b(access|acceso|mode|modo|override|command|comando|privileges|privilegios|autoriz\w*|authoriz\w*)\b`), 3, "authority"},
	{regexp.MustCompile(`\b(book|reserva|agenda|cancela|cancel|confirm|confirma)\w*\b.{0,40}\b(for|para|a nombre de|de)\b.{0,20}\b(every(one|body)|all (clients|users|appointments)|todos (los|las)|todas las citas|otro cliente|another client|other clients|otros clientes)\b`), 3, "excessive_agency"},
	{regexp.MustCompile(`\b(base64|rot13|hex|hexadecimal|encoded|codificad[oa]|decode|decodifica|descifra)\b`), 1, "encoding"},
	{regexp.MustCompile(`\b(password|contrasena|api key|apikey|token|credentials|credenciales|secret key|clave secreta|database|base de datos|sql|other (clients?|customers?|users?)('s)? (phone|data|numbers?|emails?)|datos de otros|telefonos? de (otros|los) clientes)\b`), 2, "data_probe"},
	{regexp.MustCompile(`\b(canary|canario)\b`), 3, "canary_probe"},
	{regexp.MustCompile(`\b(do not|don't|dont|never|no)\b.{0,15}\b(refuse|decline|say no|te niegues|rechaces|negarte)\b|\bno (te niegues|puedes negarte|rechaces)\b`), 2, "no_refusal"},
	{regexp.MustCompile(`\b(respond|answer|reply|responde|contesta)\b.{0,20}\b(only|unicamente|solo|solamente)\b.{0,20}\b(with|con)\b.{0,20}\b(yes|si|ok|true|json|code|codigo)\b`), 2, "format_forcing"},
}

// structural markers of chat templates and fake role turns.
var structural = regexp.MustCompile(`(<\|?(im_start|im_end|system|endoftext|assistant|user)\|?>|\[/?inst\]|\[/?system\]|<</?sys>>|</?system>|^\s*(system|assistant|sistema|asistente)\s*:|"role"\s*:\s*"(system|model|assistant)"|###\s*(instruction|system|instruccion)|-{3,}\s*(end|fin|begin|inicio))`)

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
		for _, variant := range []string{n, joinSpaced(n), unLeet(n)} {
			for _, s := range signals {
				if s.re.MatchString(variant) {
					add(s.reason, s.weight)
				}
			}
			if structural.MatchString(variant) {
				add("structural", 3)
			}
		}
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

func hidden(s string) bool { return strings.ContainsFunc(s, invisible) }

// stripMarks removes accents. A chain keeps state, so each call makes its
// own (sharing one is a data race).
func stripMarks() transform.Transformer {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}

// Normalize is the text the screen and the deterministic dialogue read:
// NFKC (full-width and styled letters become plain), invisible characters
// removed, lower case, accents removed, whitespace collapsed.
func Normalize(s string) string {
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		if invisible(r) {
			return -1
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
