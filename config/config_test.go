package config_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/strategy"
)

// cfgCleanEnv blanks every AUTH_* variable of the environment the tests
// run in (viper ignores empty ones), so that only what a test sets counts.
func cfgCleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AUTH_") {
			t.Setenv(k, "")
		}
	}
}

// cfgFile writes a config file into a fresh directory and returns its path.
func cfgFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cfgNormalize makes nil and empty lists compare equal.
func cfgNormalize(c *config.Config) *config.Config {
	out := *c
	for _, l := range []*[]string{&out.Server.TrustedProxies, &out.Cookies.AllowedOrigins} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return &out
}

// TestDefaults pins the built-in values other parts of the system (and the
// API documentation) rely on: 15m access tokens (expires_in 900), 30m reset
// tokens, secure cookies, no exposed reset tokens.
func TestDefaults(t *testing.T) {
	c := config.Defaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"strategy", c.Strategy, "password_key"},
		{"database.driver", c.Database.Driver, "sqlite"},
		{"jwt.access_ttl", c.JWT.AccessTTL, 15 * time.Minute},
		{"jwt.refresh_ttl", c.JWT.RefreshTTL, 720 * time.Hour},
		{"jwt.refresh_reuse_grace", c.JWT.RefreshReuseGrace, 10 * time.Second},
		{"jwt.secret", c.JWT.Secret, ""},
		{"password.bcrypt_cost", c.Password.BcryptCost, 12},
		{"password.min_length", c.Password.MinLength, 8},
		{"reset.ttl", c.Reset.TTL, 30 * time.Minute},
		{"reset.expose_token", c.Reset.ExposeToken, false},
		{"cookies.secure", c.Cookies.Secure, true},
		{"devices.max", c.Devices.Max, 0},
		{"devices.on_limit", c.Devices.OnLimit, "reject"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
}

// TestLoadEnvironment: an AUTH_* variable sets a key whether or not the
// file mentions it, and wins over the file when it does.
func TestLoadEnvironment(t *testing.T) {
	file := "server:\n  addr: 127.0.0.1:9999\nstrategy: stateless\n"
	cases := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *config.Config)
	}{
		{"nothing set: the file", nil, func(t *testing.T, c *config.Config) {
			if c.Strategy != "stateless" || c.Server.Addr != "127.0.0.1:9999" || c.Password.BcryptCost != 12 {
				t.Errorf("strategy %q addr %q bcrypt %d, want the file's stateless and 127.0.0.1:9999 and the default 12", c.Strategy, c.Server.Addr, c.Password.BcryptCost)
			}
		}},
		{"keys the file does not mention", map[string]string{
			"AUTH_PASSWORD_BCRYPT_COST": "10",
			"AUTH_DATABASE_DSN":         "/srv/auth/auth.db",
			"AUTH_JWT_ACCESS_TTL":       "5m",
			"AUTH_COOKIES_SECURE":       "false",
			"AUTH_DEVICES_MAX":          "3",
		}, func(t *testing.T, c *config.Config) {
			if c.Password.BcryptCost != 10 || c.Database.DSN != "/srv/auth/auth.db" || c.JWT.AccessTTL != 5*time.Minute ||
				c.Cookies.Secure || c.Devices.Max != 3 {
				t.Errorf("bcrypt %d dsn %q access_ttl %s secure %v devices.max %d, want the environment's 10 /srv/auth/auth.db 5m false 3",
					c.Password.BcryptCost, c.Database.DSN, c.JWT.AccessTTL, c.Cookies.Secure, c.Devices.Max)
			}
			if c.Strategy != "stateless" || c.Server.Addr != "127.0.0.1:9999" {
				t.Errorf("strategy %q addr %q, want the file's values kept", c.Strategy, c.Server.Addr)
			}
		}},
		{"a key the file sets", map[string]string{"AUTH_STRATEGY": "token_version"}, func(t *testing.T, c *config.Config) {
			if c.Strategy != "token_version" {
				t.Errorf("strategy %q, want the environment's token_version over the file's stateless", c.Strategy)
			}
		}},
		{"trusted proxies as a comma-separated list", map[string]string{
			"AUTH_SERVER_TRUSTED_PROXIES":  "10.0.0.1, 10.0.0.2",
			"AUTH_COOKIES_ALLOWED_ORIGINS": "https://a.example, https://b.example,",
		}, func(t *testing.T, c *config.Config) {
			if want := []string{"10.0.0.1", "10.0.0.2"}; !slices.Equal(c.Server.TrustedProxies, want) {
				t.Errorf("trusted proxies %q, want %q", c.Server.TrustedProxies, want)
			}
			if want := []string{"https://a.example", "https://b.example"}; !slices.Equal(c.Cookies.AllowedOrigins, want) {
				t.Errorf("allowed origins %q, want %q", c.Cookies.AllowedOrigins, want)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgCleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := config.Load(cfgFile(t, "config.yaml", file))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tc.check(t, c)
		})
	}
}

