package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spa-engine/spa/actors/providers/whatsapp/whatsappfake"
	"github.com/spa-engine/spa/actors/providers/wompi/wompifake"
	"github.com/spa-engine/spa/actors/testwait"
)

// browser is a headless Chromium (Debian's chromium; .ci/test.sh installs
// it). Where the browser tests are required (CI=true) a missing browser
// fails; elsewhere the test says why it did not run.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium: the browser tests are required under CI=true (apt-get install chromium)")
		}
		t.Skip("no chromium installed (apt-get install chromium); required under CI=true")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1100))
	actx, cancel := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancel)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelT)
	return ctx
}

// tab drives one page of the console in the headless browser.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// eval runs a JavaScript expression in the page and returns its string value.
func (b tab) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// text is the text of the first element sel matches ("" when none does).
func (b tab) text(sel string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel))
}

// waitText waits until the element sel matches contains want (the page
// refreshes itself every 5 seconds; an action refreshes it at once).
func (b tab) waitText(sel, want string) {
	b.t.Helper()
	testwait.Until(b.t, 40*time.Second, fmt.Sprintf("%s to show %q", sel, want), func() error {
		if got := b.text(sel); !strings.Contains(got, want) {
			return fmt.Errorf("%s: %q", sel, got)
		}
		return nil
	})
}

// click clicks sel with the mouse, as a person would.
func (b tab) click(sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

// open loads url and waits for sel to show.
func (b tab) open(url, sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("%s: %v", url, err)
	}
}

// signIn gives the console an admin token through its own field.
func (b tab) signIn(token string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SendKeys(chromedp.CSS("#token"), token)); err != nil {
		b.t.Fatalf("type the token: %v", err)
	}
	b.click("#token-use")
}

func (b tab) screenshot(name string) {
	b.t.Helper()
	shot, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	save(b.t, name, shot)
}

