package bot

import "fmt"

// texts are the deterministic dialogue's sentences, es-CO and en. The
// model writes its own replies; these are what the bot says without it,
// and the fixed answers (refusals, handoff) it gives either way.
var texts = map[string]map[string]string{
	"es": {
		"greet":          "¡Hola! Soy el asistente del spa. Puedo agendarte una cita, mostrarte tus citas o cancelarlas. Por ejemplo: «quiero un masaje mañana a las 3».",
		"services":       "Estos son nuestros servicios:\n%s\n¿Cuál te gustaría y para cuándo?",
		"which_service":  "¿Qué servicio te gustaría? Tenemos:\n%s",
		"which_time":     "¿Para qué día y hora quieres tu %s?",
		"propose":        "%s, %s con %s. ¿Confirmas?",
		"propose_other":  "A esa hora no hay espacio; lo más cercano es %s.\n%s, %s con %s. ¿Confirmas?",
		"none_free":      "No encontré espacio para %s en los próximos días. ¿Quieres que te comunique con una persona?",
		"confirmed":      "¡Listo! Tu cita de %s quedó confirmada para el %s. Te esperamos.",
		"deposit_due":    "Para confirmar tu %s falta el abono de %s. Te comunico con una persona para ayudarte con el pago.",
		"expired":        "Esa reserva ya venció. Escríbeme de nuevo el día y la hora que quieres.",
		"change":         "Listo, la solté. ¿Qué otro día u hora te sirve?",
		"mine_none":      "No tienes citas próximas. ¿Quieres agendar una?",
		"mine":           "Tus próximas citas:\n%s",
		"cancel_none":    "No tienes citas próximas para cancelar.",
		"cancel_which":   "¿Cuál cita quieres cancelar?",
		"cancel_propose": "¿Cancelo tu %s del %s?",
		"cancelled":      "Tu cita de %s del %s quedó cancelada.",
		"kept":           "Perfecto, tu cita sigue en pie.",
		"cutoff":         "Ya no es posible cancelar esa cita por aquí (está muy cerca). Te comunico con una persona.",
		"handoff":        "Te comunico con una persona del equipo; te escribirán por aquí en cuanto puedan.",
		"handoff_wait":   "Una persona del equipo ya va a responderte por aquí.",
		"handoff_taken":  "Una persona del equipo continúa esta conversación; te responderá por aquí.",
		"handoff_back":   "Sigo yo, el asistente del spa. Si necesitas una cita o ver las tuyas, escríbeme.",
		"refuse":         "Solo puedo ayudarte con citas y servicios del spa. ¿Quieres agendar algo?",
		"tap_button":     "Para confirmar toca el botón «Confirmar» del mensaje anterior, o «Cambiar» para otra hora.",
		"thanks":         "¡Con gusto! Aquí estoy si necesitas algo más.",
		"blocked":        "Por seguridad no puedo seguir esta conversación. Si necesitas ayuda, llama al spa.",
		"slow_down":      "Estás escribiendo muy rápido; dame un momento y vuelve a intentarlo.",
		"unavailable":    "Ahora no puedo consultar la agenda. Te comunico con una persona.",
		"btn_confirm":    "Confirmar",
		"btn_change":     "Cambiar",
		"btn_cancel":     "Sí, cancelar",
		"btn_keep":       "No, mantener",
		"with_anyone":    "nuestro equipo",
	},
	"en": {
		"greet":          "Hi! I'm the spa's assistant. I can book an appointment, show your appointments or cancel them. For example: \"a massage tomorrow at 3pm\".",
		"services":       "These are our services:\n%s\nWhich one would you like, and when?",
		"which_service":  "Which service would you like? We have:\n%s",
		"which_time":     "What day and time would you like your %s?",
		"propose":        "%s, %s with %s. Shall I confirm?",
		"propose_other":  "That time is taken; the closest is %s.\n%s, %s with %s. Shall I confirm?",
		"none_free":      "I found no free time for %s in the next days. Would you like to talk to a person?",
		"confirmed":      "Done! Your %s is confirmed for %s. See you then.",
		"deposit_due":    "To confirm your %s a deposit of %s is due. I'm passing you to a person to help with the payment.",
		"expired":        "That hold has expired. Tell me again the day and time you'd like.",
		"change":         "OK, I released it. What other day or time works for you?",
		"mine_none":      "You have no upcoming appointments. Would you like to book one?",
		"mine":           "Your upcoming appointments:\n%s",
		"cancel_none":    "You have no upcoming appointments to cancel.",
		"cancel_which":   "Which appointment would you like to cancel?",
		"cancel_propose": "Shall I cancel your %s on %s?",
		"cancelled":      "Your %s on %s is cancelled.",
		"kept":           "Great, your appointment stays as it is.",
		"cutoff":         "That appointment is too close to cancel here. I'm passing you to a person.",
		"handoff":        "I'm passing you to a person on our team; they will write to you here shortly.",
		"handoff_wait":   "A person on our team will answer you here shortly.",
		"handoff_taken":  "A person on our team is taking over this conversation; they will answer you here.",
		"handoff_back":   "I'm the spa's assistant again. Write to me if you need an appointment or want to see yours.",
		"refuse":         "I can only help with the spa's appointments and services. Would you like to book something?",
		"tap_button":     "To confirm, tap \"Confirm\" on the previous message, or \"Change\" for another time.",
		"thanks":         "You're welcome! I'm here if you need anything else.",
		"blocked":        "For safety I can't continue this conversation. If you need help, please call the spa.",
		"slow_down":      "You're writing very fast; give me a moment and try again.",
		"unavailable":    "I can't reach the calendar right now. I'm passing you to a person.",
		"btn_confirm":    "Confirm",
		"btn_change":     "Change",
		"btn_cancel":     "Yes, cancel",
		"btn_keep":       "No, keep it",
		"with_anyone":    "our team",
	},
}

// say is the sentence key in lang, formatted with args.
func say(lang, key string, args ...any) string {
	t, ok := texts[lang]
	if !ok {
		t = texts["es"]
	}
	if len(args) == 0 {
		return t[key]
	}
	return fmt.Sprintf(t[key], args...)
}
