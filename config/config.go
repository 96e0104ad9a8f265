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
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/revocable/authserver/bruteforce"
	"github.com/revocable/authserver/models"
	"github.com/revocable/authserver/ratelimit"
	"github.com/revocable/authserver/strategy"
)

// Config is every setting of the server. config.yaml documents each key.
type Config struct {
	Server        Server        `mapstructure:"server"`
	Database      Database      `mapstructure:"database"`
	Strategy      string        `mapstructure:"strategy"`
	JWT           JWT           `mapstructure:"jwt"`
	Password      Password      `mapstructure:"password"`
	Reset         Reset         `mapstructure:"reset"`
	Cookies       Cookies       `mapstructure:"cookies"`
	Devices       Devices       `mapstructure:"devices"`
	Cache         Cache         `mapstructure:"cache"`
	Redis         Redis         `mapstructure:"redis"`
	RateLimit     RateLimit     `mapstructure:"ratelimit"`
	BruteForce    BruteForce    `mapstructure:"bruteforce"`
	Log           Log           `mapstructure:"log"`
	Metrics       Metrics       `mapstructure:"metrics"`
	Audit         Audit         `mapstructure:"audit"`
	Introspection Introspection `mapstructure:"introspection"`
	CORS          CORS          `mapstructure:"cors"`
	Demo          Demo          `mapstructure:"demo"`
	Mail          Mail          `mapstructure:"mail"`
	Accounts      Accounts      `mapstructure:"accounts"`
	MFA           MFA           `mapstructure:"mfa"`
}

// Mail is how the server sends its mail (package mail): through SMTP or
// a webhook, from a durable outbox.
type Mail struct {
	From string `mapstructure:"from"`
	// SiteURL is the base of every link in a mail.
	SiteURL      string        `mapstructure:"site_url"`
	TemplatesDir string        `mapstructure:"templates_dir"`
	SMTP         MailSMTP      `mapstructure:"smtp"`
	Webhook      MailWebhook   `mapstructure:"webhook"`
	Links        MailLinks     `mapstructure:"links"`
	RetryDelay   time.Duration `mapstructure:"retry_delay"`
	MaxAttempts  int           `mapstructure:"max_attempts"`
	Retention    time.Duration `mapstructure:"retention"`
	Workers      int           `mapstructure:"workers"`
	// Notify sends the security notices (password changed, email
	// change requested).
	Notify bool `mapstructure:"notify"`
}

