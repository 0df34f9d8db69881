package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is how the canonical form writes an event's time: UTC, RFC 3339,
// always nine fractional digits.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

// Canonical returns the canonical JSON form of e that its hash covers: an
// object with the members action, actor, details, prevHash, promotionId,
// reason, seq, subject and time — every field of the event but Hash — in that
// order (sorted by key), with no whitespace between tokens. Strings are
// written as RFC 8785 writes them: only the quotation mark, the backslash and
// control characters are escaped (\b \t \n \f \r or \u00xx), invalid UTF-8 is
// replaced by U+FFFD. time is written with TimeLayout; details is null when
// empty, and otherwise its JSON value with object members sorted by key
// (bytewise), no whitespace and numbers exactly as written. Details with a
// duplicate object key have no canonical form.
func Canonical(e *Event) ([]byte, error) {
	b := make([]byte, 0, 256+len(e.Details))
	b = append(b, `{"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"actor":`...)
	b = appendString(b, e.Actor)
	b = append(b, `,"details":`...)
	if len(bytes.TrimSpace(e.Details)) == 0 {
		b = append(b, "null"...)
	} else {
		var err error
		if b, err = appendCanonicalJSON(b, e.Details); err != nil {
			return nil, fmt.Errorf("details: %w", err)
		}
	}
	b = append(b, `,"prevHash":`...)
	b = appendString(b, e.PrevHash)
	b = append(b, `,"promotionId":`...)
	b = appendString(b, e.PromotionID)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"subject":`...)
	b = appendString(b, e.Subject)
	b = append(b, `,"time":`...)
	b = appendString(b, e.Time.UTC().Format(TimeLayout))
	return append(b, '}'), nil
}

// CanonicalJSON returns the canonical form of the JSON value data, as
// Canonical writes details.
func CanonicalJSON(data []byte) ([]byte, error) {
	return appendCanonicalJSON(nil, data)
}

func appendCanonicalJSON(b, data []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	b, err := appendValue(b, d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: more than one value")
	}
	return b, nil
}

// member is an object member in canonical form.
type member struct {
	key   string
	value []byte
}

// appendValue appends the canonical form of the next value of d.
func appendValue(b []byte, d *json.Decoder) ([]byte, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			b = append(b, '[')
			for i := 0; d.More(); i++ {
				if i > 0 {
					b = append(b, ',')
				}
				if b, err = appendValue(b, d); err != nil {
					return nil, err
				}
			}
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			return append(b, ']'), nil
		case '{':
			var members []member
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("invalid JSON: %w", err)
				}
				key := kt.(string)
				v, err := appendValue(nil, d)
				if err != nil {
					return nil, err
				}
				members = append(members, member{key, v})
			}
			if _, err := d.Token(); err != nil {
				return nil, fmt.Errorf("invalid JSON: %w", err)
			}
			slices.SortFunc(members, func(x, y member) int {
				switch {
				case x.key < y.key:
					return -1
				case x.key > y.key:
					return 1
				}
				return 0
			})
			b = append(b, '{')
			for i, m := range members {
				if i > 0 {
					if m.key == members[i-1].key {
						return nil, fmt.Errorf("duplicate object key %q", m.key)
					}
					b = append(b, ',')
				}
				b = appendString(b, m.key)
				b = append(b, ':')
				b = append(b, m.value...)
			}
			return append(b, '}'), nil
		}
		return nil, fmt.Errorf("invalid JSON: unexpected %v", t)
	case string:
		return appendString(b, t), nil
	case json.Number:
		return append(b, t...), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case nil:
		return append(b, "null"...), nil
	}
	return nil, fmt.Errorf("invalid JSON: unexpected token %v", tok)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as RFC 8785 does, with
// invalid UTF-8 replaced by U+FFFD (as a JSON decoder reads it).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20:
				b = append(b, c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// formatTime writes t as canonical forms do.
func formatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
