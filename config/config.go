// Package config turns config.yaml, AUTH_* environment variables and
// built-in defaults into one validated Config, so that the serve and compare
// commands and the tests build servers the same way.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/strategy"
)

// Config is every setting of the server. config.yaml documents each key.
type Config struct {
	Server   Server   `mapstructure:"server"`
	Database Database `mapstructure:"database"`
	Strategy string   `mapstructure:"strategy"`
	JWT      JWT      `mapstructure:"jwt"`
	Password Password `mapstructure:"password"`
	Reset    Reset    `mapstructure:"reset"`
	Cookies  Cookies  `mapstructure:"cookies"`
	Devices  Devices  `mapstructure:"devices"`
}

type Server struct {
	Addr           string   `mapstructure:"addr"`
	TrustedProxies []string `mapstructure:"trusted_proxies"`
}

type Database struct {
	Driver        string        `mapstructure:"driver"`
	DSN           string        `mapstructure:"dsn"`
	PruneInterval time.Duration `mapstructure:"prune_interval"`
}

type JWT struct {
	Secret            string        `mapstructure:"secret"`
	SecretFile        string        `mapstructure:"secret_file"`
	Issuer            string        `mapstructure:"issuer"`
	Audience          string        `mapstructure:"audience"`
	AccessTTL         time.Duration `mapstructure:"access_ttl"`
	RefreshTTL        time.Duration `mapstructure:"refresh_ttl"`
	RefreshReuseGrace time.Duration `mapstructure:"refresh_reuse_grace"`
}

type Password struct {
	BcryptCost int `mapstructure:"bcrypt_cost"`
	MinLength  int `mapstructure:"min_length"`
}

type Reset struct {
	ExposeToken bool          `mapstructure:"expose_token"`
	TTL         time.Duration `mapstructure:"ttl"`
}

type Cookies struct {
	Secure         bool     `mapstructure:"secure"`
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

type Devices struct {
	Max     int    `mapstructure:"max"`
	OnLimit string `mapstructure:"on_limit"`
}

// defaults are the built-in values; every key must have one so that an
// AUTH_* variable can set it even when no config file mentions it.
func defaults() map[string]any {
	return map[string]any{
		"server.addr":             "127.0.0.1:8080",
		"server.trusted_proxies":  []string{},
		"database.driver":         "sqlite",
		"database.dsn":            "data/authserver.db",
		"database.prune_interval": "10m",
		"strategy":                "password_key",
		"jwt.secret":              "",
		"jwt.secret_file":         "data/jwt_secret",
		"jwt.issuer":              "authserver",
		"jwt.audience":            "authserver",
		"jwt.access_ttl":          "15m",
		"jwt.refresh_ttl":         "720h",
		"jwt.refresh_reuse_grace": "10s",
		"password.bcrypt_cost":    12,
		"password.min_length":     8,
		"reset.expose_token":      false,
		"reset.ttl":               "30m",
		"cookies.secure":          true,
		"cookies.allowed_origins": []string{},
		"devices.max":             0,
		"devices.on_limit":        "reject",
	}
}

// Defaults is the built-in configuration alone, with no file and no
// environment: what tests and the compare command start from.
func Defaults() *Config {
	v := viper.New()
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		panic(fmt.Sprintf("config: built-in defaults do not decode: %v", err))
	}
	return &c
}

