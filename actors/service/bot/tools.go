package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spa-engine/spa/actors/providers/gemini"
)

// tool is one function the model may call: its declaration, the compiled
// schema its arguments must satisfy, and whether calling it ends the turn
// (it sent the client something).
type tool struct {
	name, description string
	schema            string
	final             bool
	compiled          *jsonschema.Schema
}

// Argument formats shared by the schemas. No tool takes a client, a phone
// or a price: identity comes from the sender, and the calendar decides.
const (
	slugSchema = `{"type":"string","pattern":"^[a-z0-9][a-z0-9_-]{0,63}$"}`
	dateSchema = `{"type":"string","pattern":"^20[0-9]{2}-[01][0-9]-[0-3][0-9]$"}`
	timeSchema = `{"type":"string","pattern":"^[0-2][0-9]:[0-5][0-9]$"}`
	idSchema   = `{"type":"string","pattern":"^[A-Za-z0-9_]{1,64}$"}`
)

// tools is the allow-list; anything else the model calls is refused.
var tools = mustTools([]*tool{
	{name: "list_services", description: "List the spa's services with duration and price.",
		schema: `{"type":"object","properties":{},"additionalProperties":false}`},
	{name: "search_availability", description: "Free start times of a service on a date (studio local time), optionally near a time.",
		schema: `{"type":"object","properties":{"service_id":` + slugSchema + `,"date":` + dateSchema + `,"time":` + timeSchema + `},"required":["service_id","date"],"additionalProperties":false}`},
	{name: "propose_booking", description: "Hold the free start nearest to date+time for the client and send them Confirmar/Cambiar buttons. Nothing is booked until they tap Confirmar.",
		schema: `{"type":"object","properties":{"service_id":` + slugSchema + `,"date":` + dateSchema + `,"time":` + timeSchema + `,"staff_id":` + slugSchema + `},"required":["service_id","date","time"],"additionalProperties":false}`, final: true},
	{name: "my_appointments", description: "The client's upcoming appointments (ids, services, times).",
		schema: `{"type":"object","properties":{},"additionalProperties":false}`},
	{name: "propose_cancel", description: "Ask the client to confirm, with buttons, cancelling one of their appointments.",
		schema: `{"type":"object","properties":{"appointment_id":` + idSchema + `},"required":["appointment_id"],"additionalProperties":false}`, final: true},
	{name: "propose_reschedule", description: "Ask the client to confirm, with buttons, moving one of their appointments to date+time.",
		schema: `{"type":"object","properties":{"appointment_id":` + idSchema + `,"date":` + dateSchema + `,"time":` + timeSchema + `},"required":["appointment_id","date","time"],"additionalProperties":false}`, final: true},
	{name: "product_lookup", description: "Find shop products by name, with price and whether they are in stock.",
		schema: `{"type":"object","properties":{"query":{"type":"string","minLength":2,"maxLength":60}},"required":["query"],"additionalProperties":false}`},
	{name: "handoff", description: "Pass the conversation to a person on the team.",
		schema: `{"type":"object","properties":{"reason":{"type":"string","maxLength":200}},"additionalProperties":false}`, final: true},
	{name: "reply", description: "Send the client a text message.",
		schema: `{"type":"object","properties":{"text":{"type":"string","minLength":1,"maxLength":1000}},"required":["text"],"additionalProperties":false}`, final: true},
})

func mustTools(list []*tool) map[string]*tool {
	c := jsonschema.NewCompiler()
	out := map[string]*tool{}
	for _, t := range list {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(t.schema))
		if err != nil {
			panic(fmt.Sprintf("bot: tool %s schema: %v", t.name, err))
		}
		url := "mem://tools/" + t.name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			panic(err)
		}
		if t.compiled, err = c.Compile(url); err != nil {
			panic(fmt.Sprintf("bot: tool %s schema: %v", t.name, err))
		}
		out[t.name] = t
	}
	return out
}

// declarations are the tools as Gemini reads them.
func declarations() []gemini.Tool {
	var fd []gemini.FunctionDeclaration
	for _, name := range toolOrder {
		t := tools[name]
		fd = append(fd, gemini.FunctionDeclaration{Name: t.name, Description: t.description, ParametersJSONSchema: json.RawMessage(t.schema)})
	}
	return []gemini.Tool{{FunctionDeclarations: fd}}
}

var toolOrder = []string{"list_services", "search_availability", "propose_booking", "my_appointments",
	"propose_cancel", "propose_reschedule", "product_lookup", "handoff", "reply"}

// ErrToolRefused is a call outside the allow-list or whose arguments do
// not fit the tool's schema.
type ErrToolRefused struct{ Tool, Why string }

func (e *ErrToolRefused) Error() string { return "bot: tool " + e.Tool + " refused: " + e.Why }

// checkCall finds the tool and validates args against its schema.
func checkCall(name string, args json.RawMessage) (*tool, error) {
	t, ok := tools[name]
	if !ok {
		return nil, &ErrToolRefused{Tool: name, Why: "not an allowed tool"}
	}
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return nil, &ErrToolRefused{Tool: name, Why: "arguments are not JSON"}
	}
	if err := t.compiled.Validate(inst); err != nil {
		return nil, &ErrToolRefused{Tool: name, Why: "arguments do not match the schema"}
	}
	return t, nil
}
