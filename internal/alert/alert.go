// Package alert is the pure core of Ferry's Alertmanager receiver: it decodes
// Alertmanager's webhook payload (version 4), decides which pipeline
// environments each firing alert concerns, and derives the stable keys and
// one-line summaries under which those alerts are recorded. It does no I/O
// beyond reading the payload it is handed; HTTP handling and the actions
// the engine takes are built on top of it.
package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Version is the only webhook payload version Decode accepts.
const Version = "4"

// DefaultLimit is the payload size Decode allows when given a limit of zero
// or less: 1 MiB.
const DefaultLimit int64 = 1 << 20

// The statuses Alertmanager gives a group and each alert in it.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Errors Decode reports, wrapped with detail; test for them with errors.Is.
var (
	ErrTooLarge           = errors.New("payload too large")
	ErrUnsupportedVersion = errors.New("unsupported webhook version")
	ErrMissingGroupKey    = errors.New("missing groupKey")
)

// Message is one webhook notification: a group of alerts as Alertmanager
// sends it to a receiver. Alertmanager repeats a notification for the same
// group (same GroupKey) while the group keeps firing.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message. EndsAt is the zero time while Alertmanager
// does not know when the alert will end.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Firing reports whether a is firing rather than resolved.
func (a Alert) Firing() bool { return a.Status == StatusFiring }

// Decode reads one webhook payload of at most limit bytes from r (DefaultLimit
// when limit is zero or less). It rejects malformed JSON, naming the line and
// column, a version other than Version, and a payload without a groupKey.
func Decode(r io.Reader, limit int64) (*Message, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("decode alert webhook: read: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("decode alert webhook: %w: more than %d bytes", ErrTooLarge, limit)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("decode alert webhook: empty body")
	}

	var m Message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode alert webhook: %w", jsonError(data, err))
	}
	if m.Version != Version {
		return nil, fmt.Errorf("decode alert webhook: %w %q (want %q)", ErrUnsupportedVersion, m.Version, Version)
	}
	if m.GroupKey == "" {
		return nil, fmt.Errorf("decode alert webhook: %w", ErrMissingGroupKey)
	}
	return &m, nil
}

// jsonError adds the line and column where decoding data failed to err,
// keeping err wrapped.
func jsonError(data []byte, err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		// Offset counts the offending byte itself.
		line, col := position(data, syntax.Offset-1)
		return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		return fmt.Errorf("wrong type at line %d, column %d: %w", line, col, err)
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

// position returns the 1-based line and column of the byte at offset in data.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}