// TestConsoleAndDocsInABrowser: the ops console of a running node renders
// its metrics (its own CSP allows what it needs: a blocked script would
// leave "loading…"), and with an admin token typed into it, its actions
// work for real. The node sends WhatsApp through the fake Cloud API,
// which fails (500) until the test says otherwise, so two confirmations
// outlast their attempts (a one-step SPA_NOTIFY_BACKOFF) and are parked
// as dead letters. In the page: a retry asks for confirmation and
// cancelling it does nothing; a confirmed retry of one letter (the
// provider back) takes it off the list, the message reaches the client
// and the audit list shows the retry; a confirmed discard of the class
// empties the list and the audit shows it. An orphan payment event opens
// a reconciliation exception, which the page resolves with a reason
// (audited, shown). /docs renders the API
// reference with the embedded Redoc. Screenshots go to bin/.
func TestConsoleAndDocsInABrowser(t *testing.T) {
	ctx := browser(t)
	const waToken, phoneID, phone, wa = "EAAG-console-token", "106540352242922", "+573001234570", "573001234570"
	fake := whatsappfake.New(waToken, phoneID)
	t.Cleanup(fake.Close)
	fake.ApproveTemplate("cita_confirmada", "es", 1)
	env := map[string]string{
		"SPA_WHATSAPP_TOKEN": waToken, "SPA_WHATSAPP_PHONE_NUMBER_ID": phoneID,
		"SPA_WHATSAPP_BASE_URL": fake.URL, "SPA_WHATSAPP_APP_SECRET": "console_app_secret",
		"SPA_WHATSAPP_TEMPLATES": "appointment_confirmed=cita_confirmada:es:utility:12h",
		"SPA_NOTIFY_BACKOFF":     "100ms",
	}
	dataDir := t.TempDir()
	base, _, logs := serveInProcess(t, env, dataDir)
	adminURL, _ := admins.Load(base)
	a := api{t, base}
	access, _ := signIn(t, a, logs, phone)
	client := subjectOf(t, access)
	admin := issueToken(t, dataDir, "owner", "admin")
	desk := issueToken(t, dataDir, "desk", "receptionist")
	a.seedAnaMassage(admin)
	slots := a.anaSlots(2, 9)
	fake.Faults.Always(whatsappfake.Fault{Status: 500})
	for i, slot := range []int{0, 8} {
		held := a.must(201, "POST", "/v1/appointments", desk, map[string]any{"service_id": "massage-60", "staff_id": "ana",
			"start": slots[slot].(map[string]any)["start"].(string), "client_id": client}, "Idempotency-Key", fmt.Sprintf("console-desk-%d", i))
		a.must(200, "POST", "/v1/appointments/"+held["id"].(string)+"/confirm", desk, nil, "Idempotency-Key", fmt.Sprintf("console-confirm-%d", i))
	}

	b := tab{t, ctx}
	b.open(adminURL.(string)+"/", "section")
	b.waitText("#status", "updated")
	got := b.text("#sections")
	for _, want := range []string{"SPA_EVENTS", "Streams and consumers", "schedule", "goroutines", "Providers", "whatsapp"} {
		if !strings.Contains(got, want) {
			t.Errorf("console lacks %q:\n%.600s", want, got)
		}
	}
	// Without a token the admin part only asks for one.
	if got := b.text("#admin"); !strings.Contains(got, "Enter an admin token") {
		t.Fatalf("admin part without a token: %q", got)
	}
	b.signIn(admin)
	b.waitText("#dead-letter-total", "2 dead letters")
	b.waitText("#cluster-summary", "single node")
	b.waitText("#exceptions-none", "no open payment exceptions")
	b.screenshot("console.png")

	// Cancel: nothing happens.
	b.click(`button[data-action="retry-one"]`)
	b.waitText("#confirm-text", "Retry dead letter")
	b.click("#confirm-no")
	if open := b.eval(`String(document.getElementById("confirm").open)`); open != "false" {
		t.Fatalf("the dialog is still open after Cancel: %s", open)
	}
	if got := b.text("#dead-letter-total"); !strings.Contains(got, "2 dead letters") {
		t.Fatalf("after a cancelled retry: %q", got)
	}

	// The failures opened WhatsApp's breaker, and the console says so.
	b.waitText(`[data-provider="whatsapp"]`, "open")
	// The provider comes back; the breaker lets a probe through once its
	// open time has passed (half-open, as /readyz reads it).
	fake.Faults.Clear()
	testwait.Until(t, 60*time.Second, "the WhatsApp breaker to let a call through", func() error {
		if st := b.text(`[data-provider="whatsapp"]`); st != "half-open" && st != "closed" {
			return fmt.Errorf("breaker %q", st)
		}
		return nil
	})

	// Retry one: it leaves the list and is delivered.
	b.click(`button[data-action="retry-one"]`)
	b.waitText("#confirm-text", "Retry dead letter")
	b.screenshot("console-confirm.png")
	b.click("#confirm-yes")
	b.waitText("#notice", "retried 1")
	b.waitText("#dead-letter-total", "1 dead letter")
	b.waitText("#admin", "notification_dead_letter.retry")
	testwait.Until(t, 20*time.Second, "the retried confirmation on WhatsApp", func() error {
		if n := len(fake.Sent()); n != 1 {
			return fmt.Errorf("%d messages sent", n)
		}
		return nil
	})

	// Discard the rest of the class.
	b.click(`button[data-action="discard-class"]`)
	b.waitText("#confirm-text", "Discard all 1 dead letters")
	b.click("#confirm-yes")
	b.waitText("#notice", "discarded 1")
	b.waitText("#dead-letter-total", "no dead letters")
	b.waitText("#admin", "notification_dead_letter.discard")
	b.screenshot("console-actions.png")
	if n := len(fake.Sent()); n != 1 {
		t.Fatalf("%d messages sent after the discard, want only the retried one", n)
	}
	if got := fake.Sent()[0]; got.To != wa {
		t.Fatalf("retried message went to %q", got.To)
	}

	// A reconciliation exception: an authentic Wompi event (signed with
	// the dev fake's events secret) for a transaction Wompi does not
	// know is an orphan. Resolving it asks for a reason, then closes it.
	if code := postWompiOrphan(t, base, "tx-console-orphan", "console-ref-1", 4500000); code != 200 {
		t.Fatalf("orphan event: %d", code)
	}
	b.waitText("#admin", "console-ref-1")
	b.click(`button[data-action="resolve-exception"]`)
	b.waitText("#confirm-text", "Resolve exception")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#confirm-reason"), "refunded by hand at the bank")); err != nil {
		t.Fatal(err)
	}
	b.click("#confirm-yes")
	b.waitText("#notice", "resolved")
	b.waitText("#exceptions-none", "no open payment exceptions")
	b.waitText("#admin", "payment.exception_resolved")
	b.waitText("#admin", "refunded by hand at the bank")

	b.open(base+"/docs", "h1")
	if got := b.text("h1"); !strings.Contains(got, "Spa Engine API") {
		t.Errorf("/docs heading %q, want the API's title (Redoc rendered the document)", got)
	}
	b.screenshot("docs.png")
}

