// Package mailpit runs a real SMTP server for tests: Mailpit
// (github.com/axllent/mailpit), on free ports, with its REST API to read
// what arrived and its chaos triggers to make it answer 4xx or 5xx.
//
// Install it once with
//
//	GOBIN=$HOME/.cache/authserver-tools go install github.com/axllent/mailpit@v1.33.1
//
// Tests find it through AUTH_TEST_MAILPIT (the binary's path), on PATH,
// or in $HOME/.cache/authserver-tools; without it they skip, saying that
// it "is not installed" (CI fails on that text).
package mailpit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Env names the variable holding the binary's path.
const Env = "AUTH_TEST_MAILPIT"

// Binary finds mailpit, or "" when it is not installed.
func Binary() string {
	if p := os.Getenv(Env); p != "" {
		return p
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "authserver-tools", "mailpit")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Server is one running Mailpit.
type Server struct {
	t        testing.TB
	bin      string
	SMTPPort int
	apiPort  int
	dir      string
	cmd      *exec.Cmd
	log      bytes.Buffer
}

// Start runs Mailpit on free ports with chaos enabled (no trigger set);
// it stops when the test ends. It skips the test when Mailpit is not
// installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skipf("mailpit is not installed: GOBIN=$HOME/.cache/authserver-tools go install github.com/axllent/mailpit@v1.33.1 (or set %s)", Env)
	}
	s := &Server{t: t, bin: bin, SMTPPort: freePort(t), apiPort: freePort(t), dir: t.TempDir()}
	s.Up()
	t.Cleanup(s.Down)
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Up starts Mailpit (again, after Down) on the same ports; it does
// nothing while Mailpit runs.
func (s *Server) Up() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	s.cmd = exec.Command(s.bin,
		"-s", "127.0.0.1:"+strconv.Itoa(s.SMTPPort), "-l", "127.0.0.1:"+strconv.Itoa(s.apiPort),
		"-d", filepath.Join(s.dir, "mailpit.db"), "--max", "0", "--enable-chaos",
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check", "-q")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start mailpit: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.SMTPPort), 100*time.Millisecond); err == nil {
			_ = c.Close()
			if resp, err := http.Get(s.api("/api/v1/messages")); err == nil {
				_ = resp.Body.Close()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("mailpit did not start:\n%s", s.log.String())
}

// Down stops Mailpit: SMTP is then refused.
func (s *Server) Down() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *Server) api(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.apiPort) + path
}

// Chaos makes RCPT TO answer code (e.g. 451, 550) with probability pct.
func (s *Server) Chaos(code, pct int) {
	s.t.Helper()
	body := fmt.Sprintf(`{"Recipient":{"ErrorCode":%d,"Probability":%d}}`, code, pct)
	req, _ := http.NewRequest(http.MethodPut, s.api("/api/v1/chaos"), bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("mailpit chaos: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("mailpit chaos: %d %s", resp.StatusCode, b)
	}
}

// Summary is one message of the list.
type Summary struct {
	ID      string
	Subject string
	To      []struct{ Address string }
}

// Messages lists what arrived, newest first.
func (s *Server) Messages() []Summary {
	s.t.Helper()
	var out struct {
		Total    int
		Messages []Summary
	}
	s.get("/api/v1/messages?limit=5000", &out)
	return out.Messages
}

// Message is one whole message.
type Message struct {
	ID      string
	Subject string
	From    struct{ Address string }
	To      []struct{ Address string }
	Text    string
	HTML    string
}

// Message reads one message.
func (s *Server) Message(id string) Message {
	s.t.Helper()
	var m Message
	s.get("/api/v1/message/"+id, &m)
	return m
}

// Wait waits until n messages arrived (or the test's patience ends).
func (s *Server) Wait(ctx context.Context, n int) []Summary {
	s.t.Helper()
	for {
		got := s.Messages()
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("mailpit: %d messages arrived, want %d", len(got), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) get(path string, v any) {
	s.t.Helper()
	resp, err := http.Get(s.api(path))
	if err != nil {
		s.t.Fatalf("mailpit api: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("mailpit api %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		s.t.Fatalf("mailpit api %s: %v", path, err)
	}
}