// TestLoadTrustedProxiesFromFile: a YAML list works as well as the
// environment's comma-separated string.
func TestLoadTrustedProxiesFromFile(t *testing.T) {
	cfgCleanEnv(t)
	c, err := config.Load(cfgFile(t, "c.yaml", "server:\n  trusted_proxies:\n    - 10.0.0.1\n    - 10.0.0.2\n"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := []string{"10.0.0.1", "10.0.0.2"}; !slices.Equal(c.Server.TrustedProxies, want) {
		t.Fatalf("trusted proxies %q, want %q", c.Server.TrustedProxies, want)
	}
}

// TestLoadExplicitPath: a --config path that cannot be read is an error,
// never a silent fall-back to the defaults.
func TestLoadExplicitPath(t *testing.T) {
	cfgCleanEnv(t)
	dir := t.TempDir()
	cases := []struct{ name, path string }{
		{"missing file", filepath.Join(dir, "missing.yaml")},
		{"a directory", dir},
		{"not YAML", cfgFile(t, "broken.yaml", "strategy: [unclosed\n")},
	}
	if os.Geteuid() != 0 { // root reads any file
		p := cfgFile(t, "locked.yaml", "strategy: stateless\n")
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, path string }{"unreadable file", p})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Load(tc.path)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", tc.path, c)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path %s", err, tc.path)
			}
		})
	}
}

// TestLoadWithoutPath: with no --config, ./config.yaml is read when there
// is one and the built-in defaults are used when there is none.
func TestLoadWithoutPath(t *testing.T) {
	t.Run("no file: defaults", func(t *testing.T) {
		cfgCleanEnv(t)
		t.Chdir(t.TempDir())
		c, err := config.Load("")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if got, want := cfgNormalize(c), cfgNormalize(config.Defaults()); !reflect.DeepEqual(got, want) {
			t.Fatalf("Load without a file = %+v, want the defaults %+v", got, want)
		}
	})
	t.Run("config.yaml in the working directory", func(t *testing.T) {
		cfgCleanEnv(t)
		p := cfgFile(t, "config.yaml", "strategy: multi_device\n")
		t.Chdir(filepath.Dir(p))
		c, err := config.Load("")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.Strategy != "multi_device" {
			t.Fatalf("strategy %q, want multi_device from ./config.yaml", c.Strategy)
		}
	})
}

// TestLoadRejectsUnknownKeys: a misspelt key is an error, not a setting
// silently left at its default.
func TestLoadRejectsUnknownKeys(t *testing.T) {
	cases := []struct{ name, file, key string }{
		{"top level", "strategy: stateless\nstrategie: stateless\n", "strategie"},
		{"nested", "jwt:\n  acess_ttl: 5m\n", "acess_ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgCleanEnv(t)
			c, err := config.Load(cfgFile(t, "config.yaml", tc.file))
			if err == nil {
				t.Fatalf("Load = %+v, want an error for %s", c, tc.key)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name the key %s", err, tc.key)
			}
		})
	}
}

