package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// actor returns who makes r: the user of its principal (the token's user,
// or the X-Ferry-Actor when authentication is off).
func actor(r *http.Request) (string, error) {
	if p, ok := PrincipalFrom(r.Context()); ok {
		return p.User, nil
	}
	return headerActor(r)
}

// headerActor returns who makes r according to its X-Ferry-Actor header.
func headerActor(r *http.Request) (string, error) {
	a := strings.TrimSpace(r.Header.Get(HeaderActor))
	if a == "" {
		return DefaultActor, nil
	}
	if len(a) > MaxActorLength {
		return "", invalidf("header %s is longer than %d bytes", HeaderActor, MaxActorLength)
	}
	if strings.ContainsFunc(a, unicode.IsControl) {
		return "", invalidf("header %s contains control characters", HeaderActor)
	}
	return a, nil
}

// decodeJSON reads r's body as exactly one JSON value into v, refusing
// unknown fields. Its errors name the problem and, where known, its position.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit)
		}
		return invalidf("read request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidf("request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf("request body: %s", describeJSONError(body, err))
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		off := end + int64(len(body[end:])-len(bytes.TrimLeft(body[end:], " \t\r\n")))
		return invalidf("request body: unexpected data after the JSON value at %s", position(body, off))
	}
	return nil
}

// describeJSONError explains a decoding error of body in words, with the
// line, column and byte offset where the decoder reports one.
func describeJSONError(body []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included.
		return fmt.Sprintf("malformed JSON at %s: %s", position(body, syn.Offset-1), syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the body"
		} else {
			field = "field " + strconv.Quote(field)
		}
		return fmt.Sprintf("%s must be %s, not JSON %s (near %s)", field, jsonKind(typ.Type.Kind().String()), typ.Value, position(body, typ.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	// Unknown fields and other decoder errors carry no offset.
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names a Go kind the way a JSON author thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "struct", "map":
		return "an object"
	case "slice", "array":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return kind
}

// position describes byte offset off of body as "line L, column C (offset O)",
// counting lines and columns from 1.
func position(body []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(body)) {
		off = int64(len(body))
	}
	before := body[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return fmt.Sprintf("line %d, column %d (offset %d)", line, col, off)
}

// queryInt parses query parameter name as an integer in [min, max], returning
// def when it is absent.
func queryInt(q url.Values, name string, def, min, max int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, invalidf("query parameter %s: %q is not an integer", name, s)
	}
	if n < min || n > max {
		return 0, invalidf("query parameter %s: %d is out of range [%d, %d]", name, n, min, max)
	}
	return n, nil
}

// queryInt64 parses query parameter name as a non-negative 64-bit integer,
// returning 0 when it is absent.
func queryInt64(q url.Values, name string) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, invalidf("query parameter %s: %q is not a non-negative integer", name, s)
	}
	return n, nil
}

// queryLimit parses the limit parameter of a list.
func queryLimit(q url.Values) (int, error) {
	return queryInt(q, "limit", DefaultLimit, 1, MaxLimit)
}

// queryBool parses query parameter name as a boolean, false when absent.
func queryBool(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalidf("query parameter %s: %q is not true or false", name, s)
	}
	return b, nil
}

// queryTime parses query parameter name as an RFC 3339 time, zero when absent.
func queryTime(q url.Values, name string) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalidf("query parameter %s: %q is not an RFC 3339 time such as 2025-01-31T09:00:00Z", name, s)
	}
	return t, nil
}

// queryList returns every value of a repeatable parameter that may also hold
// a comma-separated list, without empty items.
func queryList(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// queryTimeout parses the timeout of a long-poll: a Go duration ("30s") or a
// number of seconds, capped at MaxWaitTimeout.
func queryTimeout(q url.Values) (time.Duration, error) {
	s := q.Get("timeout")
	if s == "" {
		return DefaultWaitTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.Atoi(s)
		if nerr != nil {
			return 0, invalidf("query parameter timeout: %q is not a duration such as 30s", s)
		}
		d = time.Duration(min(n, int(MaxWaitTimeout/time.Second))) * time.Second
	}
	if d <= 0 {
		return 0, invalidf("query parameter timeout: %q must be positive", s)
	}
	return min(d, MaxWaitTimeout), nil
}
