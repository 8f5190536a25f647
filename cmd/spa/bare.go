package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/oklog/ulid/v2"

	"github.com/spa-engine/spa/actors/service/fault"
	"github.com/spa-engine/spa/gateway"
	"github.com/spa-engine/spa/gateway/apierr"
)

// bareCommand is `spa bare --http-addr ADDR`, left out of the usage text:
// it is a benchmark instrument, not a node. It answers every
// POST /v1/appointments with the same 409 slot_taken refusal on the
// gateway's HTTP stack and nothing else (no middleware, token check,
// idempotency record, actor or database), so `spa loadgen --scenario
// ceiling` against it measures the most requests per second that stack and
// the generator allow on this machine: the bare-HTTP ceiling `make bench`
// sets the engines' hot runs against.
func bareCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", "127.0.0.1:18481", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bare: unexpected argument %q", fs.Arg(0))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("bare: --http-addr: %w", err)
	}
	app := newBareApp()
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			return fmt.Errorf("bare: shutdown: %w", err)
		}
		return nil
	case err := <-served:
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
}

// newBareApp is the ceiling's Fiber app. Its settings are the gateway's
// (gateway.New with the defaults `spa serve` passes): the same body limit
// and socket timeouts, immutable strings, no prefork, Fiber's default JSON
// encoder, errors rendered by apierr. Only the handlers differ.
func newBareApp() *fiber.App {
	app := fiber.New(fiber.Config{
		ErrorHandler:          func(c *fiber.Ctx, err error) error { return apierr.Render(c, nil, err) },
		BodyLimit:             gateway.DefaultBodyLimit,
		ReadTimeout:           gateway.DefaultReadTimeout,
		WriteTimeout:          gateway.DefaultWriteTimeout,
		IdleTimeout:           gateway.DefaultIdleTimeout,
		DisableStartupMessage: true,
		Immutable:             true,
	})
	// .ci/bench.sh waits for /readyz, as it does for a node.
	app.Get("/readyz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ready"}) })
	app.Post("/v1/appointments", answerTaken)
	return app
}

// answerTaken answers a claim with the fixed refusal, whatever it asked.
func answerTaken(c *fiber.Ctx) error {
	c.Status(fiber.StatusConflict)
	c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
	c.Response().SetBodyRaw(bareRefusal) // shared and never written to
	return nil
}

// bareRefusal is the body of every answer: a slot_taken refusal as the
// gateway writes it (apierr's error body with the booking's alternatives),
// made once. It carries the five alternatives a refusal offers at most, so
// its size is a real refusal's.
var bareRefusal = mustMarshal(bareBody{Error: bareError{
	Code:      fault.CodeSlotTaken,
	Message:   fault.New(fault.CodeSlotTaken, "").Message,
	RequestID: ulid.Make().String(),
	Details:   bareDetails{Alternatives: bareAlternatives(5)},
}})

// bareBody and the types under it are the wire shape of a slot_taken
// refusal: apierr's error body, whose details are the booking's
// alternatives (a test compares them with a served node's refusal).
type bareBody struct {
	Error bareError `json:"error"`
}

type bareError struct {
	Code      string      `json:"code"`
	Message   string      `json:"message"`
	RequestID string      `json:"request_id"`
	Details   bareDetails `json:"details"`
}

type bareDetails struct {
	Alternatives []bareSlot `json:"alternatives"`
}

type bareSlot struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	StaffID string    `json:"staff_id"`
}

// bareAlternatives are n consecutive 15-minute slots of one staff member,
// named like a loadgen run's.
func bareAlternatives(n int) []bareSlot {
	first := time.Date(2030, 1, 2, 15, 0, 0, 0, time.UTC)
	out := make([]bareSlot, n)
	for i := range out {
		start := first.Add(time.Duration(i) * 15 * time.Minute)
		out[i] = bareSlot{Start: start, End: start.Add(15 * time.Minute), StaffID: "lg00000000-s0000"}
	}
	return out
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
