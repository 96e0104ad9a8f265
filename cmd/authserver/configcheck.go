package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/revocable/authserver/config"
	"github.com/revocable/authserver/strategy"
)

// masked stands for a secret in config check's output.
const masked = "******"

func configCmd(configPath *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective values, secrets masked",
		Long: `check loads the configuration as serve would (--config or ./config.yaml, then
AUTH_* variables over the defaults), validates it, and prints every setting's
effective value. Secrets are masked: jwt.secret and jwt.previous_secrets (by
their key ids), the secrets of introspection.clients, and the passwords in
database.dsn and redis.url, and the Redis Sentinel passwords. It exits non-zero, saying what is wrong, when the
configuration cannot work. It connects to nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(*configPath)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			values := flatten(reflect.ValueOf(*cfg), "")
			for _, k := range config.Keys() {
				v, ok := values[k]
				if !ok {
					return fmt.Errorf("config check does not know how to print %s", k)
				}
				fmt.Fprintf(out, "%s = %s\n", k, maskValue(k, v))
			}
			if err := printSecrets(out, cfg); err != nil {
				return err
			}
			fmt.Fprintln(out, "the configuration is valid")
			return nil
		},
	})
	return cmd
}

// flatten maps each setting's key (the mapstructure tags joined by dots)
// to its value.
func flatten(v reflect.Value, prefix string) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	t := v.Type()
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("mapstructure")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		f := v.Field(i)
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Duration]() {
			for k, fv := range flatten(f, key+".") {
				out[k] = fv
			}
			continue
		}
		out[key] = f
	}
	return out
}

// maskValue prints a setting's value, masking the secrets in it.
func maskValue(key string, v reflect.Value) string {
	switch key {
	case "jwt.secret":
		if s := v.String(); s != "" {
			return masked + " (kid " + strategy.KeyID([]byte(s)) + ")"
		}
		return `""`
	case "jwt.previous_secrets":
		return printList(v, func(s string) string { return masked + " (kid " + strategy.KeyID([]byte(s)) + ")" })
	case "introspection.clients":
		return printList(v, func(s string) string {
			id, _, _ := strings.Cut(s, ":")
			return id + ":" + masked
		})
	case "database.dsn":
		return strconv.Quote(maskDSN(v.String()))
	case "redis.url":
		return strconv.Quote(maskURL(v.String()))
	case "redis.sentinel.password", "redis.sentinel.sentinel_password":
		if v.String() != "" {
			return masked
		}
		return `""`
	}
	return printValue(v)
}

func printValue(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Slice:
		return printList(v, strconv.Quote)
	}
	return fmt.Sprint(v.Interface())
}

func printList(v reflect.Value, item func(string) string) string {
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = item(v.Index(i).String())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// maskDSN masks the password of a MySQL DSN, user:password@proto(addr)/db,
// found as the MySQL driver finds it: the last @ before the last /, and
// the first : before that. A SQLite path has none.
func maskDSN(dsn string) string {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		return dsn
	}
	at := strings.LastIndex(dsn[:slash], "@")
	if at < 0 {
		return dsn
	}
	colon := strings.Index(dsn[:at], ":")
	if colon < 0 {
		return dsn
	}
	return dsn[:colon+1] + masked + dsn[at:]
}

// maskURL masks the password of a URL (redis://user:password@host/0).
func maskURL(raw string) string {
	if raw == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return masked + " (not a valid URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), masked)
		// url escapes the asterisks; the mask reads better without.
		return strings.Replace(u.String(), strings.Repeat("%2A", len(masked)), masked, 1)
	}
	return u.String()
}

// printSecrets says where the server secrets come from and which key ids
// they have, reading the secret file only if it exists: a check creates
// nothing. A secret file that others may read gets a warning instead.
func printSecrets(out io.Writer, cfg *config.Config) error {
	if cfg.JWT.Secret == "" {
		if _, err := os.Stat(cfg.JWT.SecretFile); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(out, "secrets: jwt.secret_file %s does not exist yet; the server generates it on first start\n", cfg.JWT.SecretFile)
			return nil
		}
		// A warning, not a failure: the check is about the settings, and
		// a chmod fixes this without changing any. serve refuses it.
		if err := config.CheckSecretFileMode(cfg.JWT.SecretFile); errors.Is(err, config.ErrSecretFileExposed) {
			fmt.Fprintf(out, "WARNING: %v; serve refuses to start until then\n", err)
			return nil
		}
	}
	keys, err := serverKeys(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "secrets: active kid %s from %s, %d previous (verify only)\n", keys[0].kid, keys[0].source, len(keys)-1)
	return nil
}

// serverKey is one server secret as the keys commands show it.
type serverKey struct {
	kid, status, source string
}

// serverKeys lists the server secrets, the active one first, with where
// each comes from. The secret file must exist when jwt.secret is empty.
func serverKeys(cfg *config.Config) ([]serverKey, error) {
	active, previous, err := cfg.Secrets(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	source := "jwt.secret_file " + cfg.JWT.SecretFile
	if cfg.JWT.Secret != "" {
		source = "jwt.secret"
	}
	keys := []serverKey{{kid: strategy.KeyID(active), status: "active", source: source}}
	// Secrets lists the file's previous secrets before jwt.previous_secrets.
	fromConfig := len(cfg.JWT.PreviousSecrets)
	for i, p := range previous {
		src := source
		if i >= len(previous)-fromConfig {
			src = "jwt.previous_secrets"
		}
		keys = append(keys, serverKey{kid: strategy.KeyID(p), status: "previous", source: src})
	}
	return keys, nil
}
