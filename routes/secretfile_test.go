package routes_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/revocable/authserver"
	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/models/dbtest"
)

// TestSecretFileModeRefusesStart: authserver.New (what serve runs) refuses
// a secret file that the group or others may read, saying how to fix it,
// and starts once it is 0600 or 0400.
func TestSecretFileModeRefusesStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "jwt_secret")
	line := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32))) + "\n"
	if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.JWT.SecretFile = file
	cfg.NoLimits()
	db := dbtest.Open(t, "sqlite")
	start := func() error {
		srv, err := authserver.New(context.Background(), authserver.Options{Config: cfg, DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			_ = srv.Close()
		}
		return err
	}
	for _, c := range []struct {
		mode   os.FileMode
		refuse bool
	}{{0o644, true}, {0o640, true}, {0o604, true}, {0o660, true}, {0o600, false}, {0o400, false}} {
		t.Run(c.mode.String(), func(t *testing.T) {
			if err := os.Chmod(file, c.mode); err != nil {
				t.Fatal(err)
			}
			err := start()
			if c.refuse {
				if !errors.Is(err, config.ErrSecretFileExposed) || !strings.Contains(err.Error(), "chmod 600") {
					t.Fatalf("mode %v: authserver.New: %v, want a refusal that says chmod 600", c.mode, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("mode %v: authserver.New: %v", c.mode, err)
			}
		})
	}
}
