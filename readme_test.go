package authserver_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeIsTheFrontDoor: the README stays short (the reference lives in
// docs/), and the test command it gives a fresh machine is the one CI runs
// (.ci/run adds only -v, to keep the log), so that "the tests pass on my
// machine" means what CI means.
func TestReadmeIsTheFrontDoor(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("at most 300 lines", func(t *testing.T) {
		if n := strings.Count(string(readme), "\n"); n > 300 {
			t.Errorf("README.md has %d lines; move reference text to docs/", n)
		}
	})
	t.Run("the test command is CI's", func(t *testing.T) {
		var cmd string
		for _, block := range strings.Split(string(readme), "```sh\n")[1:] {
			code, _, _ := strings.Cut(block, "```")
			if line := strings.TrimSpace(code); strings.HasPrefix(line, "go test ") && !strings.Contains(line, "\n") {
				cmd = line
				break
			}
		}
		if cmd == "" {
			t.Fatal("README.md has no code block holding one go test command")
		}
		withV, ok := strings.CutSuffix(cmd, " ./...")
		if !ok {
			t.Fatalf("README.md's test command %q does not end with ./...", cmd)
		}
		if !strings.Contains(string(ci), "\n"+withV+" -v ./...") {
			t.Errorf(".ci/run does not run README.md's test command %q (with -v)", cmd)
		}
		for _, flag := range []string{"-race", "-timeout 30m"} {
			if !strings.Contains(cmd, flag) {
				t.Errorf("README.md's test command %q lacks %s", cmd, flag)
			}
		}
	})
}
