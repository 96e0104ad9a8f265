package routes_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models"
)

// TestLoginCSRFChromium: in real Chromium, a cross-site page whose form
// posts a JSON-shaped text/plain body to /auth/login (the login CSRF of
// issue 17) does not log the browser in: no refresh cookie is stored and
// no login starts. The control, in the same browser, is a same-origin
// fetch with Content-Type: application/json, which does set the cookie:
// the test would see a cookie if the attack worked.
//
// The server is at 127.0.0.1, the attacker's page at localhost: two sites.
// Chromium is /usr/bin/chromium (Debian's package) or $DEMO_CHROMIUM.
func TestLoginCSRFChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser; skipped with -short")
	}
	exe := os.Getenv("DEMO_CHROMIUM")
	if exe == "" {
		exe = "/usr/bin/chromium"
	}
	if _, err := os.Stat(exe); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium, or set DEMO_CHROMIUM): %v", exe, err)
	}
	const (
		victim   = "victim@example.com"
		attacker = "attacker@example.com"
	)
	e := newEnv(t, "sqlite", "password_key", func(c *config.Config) { c.Cookies.Secure = false })
	e.register(victim)
	attackerID := e.register(attacker)

	// The server, with one same-origin page for the control.
	mux := http.NewServeMux()
	mux.Handle("/", e.handler)
	mux.HandleFunc("GET /control", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>control</title><script>
fetch("/api/v1/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
  body: JSON.stringify({email: %q, password: %q, device_name: "control"})})
  .then(r => { document.title = "done:" + r.status; });
</script>`, victim, password)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// The attacker's site: a form that submits itself, text/plain, with
	// the JSON in the field's name and the closing in its value.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>evil</title>
<form id="f" method="POST" enctype="text/plain" action="%s/api/v1/auth/login">
<input type="hidden" name='{"email":"%s","password":"%s","device_name":"' value='"}'>
</form><script>document.getElementById("f").submit();</script>`, srv.URL, attacker, password)
	}))
	t.Cleanup(evil.Close)
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	refreshCookie := func() *network.Cookie {
		t.Helper()
		res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/api/v1/auth/refresh"}})
		if err != nil {
			t.Fatalf("reading the browser's cookies: %v", err)
		}
		for _, c := range res.Cookies {
			if c.Name == "refresh_token" {
				return c
			}
		}
		return nil
	}

	// Control: a same-origin JSON login stores the cookie.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/control")); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Poll[string](`document.title.startsWith("done:") && document.title`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil || title != "done:200" {
		t.Fatalf("the same-origin control login: %q, %v; want done:200", title, err)
	}
	if refreshCookie() == nil {
		t.Fatal("the control login stored no refresh cookie: the test could not see an attack that worked")
	}
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}

	// The attack.
	if err := chromedp.Do(ctx, chromedp.Navigate(evilURL)); err != nil {
		t.Fatal(err)
	}
	landed, err := chromedp.Run(ctx, chromedp.Poll[string](
		fmt.Sprintf(`location.href.startsWith(%q) && document.body && document.body.innerText.length > 0 && document.body.innerText`, srv.URL),
		chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the form did not reach the server: %v", err)
	}
	if !strings.Contains(landed, "csrf_check_failed") && !strings.Contains(landed, "unsupported_media_type") {
		t.Errorf("the cross-site form's answer: %s; want csrf_check_failed or unsupported_media_type", landed)
	}
	if c := refreshCookie(); c != nil {
		t.Errorf("the cross-site form logged the browser in: refresh_token cookie %q set", c.Value)
	}
	if n := e.count(&models.RefreshToken{}, "user_id = ?", attackerID); n != 0 {
		t.Errorf("the cross-site form started %d login(s) of the attacker's account", n)
	}
}
