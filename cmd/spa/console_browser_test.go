package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

// TestConsoleAndDocsInABrowser: the ops console renders a running node's
// metrics (its own CSP allows what it needs: a blocked script would leave
// "loading…"), and /docs renders the API reference with the embedded
// Redoc. Screenshots go to bin/ for a person to look at.
func TestConsoleAndDocsInABrowser(t *testing.T) {
	ctx := browser(t)
	base, _, _ := serveInProcess(t, map[string]string{}, t.TempDir())
	admin, _ := admins.Load(base)

	page := func(url, waitFor string, texts ...string) ([]string, []byte) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(waitFor))); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		var out []string
		for _, sel := range texts {
			v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
			if err != nil {
				t.Fatalf("%s %s: %v", url, sel, err)
			}
			out = append(out, v)
		}
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("%s: screenshot: %v", url, err)
		}
		return out, shot
	}

	got, shot := page(admin.(string)+"/", "section", "#status", "#sections")
	if !strings.HasPrefix(got[0], "updated") {
		t.Errorf("console status %q, want it updated from /metrics", got[0])
	}
	for _, want := range []string{"SPA_EVENTS", "Streams and consumers", "schedule", "goroutines"} {
		if !strings.Contains(got[1], want) {
			t.Errorf("console lacks %q:\n%.600s", want, got[1])
		}
	}
	save(t, "console.png", shot)

	got, shot = page(base+"/docs", "h1", "h1")
	if !strings.Contains(got[0], "Spa Engine API") {
		t.Errorf("/docs heading %q, want the API's title (Redoc rendered the document)", got[0])
	}
	save(t, "docs.png", shot)
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
