package bot

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bot's series (docs/bot.md).
type Metrics struct {
	messages  prometheus.Counter
	started   prometheus.Counter
	handoffs  prometheus.Counter
	blockedBy *prometheus.CounterVec
	proposals *prometheus.CounterVec
	bookings  prometheus.Counter
	intents   *prometheus.CounterVec
	tools     *prometheus.CounterVec
	budget    *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounter(prometheus.CounterOpts{Name: "spa_bot_messages_total",
			Help: "Inbound WhatsApp messages the bot handled."}),
		started: prometheus.NewCounter(prometheus.CounterOpts{Name: "spa_bot_conversations_started_total",
			Help: "Conversations started: a message to a phone with no conversation, or one idle past the expiry."}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{Name: "spa_bot_handoffs_total",
			Help: "Conversations handed to a person."}),
		blockedBy: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_bot_blocked_total",
			Help: "Messages the bot refused, by reason (injection, velocity, daily_cap, blocked_phone, output)."}, []string{"reason"}),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_bot_proposals_total",
			Help: "Proposals sent with buttons, by kind (book, cancel, reschedule)."}, []string{"kind"}),
		bookings: prometheus.NewCounter(prometheus.CounterOpts{Name: "spa_bot_bookings_total",
			Help: "Appointments confirmed by a client's tap in WhatsApp."}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_bot_intents_total",
			Help: "Messages the deterministic dialogue answered, by intent."}, []string{"intent"}),
		tools: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_bot_tool_calls_total",
			Help: "Tool calls the model asked for, by tool and outcome (ok, refused)."}, []string{"tool", "outcome"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spa_bot_model_budget_refusals_total",
			Help: "Turns answered without the model because a cost cap was reached, by cap (phone_tokens, global_spend)."}, []string{"cap"}),
	}
	for _, c := range []prometheus.Collector{m.messages, m.started, m.handoffs, m.blockedBy, m.proposals, m.bookings, m.intents, m.tools, m.budget} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// The methods accept a nil receiver.

func (m *Metrics) message() {
	if m != nil {
		m.messages.Inc()
	}
}

func (m *Metrics) start() {
	if m != nil {
		m.started.Inc()
	}
}

func (m *Metrics) handoff() {
	if m != nil {
		m.handoffs.Inc()
	}
}

func (m *Metrics) blocked(reason string) {
	if m != nil {
		m.blockedBy.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) proposal(kind string) {
	if m != nil {
		m.proposals.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) booked() {
	if m != nil {
		m.bookings.Inc()
	}
}

func (m *Metrics) intent(i string) {
	if m != nil {
		m.intents.WithLabelValues(i).Inc()
	}
}

func (m *Metrics) overBudget(limit string) {
	if m != nil {
		m.budget.WithLabelValues(limit).Inc()
	}
}

func (m *Metrics) tool(name, outcome string) {
	if m != nil {
		m.tools.WithLabelValues(name, outcome).Inc()
	}
}

// Blocked counts a message refused before it reached the bot (a velocity
// limit, the daily cap), by reason.
func (m *Metrics) Blocked(reason string) { m.blocked(reason) }
