package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/mattn/go-isatty"
)

// Log formats of --log-format.
const (
	logJSON = "json"
	logText = "text"
	logAuto = "auto"
)

// newLogger returns the server's logger writing to out at level in format:
// JSON lines, logfmt-style text, or auto — text when out is a terminal,
// JSON otherwise (a file, a pipe, a log collector).
func newLogger(out io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case logJSON:
	case logText:
		return slog.New(slog.NewTextHandler(out, opts)), nil
	case logAuto, "":
		if isTerminal(out) {
			return slog.New(slog.NewTextHandler(out, opts)), nil
		}
	default:
		return nil, usageErrorf("--log-format %q: want json, text or auto", format)
	}
	return slog.New(slog.NewJSONHandler(out, opts)), nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
