package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Web asks an HTTP endpoint that answers with JSON, such as a vendor's
// metrics API or a service's own status page. The decoded document, or the
// part of it that JSONPath selects, is the variable result of the analysis's
// conditions: successCondition: result.errorRate < 0.01.
type Web struct {
	// URL is the endpoint. Interpolate its variables before use.
	URL string
	// Method is the HTTP method. Defaults to GET.
	Method string
	// Headers are added to the request, such as Authorization. Defaults to
	// none.
	Headers map[string]string
	// Body is the request body. Defaults to none.
	Body string
	// JSONPath selects the part of the document the conditions see, such as
	// $.data.errorRate or $.items[0]; it supports the root $, .name,
	// ['name'] and [index]. A path that selects nothing, like a document
	// that is null, is no data. Defaults to the whole document.
	JSONPath string
	// Client sends the request. Defaults to a client that gives up after
	// DefaultTimeout.
	Client *http.Client
}

// Query requests w.URL and decodes the JSON it returns. Web has no query
// language and no history: query and at are ignored. A status other than
// 2xx is an error.
func (w Web) Query(ctx context.Context, _ string, _ time.Time) (Value, error) {
	path, err := parseJSONPath(w.JSONPath)
	if err != nil {
		return Value{}, fmt.Errorf("web: jsonPath %q: %w", w.JSONPath, err)
	}
	method := strings.ToUpper(w.Method)
	if method == "" {
		method = http.MethodGet
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Value{}, fmt.Errorf("web: url %q is not an http or https URL", w.URL)
	}
	where := method + " " + u.Redacted()
	var body io.Reader
	if w.Body != "" {
		body = strings.NewReader(w.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.URL, body)
	if err != nil {
		return Value{}, fmt.Errorf("web: %s: %w", where, err)
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range w.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := w.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the method and URL
		}
		return Value{}, fmt.Errorf("web: %s: %w", where, err)
	}
	defer resp.Body.Close()
	b, err := readBody(resp)
	if err != nil {
		return Value{}, fmt.Errorf("web: %s: %w", where, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Value{}, fmt.Errorf("web: %s: status %d, want 2xx: %s", where, resp.StatusCode, snippet(b))
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		return Value{}, fmt.Errorf("web: %s: response is not JSON: %w", where, err)
	}
	if dec.More() {
		return Value{}, fmt.Errorf("web: %s: response has more than one JSON document", where)
	}
	return Value{JSON: path.selectFrom(doc)}, nil
}

// jsonPath is a parsed JSONPath: the steps from the root, each a string (an
// object member) or an int (a list index).
type jsonPath []any

// parseJSONPath parses the subset of JSONPath that selects one node:
// $, .name, ['name'] and [index]. The leading $ may be left out.
func parseJSONPath(src string) (jsonPath, error) {
	s, rooted := strings.CutPrefix(strings.TrimSpace(src), "$")
	if !rooted && s != "" && s[0] != '.' && s[0] != '[' {
		s = "." + s // data.value is read as $.data.value
	}
	var path jsonPath
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			name := s[:end]
			if name == "" || name == "*" {
				return nil, fmt.Errorf("expected a member name at %q", s)
			}
			path = append(path, name)
			s = s[end:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ at %q", s)
			}
			inner := strings.TrimSpace(s[1:end])
			switch {
			case len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0]:
				path = append(path, inner[1:len(inner)-1])
			default:
				i, err := strconv.Atoi(inner)
				if err != nil || i < 0 {
					return nil, fmt.Errorf("expected a quoted name or an index at %q", s)
				}
				path = append(path, i)
			}
			s = s[end+1:]
		default:
			return nil, fmt.Errorf("expected . or [ at %q", s)
		}
	}
	return path, nil
}

// selectFrom returns the node of doc that p selects, or nil if there is none.
func (p jsonPath) selectFrom(doc any) any {
	for _, step := range p {
		switch step := step.(type) {
		case string:
			m, ok := doc.(map[string]any)
			if !ok {
				return nil
			}
			doc = m[step]
		case int:
			l, ok := doc.([]any)
			if !ok || step >= len(l) {
				return nil
			}
			doc = l[step]
		}
	}
	return doc
}