// TestValidate: each setting that cannot work is refused with a message
// naming it, and the limits themselves are accepted.
func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		change  func(c *config.Config)
		wantErr []string // nil: valid
	}{
		{"unknown strategy", func(c *config.Config) { c.Strategy = "jwt_blacklist" }, append([]string{"jwt_blacklist"}, strategy.Names()...)},
		{"secret of 31 bytes", func(c *config.Config) { c.JWT.Secret = strings.Repeat("s", 31) }, []string{"jwt.secret", "32"}},
		{"secret of 32 bytes", func(c *config.Config) { c.JWT.Secret = strings.Repeat("s", 32) }, nil},
		{"bcrypt cost 3", func(c *config.Config) { c.Password.BcryptCost = 3 }, []string{"bcrypt_cost"}},
		{"bcrypt cost 4", func(c *config.Config) { c.Password.BcryptCost = 4 }, nil},
		{"bcrypt cost 31", func(c *config.Config) { c.Password.BcryptCost = 31 }, nil},
		{"bcrypt cost 32", func(c *config.Config) { c.Password.BcryptCost = 32 }, []string{"bcrypt_cost"}},
		{"unknown driver", func(c *config.Config) { c.Database.Driver = "oracle" }, []string{"oracle", "sqlite", "mysql", "postgres"}},
		{"empty dsn", func(c *config.Config) { c.Database.DSN = "" }, []string{"database.dsn"}},
		{"negative heap floor", func(c *config.Config) { c.Server.HeapFloorMiB = -1 }, []string{"server.heap_floor_mib"}},
		{"heap floor off", func(c *config.Config) { c.Server.HeapFloorMiB = 0 }, nil},
		{"zero body timeout", func(c *config.Config) { c.Server.BodyTimeout = 0 }, []string{"server.body_timeout"}},
		{"body timeout of an hour", func(c *config.Config) { c.Server.BodyTimeout = time.Hour }, []string{"server.body_timeout"}},
		{"refresh token client not a client", func(c *config.Config) {
			c.Introspection.Clients = []string{"rs:0123456789abcdef"}
			c.Introspection.RefreshTokenClients = []string{"r"}
		}, []string{"introspection.refresh_token_clients", `"r"`}},
		{"refresh token client", func(c *config.Config) {
			c.Introspection.Clients = []string{"rs:0123456789abcdef"}
			c.Introspection.RefreshTokenClients = []string{"rs"}
		}, nil},
		{"min length 0", func(c *config.Config) { c.Password.MinLength = 0 }, []string{"min_length"}},
		{"min length 73", func(c *config.Config) { c.Password.MinLength = 73 }, []string{"min_length"}},
		{"zero access ttl", func(c *config.Config) { c.JWT.AccessTTL = 0 }, []string{"jwt.access_ttl"}},
		{"negative refresh ttl", func(c *config.Config) { c.JWT.RefreshTTL = -time.Hour }, []string{"jwt.refresh_ttl"}},
		{"zero reset ttl", func(c *config.Config) { c.Reset.TTL = 0 }, []string{"reset.ttl"}},
		{"negative reuse grace", func(c *config.Config) { c.JWT.RefreshReuseGrace = -time.Second }, []string{"refresh_reuse_grace"}},
		{"zero reuse grace", func(c *config.Config) { c.JWT.RefreshReuseGrace = 0 }, nil},
		{"empty issuer", func(c *config.Config) { c.JWT.Issuer = "" }, []string{"jwt.issuer"}},
		{"negative device limit", func(c *config.Config) { c.Devices.Max = -1 }, []string{"devices.max"}},
		{"unknown on_limit", func(c *config.Config) { c.Devices.OnLimit = "evict_newest" }, []string{"evict_newest"}},
		{"evict_oldest", func(c *config.Config) { c.Devices.OnLimit = "evict_oldest" }, nil},
		{"cors origin", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://app.example.com:8443"} }, nil},
		{"cors origin with a slash", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://app.example.com/"} }, []string{"cors.allowed_origins", "app.example.com/"}},
		{"cors origin with a path", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"https://app.example.com/x"} }, []string{"cors.allowed_origins"}},
		{"cors wildcard", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"*"} }, []string{"cors.allowed_origins"}},
		{"cors null", func(c *config.Config) { c.CORS.AllowedOrigins = []string{"null"} }, []string{"cors.allowed_origins"}},
		{"cookie origin without scheme", func(c *config.Config) { c.Cookies.AllowedOrigins = []string{"app.example.com"} }, []string{"cookies.allowed_origins"}},
		{"cookie origin", func(c *config.Config) { c.Cookies.AllowedOrigins = []string{"http://localhost:3000"} }, nil},
		{"sentinel", func(c *config.Config) {
			c.Redis.Sentinel.Master, c.Redis.Sentinel.Addrs = "main", []string{"10.0.0.1:26379", "sentinel-2:26379"}
		}, nil},
		{"sentinel without addrs", func(c *config.Config) { c.Redis.Sentinel.Master = "main" }, []string{"redis.sentinel.addrs"}},
		{"sentinel addrs without master", func(c *config.Config) { c.Redis.Sentinel.Addrs = []string{"127.0.0.1:26379"} }, []string{"redis.sentinel.master"}},
		{"sentinel and url", func(c *config.Config) {
			c.Redis.URL, c.Redis.Sentinel.Master, c.Redis.Sentinel.Addrs = "redis://127.0.0.1:6379/0", "main", []string{"127.0.0.1:26379"}
		}, []string{"redis.url", "redis.sentinel.master"}},
		{"sentinel addr without port", func(c *config.Config) {
			c.Redis.Sentinel.Master, c.Redis.Sentinel.Addrs = "main", []string{"127.0.0.1"}
		}, []string{"redis.sentinel.addrs[0]", "host:port"}},
		{"sentinel negative db", func(c *config.Config) {
			c.Redis.Sentinel.Master, c.Redis.Sentinel.Addrs, c.Redis.Sentinel.DB = "main", []string{"127.0.0.1:26379"}, -1
		}, []string{"redis.sentinel.db"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Defaults()
			tc.change(c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", c)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

// TestLoadValidates: Load refuses what Validate refuses, whichever source
// the value came from.
func TestLoadValidates(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		file string
		want string
	}{
		{"unknown strategy from the environment", map[string]string{"AUTH_STRATEGY": "nope"}, "", "password_key"},
		{"bcrypt cost from the environment", map[string]string{"AUTH_PASSWORD_BCRYPT_COST": "32"}, "", "bcrypt_cost"},
		{"bcrypt cost from the file", nil, "password:\n  bcrypt_cost: 3\n", "bcrypt_cost"},
		{"short secret from the environment", map[string]string{"AUTH_JWT_SECRET": "too-short"}, "", "jwt.secret"},
		{"short secret from the file", nil, "jwt:\n  secret: too-short\n", "jwt.secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgCleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := config.Load(cfgFile(t, "config.yaml", tc.file+"server:\n  addr: 127.0.0.1:8081\n"))
			if err == nil {
				t.Fatalf("Load = %+v, want an error", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func cfgLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestSecretFile: without jwt.secret the secret lives in jwt.secret_file,
// created on first use with a fresh random secret only its owner can read,
// and read back unchanged afterwards (tokens survive a restart).
func TestSecretFile(t *testing.T) {
	c := config.Defaults()
	c.JWT.SecretFile = filepath.Join(t.TempDir(), "data", "jwt_secret")
	first, err := secretOf(c)
	if err != nil {
		t.Fatalf("first Secret: %v", err)
	}
	if len(first) < 32 {
		t.Fatalf("generated secret has %d bytes, want at least 32", len(first))
	}
	fi, err := os.Stat(c.JWT.SecretFile)
	if err != nil {
		t.Fatalf("secret file: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret file mode %o, want 600", perm)
	}
	raw, _ := os.ReadFile(c.JWT.SecretFile)
	if decoded, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(raw))); err != nil || !bytes.Equal(decoded, first) {
		t.Errorf("secret file holds %q, want the base64url of the returned secret", raw)
	}
	second, err := secretOf(c)
	if err != nil {
		t.Fatalf("second Secret: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("second Secret returned another secret")
	}
	// Another server on the same file (a restart) gets the same secret.
	other := config.Defaults()
	other.JWT.SecretFile = c.JWT.SecretFile
	if third, err := secretOf(other); err != nil || !bytes.Equal(first, third) {
		t.Fatalf("Secret of a restarted server: %v, same secret %v", err, bytes.Equal(first, third))
	}
	// Two fresh files get two different secrets.
	fresh := config.Defaults()
	fresh.JWT.SecretFile = filepath.Join(t.TempDir(), "jwt_secret")
	if s, err := secretOf(fresh); err != nil || bytes.Equal(s, first) {
		t.Fatalf("Secret of another file: %v, equal to the first %v", err, bytes.Equal(s, first))
	}
}

// TestSecretConfigured: jwt.secret wins and no file is written; a secret
// file that does not hold a long enough secret is refused, not replaced.
func TestSecretConfigured(t *testing.T) {
	t.Run("jwt.secret", func(t *testing.T) {
		c := config.Defaults()
		c.JWT.Secret = strings.Repeat("x", 40)
		c.JWT.SecretFile = filepath.Join(t.TempDir(), "jwt_secret")
		s, err := secretOf(c)
		if err != nil || string(s) != c.JWT.Secret {
			t.Fatalf("Secret = %q, %v; want jwt.secret", s, err)
		}
		if _, err := os.Stat(c.JWT.SecretFile); !os.IsNotExist(err) {
			t.Fatalf("a secret file was written although jwt.secret is set (%v)", err)
		}
	})
	for name, content := range map[string]string{
		"short secret file": base64.RawURLEncoding.EncodeToString(make([]byte, 16)) + "\n",
		"garbage file":      "not base64 at all!\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := config.Defaults()
			c.JWT.SecretFile = cfgFile(t, "jwt_secret", content)
			if s, err := secretOf(c); err == nil {
				t.Fatalf("Secret = %q, want an error", s)
			}
			if b, _ := os.ReadFile(c.JWT.SecretFile); string(b) != content {
				t.Fatalf("the secret file was changed to %q", b)
			}
		})
	}
}

// secretOf is the active secret of c.
func secretOf(c *config.Config) ([]byte, error) {
	s, _, err := c.Secrets(cfgLog())
	return s, err
}

// TestSecretRotation: a rotated secret file makes a new active secret and
// keeps the old one as previous; keep 0 drops every old one; previous
// secrets from the configuration are added.
func TestSecretRotation(t *testing.T) {
	c := config.Defaults()
	c.JWT.SecretFile = filepath.Join(t.TempDir(), "jwt_secret")
	first, _, err := c.Secrets(cfgLog())
	if err != nil {
		t.Fatal(err)
	}
	kept, err := config.RotateSecretFile(c.JWT.SecretFile, 3)
	if err != nil || kept != 1 {
		t.Fatalf("rotate: kept %d, %v; want 1, nil", kept, err)
	}
	active, previous, err := c.Secrets(cfgLog())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(active, first) || len(previous) != 1 || !bytes.Equal(previous[0], first) {
		t.Fatalf("after rotation: active is the old one %v, previous %d (want the old one)", bytes.Equal(active, first), len(previous))
	}
	if fi, err := os.Stat(c.JWT.SecretFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file after rotation: %v, mode %v", err, fi.Mode().Perm())
	}
	c.JWT.PreviousSecrets = []string{strings.Repeat("p", 32)}
	if _, previous, _ := c.Secrets(cfgLog()); len(previous) != 2 || string(previous[1]) != strings.Repeat("p", 32) {
		t.Fatalf("previous secrets with jwt.previous_secrets: %d", len(previous))
	}
	if kept, err := config.RotateSecretFile(c.JWT.SecretFile, 0); err != nil || kept != 0 {
		t.Fatalf("rotate keeping none: kept %d, %v", kept, err)
	}
	c.JWT.PreviousSecrets = nil
	if a, previous, _ := c.Secrets(cfgLog()); len(previous) != 0 || bytes.Equal(a, active) {
		t.Fatalf("after an emergency rotation: %d previous secrets, active unchanged %v", len(previous), bytes.Equal(a, active))
	}
}

// TestShippedConfigFile: the repository's config.yaml lists every setting
// with its built-in default, so that the file documents what the server
// does without it.
func TestShippedConfigFile(t *testing.T) {
	cfgCleanEnv(t)
	c, err := config.Load(filepath.Join("..", "config.yaml"))
	if err != nil {
		t.Fatalf("Load(config.yaml): %v", err)
	}
	if got, want := cfgNormalize(c), cfgNormalize(config.Defaults()); !reflect.DeepEqual(got, want) {
		t.Fatalf("config.yaml differs from the built-in defaults:\n file %+v\n want %+v", got, want)
	}
	raw, err := os.ReadFile(filepath.Join("..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range config.Keys() {
		// redis.sentinel.addrs is "addrs:" indented twice, under
		// "  sentinel:" under "redis:".
		parts := strings.Split(key, ".")
		for depth, section := range parts[:len(parts)-1] {
			if !strings.Contains(string(raw), "\n"+strings.Repeat("  ", depth)+section+":\n") {
				t.Errorf("config.yaml has no section %s", strings.Join(parts[:depth+1], "."))
			}
		}
		if !strings.Contains(string(raw), "\n"+strings.Repeat("  ", len(parts)-1)+parts[len(parts)-1]+":") {
			t.Errorf("config.yaml does not list %s", key)
		}
	}
}

// TestDocsListEverySetting: the settings table of docs/operating.md names
// every key.
func TestDocsListEverySetting(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "operating.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range config.Keys() {
		if !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/operating.md does not document %s", k)
		}
	}
}