type MailSMTP struct {
	Host         string `mapstructure:"host"`
	Port         int    `mapstructure:"port"`
	Username     string `mapstructure:"username"`
	Password     string `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
	TLS          string `mapstructure:"tls"`
}

type MailWebhook struct {
	URL    string `mapstructure:"url"`
	Secret string `mapstructure:"secret"`
}

// MailLinks are the paths, below mail.site_url, of the links in mails;
// the token is added as ?token=.
type MailLinks struct {
	PasswordReset      string `mapstructure:"password_reset"`
	VerifyEmail        string `mapstructure:"verify_email"`
	EmailChangeConfirm string `mapstructure:"email_change_confirm"`
}

// Accounts are the rules of sign-up and of email addresses.
type Accounts struct {
	RequireVerifiedEmail bool          `mapstructure:"require_verified_email"`
	VerifyTTL            time.Duration `mapstructure:"verify_ttl"`
	VerifyCooldown       time.Duration `mapstructure:"verify_cooldown"`
	EmailChangeTTL       time.Duration `mapstructure:"email_change_ttl"`
	EmailChangeRevokes   bool          `mapstructure:"email_change_revokes"`
}

// MailTransport names the configured transport: smtp, webhook or "" (none).
func (c *Config) MailTransport() string {
	switch {
	case c.Mail.SMTP.Host != "":
		return "smtp"
	case c.Mail.Webhook.URL != "":
		return "webhook"
	}
	return ""
}

// SMTPPassword is mail.smtp.password, or the first line of
// mail.smtp.password_file.
func (c *Config) SMTPPassword() (string, error) {
	if c.Mail.SMTP.PasswordFile == "" {
		return c.Mail.SMTP.Password, nil
	}
	b, err := os.ReadFile(c.Mail.SMTP.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("mail.smtp.password_file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(pw, "\r"), nil
}

// validateMail checks the mail.* settings.
func (c *Config) validateMail() error {
	m := c.Mail
	if m.SiteURL != "" {
		u, err := url.Parse(m.SiteURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("mail.site_url must be an absolute http(s) URL such as https://app.example.com, got %q", m.SiteURL)
		}
	}
	if m.SMTP.Host != "" && m.Webhook.URL != "" {
		return errors.New("mail.smtp.host and mail.webhook.url are both set: choose one transport")
	}
	if c.MailTransport() != "" && m.SiteURL == "" {
		return errors.New("mail.site_url must be set when a mail transport is configured: it is the base of every link in a mail")
	}
	if m.SMTP.Host != "" {
		if m.From == "" {
			return errors.New("mail.from must be set with mail.smtp.host")
		}
		if strings.ContainsAny(m.From+m.SMTP.Host, "\r\n") {
			return errors.New("mail.from and mail.smtp.host must not contain line breaks")
		}
	}
	if m.SMTP.Port < 1 || m.SMTP.Port > 65535 {
		return fmt.Errorf("mail.smtp.port must be between 1 and 65535, got %d", m.SMTP.Port)
	}
	if !slices.Contains([]string{"starttls", "tls", "none"}, m.SMTP.TLS) {
		return fmt.Errorf("mail.smtp.tls must be starttls, tls or none, got %q", m.SMTP.TLS)
	}
	if m.SMTP.Password != "" && m.SMTP.PasswordFile != "" {
		return errors.New("mail.smtp.password and mail.smtp.password_file are both set: choose one")
	}
	if m.Webhook.URL != "" {
		u, err := url.Parse(m.Webhook.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("mail.webhook.url must be an absolute http(s) URL, got %q", m.Webhook.URL)
		}
		if len(m.Webhook.Secret) < 16 {
			return errors.New("mail.webhook.secret must be at least 16 bytes when mail.webhook.url is set")
		}
	}
	for name, p := range map[string]string{
		"mail.links.password_reset": m.Links.PasswordReset, "mail.links.verify_email": m.Links.VerifyEmail,
		"mail.links.email_change_confirm": m.Links.EmailChangeConfirm,
	} {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%s must be a path starting with /, got %q", name, p)
		}
	}
	if m.MaxAttempts < 1 || m.MaxAttempts > 100 {
		return fmt.Errorf("mail.max_attempts must be between 1 and 100, got %d", m.MaxAttempts)
	}
	if m.Workers < 1 || m.Workers > 64 {
		return fmt.Errorf("mail.workers must be between 1 and 64, got %d", m.Workers)
	}
	for name, d := range map[string]time.Duration{
		"mail.retry_delay": m.RetryDelay, "mail.retention": m.Retention,
		"accounts.verify_ttl": c.Accounts.VerifyTTL, "accounts.email_change_ttl": c.Accounts.EmailChangeTTL,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be a positive duration, got %s", name, d)
		}
	}
	if c.Accounts.VerifyCooldown < 0 {
		return fmt.Errorf("accounts.verify_cooldown must not be negative, got %s", c.Accounts.VerifyCooldown)
	}
	return nil
}

// MailWarnings are settings that work but are probably not meant (config
// check prints them).
func (c *Config) MailWarnings() []string {
	var w []string
	if c.MailTransport() != "" && !c.Accounts.RequireVerifiedEmail {
		w = append(w, "a mail transport is configured but accounts.require_verified_email is false: anyone can register an address they do not own")
	}
	return w
}

// MFA is the second factor (TOTP and recovery codes).
type MFA struct {
	// EnrollRevokesOthers: confirming or removing a factor ends every
	// other login of the account, as logout-others does.
	EnrollRevokesOthers bool `mapstructure:"enroll_revokes_others"`
}

type Server struct {
	Addr           string   `mapstructure:"addr"`
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// HeapFloorMiB is the heap size (MiB) below which authserver serve
	// does not collect garbage; 0 leaves the Go runtime's default (see
	// internal/heapfloor).
	HeapFloorMiB int `mapstructure:"heap_floor_mib"`
	// BodyTimeout bounds the reading of a request body, on every route
	// and only on requests that have one (see routes: bodyDeadline).
	BodyTimeout time.Duration `mapstructure:"body_timeout"`
}

type Database struct {
	Driver        string        `mapstructure:"driver"`
	DSN           string        `mapstructure:"dsn"`
	PruneInterval time.Duration `mapstructure:"prune_interval"`
	// TablePrefix goes in front of every table name of ours, so that the
	// server can share a database with the application it is embedded in.
	TablePrefix string `mapstructure:"table_prefix"`
}

type JWT struct {
	Secret string `mapstructure:"secret"`
	// PreviousSecrets verify tokens signed before a rotation; they never
	// sign.
	PreviousSecrets         []string      `mapstructure:"previous_secrets"`
	SecretFile              string        `mapstructure:"secret_file"`
	Issuer                  string        `mapstructure:"issuer"`
	Audience                string        `mapstructure:"audience"`
	AccessTTL               time.Duration `mapstructure:"access_ttl"`
	RefreshTTL              time.Duration `mapstructure:"refresh_ttl"`
	RefreshReuseGrace       time.Duration `mapstructure:"refresh_reuse_grace"`
	RefreshSupersedesAccess bool          `mapstructure:"refresh_supersedes_access"`
}

type Password struct {
	BcryptCost int `mapstructure:"bcrypt_cost"`
	MinLength  int `mapstructure:"min_length"`
	// MaxConcurrentHashes bounds bcrypt work; 0 means GOMAXPROCS-1 (at
	// least 1), leaving a core for verification.
	MaxConcurrentHashes int           `mapstructure:"max_concurrent_hashes"`
	HashQueueTimeout    time.Duration `mapstructure:"hash_queue_timeout"`
}

type Reset struct {
	ExposeToken bool          `mapstructure:"expose_token"`
	TTL         time.Duration `mapstructure:"ttl"`
	Cooldown    time.Duration `mapstructure:"cooldown"`
}

type Cookies struct {
	Secure         bool     `mapstructure:"secure"`
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

type Devices struct {
	Max     int    `mapstructure:"max"`
	OnLimit string `mapstructure:"on_limit"`
}

// Cache is the verification cache of each instance.
type Cache struct {
	Enabled    bool `mapstructure:"enabled"`
	MaxEntries int  `mapstructure:"max_entries"`
	// MaxStaleness bounds how old the newest successful read of the
	// invalidation table may be before the cache is no longer trusted.
	MaxStaleness time.Duration `mapstructure:"max_staleness"`
}

type Redis struct {
	// URL is e.g. redis://127.0.0.1:6379/0; empty means no Redis.
	URL string `mapstructure:"url"`
	// Prefix namespaces every key and channel, so that several
	// deployments can share one Redis.
	Prefix string `mapstructure:"prefix"`
	// Sentinel, when its master is set, reaches a replicated Redis through
	// Redis Sentinel instead of URL: the client asks the sentinels where
	// the master is and follows a failover.
	Sentinel Sentinel `mapstructure:"sentinel"`
}

// Sentinel is a Redis replicated under Redis Sentinel.
type Sentinel struct {
	// Master is the name the sentinels monitor the master under.
	Master string `mapstructure:"master"`
	// Addrs are the sentinels, host:port each; any one that answers will
	// do, so list them all.
	Addrs []string `mapstructure:"addrs"`
	// Password (and Username, for ACLs) authenticate to the Redis nodes;
	// SentinelPassword to the sentinels, when they require it.
	Username         string `mapstructure:"username"`
	Password         string `mapstructure:"password"`
	SentinelPassword string `mapstructure:"sentinel_password"`
	// DB is the database number on the nodes.
	DB int `mapstructure:"db"`
}

// Enabled reports whether Redis is configured, by URL or through Sentinel.
func (r Redis) Enabled() bool { return r.URL != "" || r.Sentinel.Master != "" }

// RateLimit rules are "N/duration" strings; "0" or "" turns one off.
type RateLimit struct {
	LoginPerIP      string `mapstructure:"login_per_ip"`
	RegisterPerIP   string `mapstructure:"register_per_ip"`
	ResetPerIP      string `mapstructure:"reset_per_ip"`
	ResetPerAccount string `mapstructure:"reset_per_account"`
	RefreshPerIP    string `mapstructure:"refresh_per_ip"`
	VerifyPerIP     string `mapstructure:"verify_per_ip"`
}

type BruteForce struct {
	MaxFailures int           `mapstructure:"max_failures"`
	BaseDelay   time.Duration `mapstructure:"base_delay"`
	MaxDelay    time.Duration `mapstructure:"max_delay"`
}

type Log struct {
	Format string `mapstructure:"format"`
	Level  string `mapstructure:"level"`
}

type Metrics struct {
	Addr string `mapstructure:"addr"`
}

type Audit struct {
	Retention time.Duration `mapstructure:"retention"`
}

type Introspection struct {
	// Clients are "id:secret" pairs allowed to call the introspection
	// endpoint with HTTP Basic authentication.
	Clients []string `mapstructure:"clients"`
	// RefreshTokenClients are the ids, among Clients, that may learn
	// that a refresh token is active; to every other client a refresh
	// token is {"active": false}, so that it cannot pass as a bearer.
	RefreshTokenClients []string `mapstructure:"refresh_token_clients"`
}

type CORS struct {
	AllowedOrigins []string `mapstructure:"allowed_origins"`
}

type Demo struct {
	Enabled bool `mapstructure:"enabled"`
}

// defaults are the built-in values; every key must have one so that an
// AUTH_* variable can set it even when no config file mentions it.
func defaults() map[string]any {
	return map[string]any{
		"server.addr":             "127.0.0.1:8080",
		"server.trusted_proxies":  []string{},
		"server.heap_floor_mib":   64,
		"server.body_timeout":     "15s",
		"database.driver":         "sqlite",
		"database.dsn":            "data/authserver.db",
		"database.prune_interval": "10m",
		"database.table_prefix":   "",
		"strategy":                "password_key",
		"jwt.secret":              "",
		"jwt.previous_secrets":    []string{},
		"jwt.secret_file":         "data/jwt_secret",
		"jwt.issuer":              "authserver",
		"jwt.audience":            "authserver",
		"jwt.access_ttl":          "15m",
		"jwt.refresh_ttl":         "720h",
		"jwt.refresh_reuse_grace": "10s",
		// A refresh leaves the access token it replaced valid: several
		// tabs of one browser share a login, see docs/strategies.md.
		"jwt.refresh_supersedes_access":  false,
		"password.bcrypt_cost":           12,
		"password.min_length":            8,
		"password.max_concurrent_hashes": 0,
		"password.hash_queue_timeout":    "2s",
		"reset.expose_token":             false,
		"reset.ttl":                      "30m",
		"reset.cooldown":                 "1m",
		"cookies.secure":                 true,
		"cookies.allowed_origins":        []string{},
		"devices.max":                    0,
		"devices.on_limit":               "reject",
		"cache.enabled":                  true,
		"cache.max_entries":              100000,
		"cache.max_staleness":            "1s",
		"redis.url":                      "",
		"redis.prefix":                   "authserver:",
		"ratelimit.login_per_ip":         "30/1m",
		"ratelimit.register_per_ip":      "10/1h",
		"ratelimit.reset_per_ip":         "30/5m",
		"ratelimit.reset_per_account":    "3/1h",
		"ratelimit.refresh_per_ip":       "150/5m",
		"ratelimit.verify_per_ip":        "0",
		"bruteforce.max_failures":        5,
		"bruteforce.base_delay":          "30s",
		"bruteforce.max_delay":           "15m",
		"log.format":                     "text",
		"log.level":                      "info",
		"metrics.addr":                   "",
		"audit.retention":                "2160h",
		"introspection.clients":          []string{},
		"cors.allowed_origins":           []string{},
		"demo.enabled":                   false,
		"mfa.enroll_revokes_others":      true,

		"introspection.refresh_token_clients": []string{},

		// Redis under Sentinel (redis.sentinel.master set) instead of redis.url.
		"redis.sentinel.master":            "",
		"redis.sentinel.addrs":             []string{},
		"redis.sentinel.username":          "",
		"redis.sentinel.password":          "",
		"redis.sentinel.sentinel_password": "",
		"redis.sentinel.db":                0,

		// Mail (docs/mail.md) and the account rules that use it.
		"mail.from":                       "",
		"mail.site_url":                   "",
		"mail.templates_dir":              "",
		"mail.smtp.host":                  "",
		"mail.smtp.port":                  587,
		"mail.smtp.username":              "",
		"mail.smtp.password":              "",
		"mail.smtp.password_file":         "",
		"mail.smtp.tls":                   "starttls",
		"mail.webhook.url":                "",
		"mail.webhook.secret":             "",
		"mail.links.password_reset":       "/reset-password",
		"mail.links.verify_email":         "/verify-email",
		"mail.links.email_change_confirm": "/confirm-email-change",
		"mail.retry_delay":                "10s",
		"mail.max_attempts":               8,
		"mail.retention":                  "720h",
		"mail.workers":                    4,
		"mail.notify":                     true,
		"accounts.require_verified_email": false,
		"accounts.verify_ttl":             "24h",
		"accounts.verify_cooldown":        "1m",
		"accounts.email_change_ttl":       "1h",
		"accounts.email_change_revokes":   true,
	}
}

// Keys lists every setting's key, sorted.
func Keys() []string {
	keys := slices.Collect(maps.Keys(defaults()))
	slices.Sort(keys)
	return keys
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
	c.normalize()
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
	c.normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// normalize splits the list settings (see splitList).
func (c *Config) normalize() {
	for _, l := range []*[]string{
		&c.Server.TrustedProxies, &c.Cookies.AllowedOrigins, &c.JWT.PreviousSecrets,
		&c.Introspection.Clients, &c.CORS.AllowedOrigins, &c.Redis.Sentinel.Addrs,
		&c.Introspection.RefreshTokenClients,
	} {
		*l = splitList(*l)
	}
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
	if c.Server.BodyTimeout <= 0 || c.Server.BodyTimeout > 10*time.Minute {
		return fmt.Errorf("server.body_timeout must be above 0 and at most 10m, got %s", c.Server.BodyTimeout)
	}
	if c.Server.HeapFloorMiB < 0 || c.Server.HeapFloorMiB > 1<<20 {
		return fmt.Errorf("server.heap_floor_mib must be between 0 and 1048576, got %d", c.Server.HeapFloorMiB)
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
	if c.Devices.Max > strategy.MaxDevices {
		return fmt.Errorf("devices.max must be at most %d (the built-in ceiling), got %d", strategy.MaxDevices, c.Devices.Max)
	}
	for i, s := range c.JWT.PreviousSecrets {
		if len(s) < 32 {
			return fmt.Errorf("jwt.previous_secrets[%d] must be at least 32 bytes, got %d", i, len(s))
		}
	}
	if c.Cache.Enabled && c.Cache.MaxEntries < 1 {
		return fmt.Errorf("cache.max_entries must be at least 1 when the cache is enabled, got %d", c.Cache.MaxEntries)
	}
	for name, d := range map[string]time.Duration{
		"cache.max_staleness": c.Cache.MaxStaleness, "password.hash_queue_timeout": c.Password.HashQueueTimeout,
		"audit.retention": c.Audit.Retention,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be a positive duration, got %s", name, d)
		}
	}
	if c.Reset.Cooldown < 0 {
		return fmt.Errorf("reset.cooldown must not be negative, got %s", c.Reset.Cooldown)
	}
	if c.Password.MaxConcurrentHashes < 0 {
		return fmt.Errorf("password.max_concurrent_hashes must be 0 (automatic) or more, got %d", c.Password.MaxConcurrentHashes)
	}
	if c.BruteForce.MaxFailures < 0 {
		return fmt.Errorf("bruteforce.max_failures must be 0 (off) or more, got %d", c.BruteForce.MaxFailures)
	}
	if err := c.BruteForcePolicy().Validate(); err != nil {
		return err
	}
	if _, err := c.RateLimitRules(); err != nil {
		return err
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		return fmt.Errorf("log.format must be text or json, got %q", c.Log.Format)
	}
	if _, err := c.LogLevel(); err != nil {
		return err
	}
	for i, cl := range c.Introspection.Clients {
		id, secret, ok := strings.Cut(cl, ":")
		if !ok || id == "" || len(secret) < 16 {
			return fmt.Errorf("introspection.clients[%d] must be id:secret with a secret of at least 16 bytes", i)
		}
	}
	for _, id := range c.Introspection.RefreshTokenClients {
		if !slices.ContainsFunc(c.Introspection.Clients, func(cl string) bool { return strings.HasPrefix(cl, id+":") }) {
			return fmt.Errorf("introspection.refresh_token_clients names %q, which is not a client id of introspection.clients", id)
		}
	}
	if err := c.Redis.validate(); err != nil {
		return err
	}
	for key, list := range map[string][]string{"cors.allowed_origins": c.CORS.AllowedOrigins, "cookies.allowed_origins": c.Cookies.AllowedOrigins} {
		for _, o := range list {
			if !isOrigin(o) {
				return fmt.Errorf("%s must list exact origins such as https://app.example.com (scheme and host, no path, no trailing slash), got %q", key, o)
			}
		}
	}
	return c.validateMail()
}

func (r Redis) validate() error {
	s := r.Sentinel
	switch {
	case s.Master == "" && len(s.Addrs) > 0:
		return errors.New("redis.sentinel.addrs is set but redis.sentinel.master is empty: name the master the sentinels monitor")
	case s.Master == "":
		return nil
	case r.URL != "":
		return errors.New("redis.url and redis.sentinel.master are both set: use one (the URL for a single Redis, the sentinel settings for a replicated one)")
	case len(s.Addrs) == 0:
		return errors.New("redis.sentinel.master is set but redis.sentinel.addrs is empty: list the sentinels as host:port")
	case s.DB < 0:
		return fmt.Errorf("redis.sentinel.db must be 0 or more, got %d", s.DB)
	}
	for i, a := range s.Addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fmt.Errorf("redis.sentinel.addrs[%d] must be host:port, got %q", i, a)
		}
	}
	return nil
}

// isOrigin reports whether o is an origin as a browser sends it in the
// Origin header: http or https, a host and maybe a port, nothing else.
// Anything more ("https://a.example/", a path, "*", "null") could never
// equal the header, so the setting would silently do nothing.
func isOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		o == u.Scheme+"://"+u.Host
}

// RateLimitRules are the ratelimit.* rules by name (login_per_ip, ...).
func (c *Config) RateLimitRules() (map[string]ratelimit.Rule, error) {
	out := map[string]ratelimit.Rule{}
	for name, v := range map[string]string{
		"login_per_ip": c.RateLimit.LoginPerIP, "register_per_ip": c.RateLimit.RegisterPerIP,
		"reset_per_ip": c.RateLimit.ResetPerIP, "reset_per_account": c.RateLimit.ResetPerAccount,
		"refresh_per_ip": c.RateLimit.RefreshPerIP, "verify_per_ip": c.RateLimit.VerifyPerIP,
	} {
		r, err := ratelimit.ParseRule(v)
		if err != nil {
			return nil, fmt.Errorf("ratelimit.%s: %w", name, err)
		}
		out[name] = r
	}
	return out, nil
}

// NoLimits turns every rate limit and the brute-force throttle off: for
// tests and measurements whose requests all come from one address.
func (c *Config) NoLimits() {
	c.RateLimit = RateLimit{LoginPerIP: "0", RegisterPerIP: "0", ResetPerIP: "0", ResetPerAccount: "0", RefreshPerIP: "0", VerifyPerIP: "0"}
	c.BruteForce.MaxFailures = 0
}

// BruteForcePolicy is the bruteforce.* settings.
func (c *Config) BruteForcePolicy() bruteforce.Policy {
	return bruteforce.Policy{MaxFailures: c.BruteForce.MaxFailures, BaseDelay: c.BruteForce.BaseDelay, MaxDelay: c.BruteForce.MaxDelay}
}

// LogLevel is log.level as a slog.Level.
func (c *Config) LogLevel() (slog.Level, error) {
	switch c.Log.Level {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level must be debug, info, warn or error, got %q", c.Log.Level)
}

// Secrets returns the server secrets: the active one, which signs, and the
// previous ones, which only verify (tokens signed before a rotation).
//
// With jwt.secret set, it is the active secret and jwt.previous_secrets the
// previous ones. Otherwise the secrets live in jwt.secret_file, one
// base64url secret per line, the active one first (see RotateSecretFile);
// the file is created with a fresh random secret (mode 0600) on first
// start, and jwt.previous_secrets are added to its previous ones.
func (c *Config) Secrets(log *slog.Logger) (active []byte, previous [][]byte, err error) {
	for _, p := range c.JWT.PreviousSecrets {
		previous = append(previous, []byte(p))
	}
	if c.JWT.Secret != "" {
		return []byte(c.JWT.Secret), previous, nil
	}
	path := c.JWT.SecretFile
	secrets, err := readSecretFile(path)
	switch {
	case err == nil:
		if err := CheckSecretFileMode(path); err != nil {
			return nil, nil, err
		}
		return secrets[0], append(secrets[1:], previous...), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, err
	}
	s := newSecret()
	if err := writeSecretFile(path, [][]byte{s}, os.O_EXCL); err != nil {
		return nil, nil, err
	}
	log.Info("generated a new JWT secret", "file", path)
	return s, previous, nil
}

// RotateSecretFile makes a fresh secret the active one in the secret file
// and keeps the ones before it as previous secrets (keep reads at most
// keep of them, the oldest are dropped; 0 drops every previous one: the
// emergency "log everyone out"). It returns how many previous secrets the
// file keeps.
func RotateSecretFile(path string, keep int) (int, error) {
	old, err := readSecretFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if keep < 0 {
		keep = 0
	}
	old = old[:min(len(old), keep)]
	if err := replaceSecretFile(path, append([][]byte{newSecret()}, old...)); err != nil {
		return 0, err
	}
	return len(old), nil
}

// ErrSecretFileExposed marks a secret file that others than its owner may
// read: anyone who can read it can sign access tokens for every account.
var ErrSecretFileExposed = errors.New("the secret file is readable by group or others")

// CheckSecretFileMode refuses a secret file whose mode lets the group or
// others read or write it (mode & 0o077), as ssh does with a private key:
// the server refuses to start with it, and `config check` warns. The file
// the server generates is 0600; a copy made by hand or a deployment tool
// often is not. The mode of the file a symlink points to is what counts.
func CheckSecretFileMode(path string) error {
	if runtime.GOOS == "windows" {
		// No POSIX modes to check.
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("secret file: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("jwt.secret_file %s has mode %04o: %w; make it readable by the server's user only (chmod 600 %s)", path, m, ErrSecretFileExposed, path)
	}
	return nil
}

// replaceSecretFile replaces the secret file with one holding secrets,
// atomically: a temporary file in the same directory (mode 0600), synced,
// then renamed over the old one. A crash or a full disk midway leaves the
// old file whole, never an empty or half-written one (which O_TRUNC in
// place did), and a server starting meanwhile reads the old or the new
// secrets, never a mix.
func replaceSecretFile(path string, secrets [][]byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create secret directory: %w", err)
	}
	// CreateTemp makes the file with mode 0600.
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create secret file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("create secret file: %w", err)
	}
	var b strings.Builder
	for _, s := range secrets {
		b.WriteString(base64.RawURLEncoding.EncodeToString(s) + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		return fmt.Errorf("write secret file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write secret file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace secret file: %w", err)
	}
	// The rename itself is durable once the directory is synced.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// readSecretFile reads the secrets of a secret file, the active one
// first. Every line must be a base64url secret of at least 32 bytes.
func readSecretFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := base64.RawURLEncoding.DecodeString(line)
		if err != nil || len(s) < 32 {
			return nil, fmt.Errorf("secret file %s does not hold base64url secrets of at least 32 bytes", path)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("secret file %s holds no secret", path)
	}
	return out, nil
}

func writeSecretFile(path string, secrets [][]byte, flag int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create secret directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return fmt.Errorf("create secret file: %w", err)
	}
	var b strings.Builder
	for _, s := range secrets {
		b.WriteString(base64.RawURLEncoding.EncodeToString(s) + "\n")
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("write secret file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write secret file: %w", err)
	}
	return nil
}

func newSecret() []byte {
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	return s
}

// ServiceConfig is the strategy.Service configuration this Config gives.
func (c *Config) ServiceConfig(secret []byte, previous ...[]byte) strategy.Config {
	return strategy.Config{
		Secret: secret, PreviousSecrets: previous, Issuer: c.JWT.Issuer, Audience: c.JWT.Audience,
		AccessTTL: c.JWT.AccessTTL, RefreshTTL: c.JWT.RefreshTTL, RefreshGrace: c.JWT.RefreshReuseGrace,
		Devices:                 strategy.Limit{Max: c.Devices.Max, EvictOldest: c.Devices.OnLimit == "evict_oldest"},
		RefreshSupersedesAccess: c.JWT.RefreshSupersedesAccess,
		AuditRetention:          c.Audit.Retention,
		MFAEnrollRevokesOthers:  c.MFA.EnrollRevokesOthers,
	}
}
