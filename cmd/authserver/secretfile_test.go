package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretFileBinary: `config check` warns (and still exits 0) when the
// secret file is readable by group or others, and `keys list` refuses it
// as serve does; `keys rotate` replaces the file instead of rewriting it
// in place: the new file is 0600, the old inode keeps the old secrets
// (a hard link to it still reads them, which O_TRUNC in place would have
// emptied and rewritten), and no temporary file is left behind.
func TestSecretFileBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "jwt_secret")
	old := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("o", 32))) + "\n"
	if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	d := newDeployment(t, "sqlite", map[string]string{"AUTH_JWT_SECRET": "", "AUTH_JWT_SECRET_FILE": file})

	out := d.must(t, "", "config", "check").out
	if !strings.Contains(out, "WARNING: jwt.secret_file "+file+" has mode 0644") || !strings.Contains(out, "readable by group or others") {
		t.Fatalf("config check does not warn about a 0644 secret file:\n%s", out)
	}
	d.mustFail(t, "readable by group or others", "keys", "list")

	link := filepath.Join(t.TempDir(), "old-inode")
	if err := os.Link(file, link); err != nil {
		t.Skipf("hard links unavailable here: %v", err)
	}
	d.must(t, "", "keys", "rotate")
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("the rotated file has mode %04o, want 0600", m)
	}
	if b, _ := os.ReadFile(link); string(b) != old {
		t.Fatalf("the old file was rewritten in place: it now reads %q", b)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.SplitAfter(strings.TrimSpace(string(b)), "\n"); len(lines) != 2 || lines[1]+"\n" != old {
		t.Fatalf("the rotated file holds %q, want a new secret and then the old one", b)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("the directory holds %v after the rotation, want the secret file alone", names)
	}
	if out := d.must(t, "", "config", "check").out; strings.Contains(out, "WARNING") || !strings.Contains(out, "secrets: active kid") {
		t.Fatalf("config check after the rotation:\n%s", out)
	}
	d.must(t, "", "keys", "list")
}
