package main

// The demo command, tested as a person meets it: the real binary, built
// with go build, and the real Chromium driving the page. The browser part
// skips when Chromium is missing (CI installs it).
//
// DEMO_SCREENSHOT=docs/demo.png (relative to the module root, or absolute)
// saves a full-page screenshot at the end of the browser test; the file is
// written only then, so CI does not dirty the tree.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/revocable/authserver/strategy"
)

// chromiumPath is Debian's Chromium; DEMO_CHROMIUM overrides it.
const chromiumPath = "/usr/bin/chromium"

func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a browser; skipped with -short")
	}
	bin := buildBinary(t)
	tmp := t.TempDir()
	d := startDemo(t, bin, tmp)

	t.Run("serves the page and every strategy", func(t *testing.T) { checkDemoHTTP(t, d.url) })
	t.Run("browser", func(t *testing.T) { browserWalkthrough(t, d.url) })
	t.Run("removes its databases on exit", func(t *testing.T) {
		d.stop(t)
		left, err := filepath.Glob(filepath.Join(tmp, "authserver-demo-*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("the demo left %v behind after exiting", left)
		}
	})
}

// buildBinary builds this command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "authserver")
	start := time.Now()
	args := []string{"build", "-o", bin}
	if raceBuild {
		args = append(args, "-race")
	}
	out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the binary in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

type demoProc struct {
	url  string
	cmd  *exec.Cmd
	done chan error
}