// testOpsConsole (TestCluster/OpsConsole): against the three `spa serve`
// processes of the cluster tests, the console of one node, in the
// browser, shows the three members and every partition owned, each member
// with its partitions and epochs.
func testOpsConsole(t *testing.T, bin string) {
	ctx := browser(t)
	c := startTestCluster(t, bin, nil)
	b := tab{t, ctx}
	b.open(c.nodes[1].adminURL+"/", "section")
	b.signIn(c.admin)
	b.waitText("#cluster-summary", "3 members, all ")
	b.waitText("#cluster-summary", "partitions owned")
	got := b.text("#admin")
	for _, n := range c.nodes {
		if !strings.Contains(got, n.name) {
			t.Errorf("the console lacks member %s:\n%.800s", n.name, got)
		}
	}
	if !strings.Contains(got, c.nodes[1].name+" (this node)") {
		t.Errorf("the console does not mark itself:\n%.800s", got)
	}
	// Every partition has an owner, one of the members, in the details.
	rows := b.eval(`Array.from(document.querySelectorAll("details tr")).slice(1).map((r) => r.children[1].textContent).join(",")`)
	owners := strings.Split(rows, ",")
	if len(owners) < 3 {
		t.Fatalf("partition rows: %q", rows)
	}
	for _, o := range owners {
		if o != "n0" && o != "n1" && o != "n2" {
			t.Fatalf("a partition owned by %q: %q", o, rows)
		}
	}
	b.screenshot("console-cluster.png")
}

// postWompiOrphan posts a transaction.updated event signed as the dev
// node's fake Wompi signs them, for a transaction the fake never saw, and
// returns the webhook's status.
func postWompiOrphan(t *testing.T, base, txID, reference string, amount int64) int {
	t.Helper()
	ts := time.Now().Unix()
	sum := sha256.Sum256(fmt.Appendf(nil, "%sAPPROVED%d%d%s", txID, amount, ts, wompifake.DefaultKeys().Events))
	checksum := hex.EncodeToString(sum[:])
	body, _ := json.Marshal(map[string]any{
		"event": "transaction.updated",
		"data": map[string]any{"transaction": map[string]any{"id": txID, "status": "APPROVED", "amount_in_cents": amount,
			"reference": reference, "currency": "COP", "payment_method_type": "CARD"}},
		"environment": "test",
		"signature":   map[string]any{"properties": []string{"transaction.id", "transaction.status", "transaction.amount_in_cents"}, "checksum": checksum},
		"timestamp":   ts,
		"sent_at":     time.Now().UTC().Format(time.RFC3339),
	})
	req, err := http.NewRequest("POST", base+"/v1/webhooks/wompi", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Event-Checksum", checksum)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func save(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := filepath.Join("..", "..", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
