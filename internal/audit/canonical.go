package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
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
	b, err := appendHead(make([]byte, 0, 256+len(e.Details)), e)
	if err != nil {
		return nil, err
	}
	b = appendString(b, e.PrevHash)
	b = appendMiddle(b, e)
	b = strconv.AppendInt(b, e.Seq, 10)
	return appendTail(b, e), nil
}

// appendHead appends the canonical form up to the value of prevHash.
func appendHead(b []byte, e *Event) ([]byte, error) {
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
	return append(b, `,"prevHash":`...), nil
}

// appendMiddle appends the canonical form from after prevHash's value to
// the value of seq.
func appendMiddle(b []byte, e *Event) []byte {
	b = append(b, `,"promotionId":`...)
	b = appendString(b, e.PromotionID)
	b = append(b, `,"reason":`...)
	b = appendString(b, e.Reason)
	return append(b, `,"seq":`...)
}

// appendTail appends the canonical form after seq's value.
func appendTail(b []byte, e *Event) []byte {
	b = append(b, `,"subject":`...)
	b = appendString(b, e.Subject)
	b = append(b, `,"time":`...)
	b = appendString(b, e.Time.UTC().Format(TimeLayout))
	return append(b, '}')
}

// CanonicalJSON returns the canonical form of the JSON value data, as
// Canonical writes details.
func CanonicalJSON(data []byte) ([]byte, error) {
	return appendCanonicalJSON(nil, data)
}

func appendCanonicalJSON(b, data []byte) ([]byte, error) {
	p := parser{data: data}
	p.skipSpace()
	b, err := p.value(b, 0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.data) {
		return nil, p.errorf("data after the JSON value")
	}
	return b, nil
}

// maxDepth bounds the nesting of a JSON value.
const maxDepth = 1000

// parser reads one JSON value and writes its canonical form.
type parser struct {
	data []byte
	i    int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("not valid JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// member is an object member in canonical form.
type member struct {
	key   string
	value []byte
}

// value appends the canonical form of the value at p.i.
func (p *parser) value(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	if p.i >= len(p.data) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(b, depth)
	case c == '[':
		p.i++
		b = append(b, '[')
		p.skipSpace()
		if p.i < len(p.data) && p.data[p.i] == ']' {
			p.i++
			return append(b, ']'), nil
		}
		for {
			var err error
			if b, err = p.value(b, depth+1); err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.i >= len(p.data) {
				return nil, p.errorf("unexpected end in an array")
			}
			switch p.data[p.i] {
			case ',':
				p.i++
				p.skipSpace()
				b = append(b, ',')
			case ']':
				p.i++
				return append(b, ']'), nil
			default:
				return nil, p.errorf("want , or ] in an array")
			}
		}
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendString(b, s), nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number(b)
	}
	for _, lit := range []string{"true", "false", "null"} {
		if bytes.HasPrefix(p.data[p.i:], []byte(lit)) {
			p.i += len(lit)
			return append(b, lit...), nil
		}
	}
	return nil, p.errorf("unexpected %q", p.data[p.i])
}

// object appends the canonical form of the object at p.i: members sorted by
// key, none twice.
func (p *parser) object(b []byte, depth int) ([]byte, error) {
	p.i++ // {
	p.skipSpace()
	var members []member
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return append(b, '{', '}'), nil
	}
	for {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, p.errorf("want a string key in an object")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, p.errorf("want : after an object key")
		}
		p.i++
		p.skipSpace()
		v, err := p.value(nil, depth+1)
		if err != nil {
			return nil, err
		}
		members = append(members, member{key, v})
		p.skipSpace()
		if p.i >= len(p.data) {
			return nil, p.errorf("unexpected end in an object")
		}
		if p.data[p.i] == '}' {
			p.i++
			break
		}
		if p.data[p.i] != ',' {
			return nil, p.errorf("want , or } in an object")
		}
		p.i++
		p.skipSpace()
	}
	slices.SortFunc(members, func(x, y member) int { return strings.Compare(x.key, y.key) })
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

// str reads the string at p.i and returns its value, as a JSON decoder
// reads it: escapes resolved, invalid UTF-8 and lone surrogates replaced by
// U+FFFD.
func (p *parser) str() (string, error) {
	p.i++ // "
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.data) {
		c := p.data[p.i]
		if c == '"' {
			s := string(p.data[start:p.i])
			p.i++
			return s, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character in a string")
		}
		p.i++
	}
	out := append([]byte(nil), p.data[start:p.i]...)
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), nil
		case c < 0x20:
			return "", p.errorf("control character in a string")
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.data) {
			break
		}
		e := p.data[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := unicode.ReplacementChar
				if p.i+1 < len(p.data) && p.data[p.i] == '\\' && p.data[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					if lo, ok := p.hex4(); ok && utf16.DecodeRune(r, lo) != unicode.ReplacementChar {
						r2 = utf16.DecodeRune(r, lo)
					} else {
						p.i = save
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", p.errorf("bad escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

// hex4 reads four hex digits at p.i.
func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.data) {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.i : p.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}

// number appends the number at p.i as written, after checking its grammar.
func (p *parser) number(b []byte) ([]byte, error) {
	start := p.i
	digits := func() int {
		n := 0
		for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.data[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.data) && p.data[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, p.errorf("bad number")
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("bad number")
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("bad number")
		}
	}
	return append(b, p.data[start:p.i]...), nil
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
