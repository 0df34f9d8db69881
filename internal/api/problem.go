package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/ferry-dev/ferry/internal/engine"
)

// Problem codes. A problem's code member says what went wrong, so that
// clients can branch on it; docs/api.md describes each one, and a problem's
// type is the address of that description.
const (
	codeInvalid             = string(engine.CodeInvalid)
	codeNotFound            = string(engine.CodeNotFound)
	codeConflict            = string(engine.CodeConflict)
	codePrecondition        = string(engine.CodePrecondition)
	codeUnavailable         = string(engine.CodeUnavailable)
	codeUnauthenticated     = "unauthenticated"
	codeForbidden           = "forbidden"
	codeNoRoute             = "route_not_found"
	codeMethodNotAllowed    = "method_not_allowed"
	codeTooLarge            = "too_large"
	codeIdempotencyMismatch = "idempotency_mismatch"
	codeInternal            = "internal"
)

// problemTypeBase prefixed to a code is the problem's type URI.
const problemTypeBase = "https://github.com/ferry-dev/ferry/blob/main/docs/api.md#"

// problemContentType is the media type of problem responses (RFC 9457).
const problemContentType = "application/problem+json"

var problemTitles = map[string]string{
	codeInvalid:             "Invalid request",
	codeNotFound:            "Not found",
	codeConflict:            "Conflict with stored state",
	codePrecondition:        "Precondition not met",
	codeUnavailable:         "Service unavailable",
	codeUnauthenticated:     "Missing or invalid API token",
	codeForbidden:           "Not allowed",
	codeNoRoute:             "No such route",
	codeMethodNotAllowed:    "Method not allowed",
	codeTooLarge:            "Request body too large",
	codeIdempotencyMismatch: "Idempotency key reused for another request",
	codeInternal:            "Internal server error",
}

var engineStatus = map[engine.Code]int{
	engine.CodeInvalid:      http.StatusBadRequest,
	engine.CodeNotFound:     http.StatusNotFound,
	engine.CodeConflict:     http.StatusConflict,
	engine.CodePrecondition: http.StatusUnprocessableEntity,
	engine.CodeUnavailable:  http.StatusServiceUnavailable,
	engine.CodeForbidden:    http.StatusForbidden,
}

// problem is an RFC 9457 problem detail. It is also the error handlers return
// for failures the API layer itself detects.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Code     string `json:"code"`
	// Errors lists the individual problems, such as pipeline validation errors.
	Errors any `json:"errors,omitempty"`
	// Details holds other facts about the problem for machines, as an object.
	Details any `json:"details,omitempty"`
}

func (p *problem) Error() string { return p.Detail }

// problemf returns a problem with a formatted detail.
func problemf(status int, code, format string, args ...any) *problem {
	return &problem{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// invalidf returns a 400 problem with code invalid.
func invalidf(format string, args ...any) *problem {
	return problemf(http.StatusBadRequest, codeInvalid, format, args...)
}

// tooLarge returns the 413 problem for a body over the limit.
func tooLarge(limit int64) *problem {
	return problemf(http.StatusRequestEntityTooLarge, codeTooLarge,
		"request body is larger than %d bytes", limit)
}

// problemFor turns any error a handler returned into a problem. The second
// result is false for an unexpected error, whose cause the client must not see.
func (s *server) problemFor(err error) (*problem, bool) {
	var p *problem
	if errors.As(err, &p) {
		return p, true
	}
	var ee *engine.Error
	if errors.As(err, &ee) {
		if status, ok := engineStatus[ee.Code]; ok {
			p := &problem{Status: status, Code: string(ee.Code), Detail: ee.Message}
			if isList(ee.Details) {
				p.Errors = ee.Details
			} else {
				p.Details = ee.Details
			}
			return p, true
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit), true
	}
	return &problem{Status: http.StatusInternalServerError, Code: codeInternal,
		Detail: "the server could not complete the request; its log has the cause"}, false
}

// isList reports whether v encodes as a JSON array.
func isList(v any) bool {
	if v == nil {
		return false
	}
	k := reflect.ValueOf(v).Kind()
	return k == reflect.Slice || k == reflect.Array
}

// writeError writes err as a problem response, logging unexpected errors.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p, known := s.problemFor(err)
	if !known {
		if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
			// The client went away; nobody reads this response.
			s.log.Debug("request canceled", "method", r.Method, "path", r.URL.Path)
		} else {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	}
	s.writeProblem(w, r, p)
}

// writeProblem completes p and writes it.
func (s *server) writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	out := *p
	if out.Code == "" {
		out.Code = codeInternal
	}
	out.Type = problemTypeBase + out.Code
	if out.Title == "" {
		out.Title = problemTitles[out.Code]
	}
	if out.Instance == "" {
		out.Instance = r.URL.Path
	}
	writeBody(w, out.Status, problemContentType, out)
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	writeBody(w, status, "application/json", v)
	return nil
}

func writeBody(w http.ResponseWriter, status int, contentType string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a programming error makes a response value unmarshalable.
		status, contentType = http.StatusInternalServerError, problemContentType
		buf.Reset()
		fmt.Fprintf(&buf, `{"type":%q,"title":%q,"status":500,"code":%q,"detail":"encode response"}`+"\n",
			problemTypeBase+codeInternal, problemTitles[codeInternal], codeInternal)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
