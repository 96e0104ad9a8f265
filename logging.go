package authserver

import (
	"io"
	"log/slog"
	"os"

	"github.com/revocable/authserver/config"
)

// NewLogger builds the logger that log.format (text or json) and log.level
// ask for, writing to w (nil: standard error).
func NewLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	if w == nil {
		w = os.Stderr
	}
	level, err := cfg.LogLevel()
	if err != nil {
		return nil, err
	}
	o := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return slog.New(slog.NewTextHandler(w, o)), nil
}
