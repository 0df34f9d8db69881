package engine

import (
	"errors"
	"fmt"
)

// Code classifies an engine error for callers such as the HTTP API.
type Code string

// The error codes.
const (
	// CodeInvalid: the request is malformed or breaks a rule (HTTP 400).
	CodeInvalid Code = "invalid"
	// CodeNotFound: a named pipeline, environment, release or promotion does not exist (HTTP 404).
	CodeNotFound Code = "not_found"
	// CodeConflict: the request contradicts stored state, such as a release version reused with other content (HTTP 409).
	CodeConflict Code = "conflict"
	// CodePrecondition: the request is well-formed but a requirement is not met, such as an upstream environment (HTTP 422).
	CodePrecondition Code = "precondition"
	// CodeForbidden: the caller may not do this, whatever their token allows,
	// such as approving their own promotion (HTTP 403).
	CodeForbidden Code = "forbidden"
	// CodeUnavailable: the engine is shutting down or its store is unreachable (HTTP 503).
	CodeUnavailable Code = "unavailable"
)

// Error is an error a caller can act on: it has a code and a message that
// names what was wrong.
type Error struct {
	Code    Code
	Message string
	// Details are facts for machines, such as the list of validation errors.
	Details any
}

func (e *Error) Error() string { return e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, or "" when err is not an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