// Load reads the configuration. path is the --config flag: when empty,
// ./config.yaml is used if it exists and built-in defaults otherwise; when
// set, it must be readable. AUTH_* variables override both.
func Load(path string) (*Config, error) {
	v := viper.New()
	for k, val := range defaults() {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("AUTH")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	switch {
	case path != "":
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config %s: %w", path, err)
		}
	default:
		if _, err := os.Stat("config.yaml"); err == nil {
			v.SetConfigFile("config.yaml")
			if err := v.ReadInConfig(); err != nil {
				return nil, fmt.Errorf("read config.yaml: %w", err)
			}
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.Server.TrustedProxies = splitList(c.Server.TrustedProxies)
	c.Cookies.AllowedOrigins = splitList(c.Cookies.AllowedOrigins)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// splitList accepts both a YAML list and one comma-separated string (as an
// environment variable gives it).
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if !slices.Contains(strategy.Names(), c.Strategy) {
		return fmt.Errorf("unknown strategy %q: valid strategies are %s", c.Strategy, strings.Join(strategy.Names(), ", "))
	}
	if !slices.Contains(models.Drivers, c.Database.Driver) {
		return fmt.Errorf("unknown database.driver %q: valid drivers are %s", c.Database.Driver, strings.Join(models.Drivers, ", "))
	}
	if c.Database.DSN == "" {
		return errors.New("database.dsn must be set")
	}
	if c.Password.BcryptCost < 4 || c.Password.BcryptCost > 31 {
		return fmt.Errorf("password.bcrypt_cost must be between 4 and 31, got %d", c.Password.BcryptCost)
	}
	if c.Password.MinLength < 1 || c.Password.MinLength > 72 {
		return fmt.Errorf("password.min_length must be between 1 and 72, got %d", c.Password.MinLength)
	}
	for name, d := range map[string]time.Duration{
		"jwt.access_ttl": c.JWT.AccessTTL, "jwt.refresh_ttl": c.JWT.RefreshTTL,
		"reset.ttl": c.Reset.TTL, "database.prune_interval": c.Database.PruneInterval,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be a positive duration, got %s", name, d)
		}
	}
	if c.JWT.RefreshReuseGrace < 0 {
		return fmt.Errorf("jwt.refresh_reuse_grace must not be negative, got %s", c.JWT.RefreshReuseGrace)
	}
	if c.JWT.Issuer == "" || c.JWT.Audience == "" {
		return errors.New("jwt.issuer and jwt.audience must be set")
	}
	if c.JWT.Secret != "" && len(c.JWT.Secret) < 32 {
		return fmt.Errorf("jwt.secret must be at least 32 bytes, got %d: generate one with `openssl rand -base64 32`", len(c.JWT.Secret))
	}
	if c.Devices.Max < 0 {
		return fmt.Errorf("devices.max must be 0 (unlimited) or more, got %d", c.Devices.Max)
	}
	if c.Devices.OnLimit != "reject" && c.Devices.OnLimit != "evict_oldest" {
		return fmt.Errorf("devices.on_limit must be reject or evict_oldest, got %q", c.Devices.OnLimit)
	}
	return nil
}

// Secret returns the signing secret: jwt.secret when set; otherwise the
// one in jwt.secret_file, which is created with a fresh random secret (mode
// 0600) on first start.
func (c *Config) Secret(log *slog.Logger) ([]byte, error) {
	if c.JWT.Secret != "" {
		return []byte(c.JWT.Secret), nil
	}
	path := c.JWT.SecretFile
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		s, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(s) < 32 {
			return nil, fmt.Errorf("secret file %s does not hold a base64url secret of at least 32 bytes", path)
		}
		return s, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create secret directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create secret file: %w", err)
	}
	if _, err := f.WriteString(base64.RawURLEncoding.EncodeToString(s) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write secret file: %w", err)
	}
	log.Info("generated a new JWT secret", "file", path)
	return s, nil
}

// ServiceConfig is the strategy.Service configuration this Config gives.
func (c *Config) ServiceConfig(secret []byte) strategy.Config {
	return strategy.Config{
		Secret: secret, Issuer: c.JWT.Issuer, Audience: c.JWT.Audience,
		AccessTTL: c.JWT.AccessTTL, RefreshTTL: c.JWT.RefreshTTL, RefreshGrace: c.JWT.RefreshReuseGrace,
		Devices: strategy.Limit{Max: c.Devices.Max, EvictOldest: c.Devices.OnLimit == "evict_oldest"},
	}
}