// startDemo runs `authserver demo` on a port the kernel picks and reads
// the URL it prints. TMPDIR points into tmp, so that the test can see the
// databases go away.
func startDemo(t *testing.T, bin, tmp string) *demoProc {
	t.Helper()
	cmd := exec.Command(bin, "demo", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stderr = &testWriter{t: t}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoProc{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case line := <-lines:
		m := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`).FindString(line)
		if m == "" {
			t.Fatalf("the demo printed %q, with no URL", line)
		}
		d.url = strings.TrimSuffix(m, "/")
	case err := <-d.done:
		t.Fatalf("the demo exited before printing its URL: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the demo printed no URL within 30s")
	}
	return d
}

// stop sends SIGINT, as Ctrl-C would, and waits for a clean exit.
func (d *demoProc) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("the demo did not exit cleanly: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the demo did not exit within 15s of SIGINT")
	}
}

// testWriter sends the demo's log to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("demo: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func checkDemoHTTP(t *testing.T, base string) {
	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	t.Run("page with CSP", func(t *testing.T) {
		res, body := get(t, "/")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `src="app.js"`) {
			t.Fatalf("GET / = %d, want the page", res.StatusCode)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("CSP = %q", csp)
		}
	})
	t.Run("config lists every strategy", func(t *testing.T) {
		_, body := get(t, "/demo-config.json")
		var cfg struct {
			Targets []struct{ Name, API string }
		}
		if err := json.Unmarshal(body, &cfg); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tg := range cfg.Targets {
			names = append(names, tg.Name)
			if tg.API != "/s/"+tg.Name+"/api/v1" {
				t.Errorf("%s: api %q", tg.Name, tg.API)
			}
		}
		if !slices.Equal(names, strategy.Names()) {
			t.Errorf("targets %v, want %v", names, strategy.Names())
		}
	})
	for _, name := range strategy.Names() {
		t.Run("strategy "+name, func(t *testing.T) {
			res, body := get(t, "/s/"+name+"/api/v1/strategy")
			var info struct{ Name string }
			if err := json.Unmarshal(body, &info); err != nil || res.StatusCode != http.StatusOK || info.Name != name {
				t.Fatalf("GET /s/%s/api/v1/strategy = %d %s", name, res.StatusCode, body)
			}
			res, _ = get(t, "/s/"+name+"/api/v1/demo/state")
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("state without a token = %d, want 401", res.StatusCode)
			}
		})
	}
}

// cell is one grid cell as the page shows it.
type cell struct {
	Kind string `json:"kind"`
	Code string `json:"code"`
}

// grid is device -> strategy -> cell, read from the page's data attributes.
type grid map[string]map[string]cell

const readGrid = `(() => {
  const out = {};
  for (const td of document.querySelectorAll("#grid td[data-strategy][data-device]")) {
    (out[td.dataset.device] ||= {})[td.dataset.strategy] = {kind: td.dataset.kind, code: td.dataset.code};
  }
  return out;
})()`

// browserWalkthrough is the scenario of the issue: create the account,
// sign in two devices, log one out, change the password from the other,
// and check the grid after each step against what each strategy
// guarantees (docs/strategies.md, "Choosing a strategy").
func browserWalkthrough(t *testing.T, base string) {
	exe := os.Getenv("DEMO_CHROMIUM")
	if exe == "" {
		exe = chromiumPath
	}
	if _, err := os.Stat(exe); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium, or set DEMO_CHROMIUM): %v", exe, err)
	}
	started := time.Now()
	defer func() { t.Logf("browser walkthrough took %s", time.Since(started).Round(time.Millisecond)) }()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	// Console errors, uncaught exceptions and CSP violations fail the test.
	// The browser's own "Failed to load resource" entries for 401 and 501
	// answers are not errors of the page: rejected tokens are what the
	// demo shows.
	messages := chromedp.Console(ctx)
	problems := make(chan string, 100)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && !m.IsException() {
				continue
			}
			if m.Source == "network" && regexp.MustCompile(`status of (401|501)\b`).MatchString(m.Text) {
				continue
			}
			problems <- fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1)
		}
	}()
	checkConsole := func(t *testing.T) {
		t.Helper()
		for {
			select {
			case p := <-problems:
				t.Errorf("console: %s", p)
			default:
				return
			}
		}
	}

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(chromedp.Do(ctx,
		chromedp.EmulateViewport(1400, 1000),
		chromedp.Navigate(base+"/"),
	))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.documentElement.dataset.ready === "true"`, chromedp.WithPollingTimeout(20*time.Second)))
	must(err)

	// act presses a button and waits until the page has finished the action
	// and re-checked every token.
	act := func(t *testing.T, id string) {
		t.Helper()
		before, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("main").dataset.actions`))
		must(err)
		n, _ := strconv.Atoi(before)
		must(chromedp.Do(ctx, chromedp.Click(chromedp.ID(id))))
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](
			fmt.Sprintf(`(() => { const m = document.getElementById("main"); return m.dataset.busy === "false" && Number(m.dataset.actions) > %d; })()`, n),
			chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("after pressing #%s the page did not finish: %v", id, err)
		}
	}
	read := func(t *testing.T) grid {
		t.Helper()
		g, err := chromedp.Run(ctx, chromedp.Evaluate[grid](readGrid))
		must(err)
		return g
	}
	names := strategy.Names()

	t.Run("create account", func(t *testing.T) {
		act(t, "create-account")
		status, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("account-status")))
		must(err)
		if want := fmt.Sprintf("all %d strategies", len(names)); !strings.Contains(status, want) {
			t.Fatalf("account status %q, want it to say %q", status, want)
		}
	})

	t.Run("sign in two devices", func(t *testing.T) {
		act(t, "sign-in") // Laptop
		act(t, "sign-in") // Phone
		// Every token is valid except one: under single_device, signing
		// in the Phone replaced the one login the user row keeps, so the
		// Laptop was signed out by it.
		want := grid{"Laptop": {}, "Phone": {}}
		for _, n := range names {
			want["Laptop"][n] = cell{"ok", ""}
			want["Phone"][n] = cell{"ok", ""}
		}
		want["Laptop"]["single_device"] = cell{"bad", "token_revoked"}
		assertGrid(t, read(t), want)
	})

	t.Run("log out the laptop", func(t *testing.T) {
		act(t, "d1-logout")
		// Logout kills the access token at once only where the strategy
		// tracks devices; elsewhere only the refresh token is revoked and
		// the access token lives until exp, which the page shows as
		// "stale": valid although the user ended it. The Phone is
		// untouched everywhere.
		want := grid{"Laptop": {}, "Phone": {}}
		for _, n := range names {
			want["Phone"][n] = cell{"ok", ""}
		}
		for _, n := range []string{"stateless", "password_key", "valid_date", "token_version"} {
			want["Laptop"][n] = cell{"stale", ""}
		}
		for _, n := range []string{"single_device", "multi_device", "session_table"} {
			want["Laptop"][n] = cell{"bad", "token_revoked"}
		}
		assertGrid(t, read(t), want)
	})

	t.Run("change password from the phone", func(t *testing.T) {
		act(t, "d2-change_password")
		// Every strategy but stateless signs with a key derived from the
		// password hash: the Laptop's old tokens fail their signature. The
		// Phone got fresh tokens from the change.
		want := grid{"Laptop": {}, "Phone": {}}
		for _, n := range names {
			want["Phone"][n] = cell{"ok", ""}
			want["Laptop"][n] = cell{"bad", "token_invalid"}
		}
		want["Laptop"]["stateless"] = cell{"stale", ""}
		assertGrid(t, read(t), want)
		why, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#grid tfoot td.why[data-strategy="password_key"]`)))
		must(err)
		if !strings.Contains(why, "key") {
			t.Errorf("the explanation under password_key does not mention the key: %q", why)
		}
	})

	t.Run("the state panel shows the stored state", func(t *testing.T) {
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#store [data-strategy="session_table"]`)))
		must(err)
		if !strings.Contains(txt, "sessions") || !strings.Contains(txt, "Asked with Phone") {
			t.Errorf("session_table's state card: %q", txt)
		}
	})

	t.Run("keyboard", func(t *testing.T) { keyboardCheck(t, ctx) })
	t.Run("contrast", func(t *testing.T) { contrastCheck(t, ctx) })

	if path := os.Getenv("DEMO_SCREENSHOT"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join("..", "..", path) // the module root
		}
		must(chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()`)))
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must(err)
		must(os.WriteFile(path, buf, 0o644))
		t.Logf("screenshot saved to %s", path)
	}
	// Give late console messages a moment to arrive.
	time.Sleep(200 * time.Millisecond)
	checkConsole(t)
}

func assertGrid(t *testing.T, got, want grid) {
	t.Helper()
	for dev, row := range want {
		for s, w := range row {
			g, ok := got[dev][s]
			if !ok {
				t.Errorf("%s under %s: no cell", dev, s)
				continue
			}
			if g.Kind != w.Kind || (w.Code != "" && g.Code != w.Code) {
				t.Errorf("%s under %s: %s %s, want %s %s", dev, s, g.Kind, g.Code, w.Kind, w.Code)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("grid has devices %v, want %d", slices.Sorted(maps.Keys(got)), len(want))
	}
}

// tabStop is one element reached with Tab, as assistive technology sees
// it.
type tabStop struct{ id, role, name string }

// keyboardCheck tabs through the whole page: every main action must be
// reached, and every element reached must have an accessible name (taken
// from Chromium's accessibility tree, not guessed).
func keyboardCheck(t *testing.T, ctx context.Context) {
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	// Each element reached is marked, so that reaching one again means the
	// focus went round the whole page.
	const visit = `(() => {
	  const e = document.activeElement;
	  if (!e || e === document.body) return "";
	  if (e.dataset.tabVisited) return "(again)";
	  e.dataset.tabVisited = "1";
	  return e.id || e.tagName.toLowerCase();
	})()`
	var stops []tabStop
	for range 200 {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](visit))
		if err != nil {
			t.Fatal(err)
		}
		if id == "(again)" {
			break
		}
		if id == "" {
			continue // the focus left the page's last element
		}
		obj, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](`document.activeElement`))
		if err != nil {
			t.Fatal(err)
		}
		res, err := chromedp.Call(ctx, accessibility.GetPartialAXTree, accessibility.GetPartialAXTreeParams{ObjectID: obj.ObjectID, FetchRelatives: new(false)})
		if err != nil {
			t.Fatal(err)
		}
		stop := tabStop{id: id}
		if len(res.Nodes) > 0 {
			stop.role = axString(res.Nodes[0].Role)
			stop.name = axString(res.Nodes[0].Name)
		}
		stops = append(stops, stop)
	}
	for _, s := range stops {
		if strings.TrimSpace(s.name) == "" {
			t.Errorf("tab stop #%s (%s) has no accessible name", s.id, s.role)
		}
	}
	wantNames := map[string]string{
		"create-account":     "Create account",
		"sign-in":            "Sign in device",
		"reset-password":     "Reset password",
		"email":              "Email",
		"d1-logout":          "Log out Laptop",
		"d1-refresh":         "Refresh tokens of Laptop",
		"d2-logout_all":      "Log out everywhere, from Phone",
		"d2-logout_others":   "Log out other devices, from Phone",
		"d2-change_password": "Change password, from Phone",
		"d2-delete":          "Delete account, from Phone",
		"d1-revoke-d2":       "Revoke Phone, from Laptop’s device list",
	}
	got := map[string]tabStop{}
	for _, s := range stops {
		got[s.id] = s
	}
	for id, name := range wantNames {
		s, ok := got[id]
		if !ok {
			t.Errorf("#%s is not reachable with Tab", id)
			continue
		}
		if !strings.HasPrefix(s.name, name) {
			t.Errorf("#%s: accessible name %q, want %q", id, s.name, name)
		}
	}
	t.Logf("%d tab stops", len(stops))
}

// contrastJS computes, for every element that shows text directly, the
// WCAG contrast ratio of its colour against the first opaque background
// behind it, and returns the elements below 4.5:1.
const contrastJS = `(() => {
  const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  let checked = 0;
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!own || el.closest("[hidden], .visually-hidden, [aria-disabled=true]") || !el.getClientRects().length) continue;
    const fg = lum(rgb(getComputedStyle(el).color));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    checked++;
    if (ratio < 4.5) bad.push(el.tagName.toLowerCase() + "." + el.className + " \"" + el.textContent.trim().slice(0, 30) + "\" " + ratio.toFixed(2));
  }
  return {checked, bad};
})()`

// contrastCheck fails on text below WCAG AA contrast (4.5:1), computed from
// the colours Chromium actually renders.
func contrastCheck(t *testing.T, ctx context.Context) {
	res, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
		Checked int      `json:"checked"`
		Bad     []string `json:"bad"`
	}](contrastJS))
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked < 100 {
		t.Fatalf("checked only %d text elements", res.Checked)
	}
	for _, b := range res.Bad {
		t.Errorf("contrast below 4.5:1: %s", b)
	}
	t.Logf("%d text elements checked", res.Checked)
}

func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal([]byte(v.Value), &s); err != nil {
		return string(v.Value)
	}
	return s
}
