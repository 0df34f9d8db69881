// Package traceid derives the trace ID of a promotion from its ID, so that
// every log line, span and step of one promotion names the same trace
// without storing it: anyone holding a promotion ID can compute its trace ID.
//
// The trace ID is the first 16 bytes of SHA-256("ferry/promotion/" + id),
// the 128-bit form W3C Trace Context and OpenTelemetry use. The prefix keeps
// promotion trace IDs apart from any other ID Ferry might hash one day.
package traceid

import (
	"crypto/sha256"
	"encoding/hex"
)

// prefix is hashed before the promotion ID.
const prefix = "ferry/promotion/"

// FromPromotion returns the trace ID of the promotion with the given ID: the
// first 16 bytes of SHA-256("ferry/promotion/" + id). The same ID always
// gives the same trace ID. (An all-zero trace ID, invalid in W3C Trace
// Context, would need a SHA-256 prefix of 128 zero bits.)
func FromPromotion(id string) [16]byte {
	sum := sha256.Sum256([]byte(prefix + id))
	var t [16]byte
	copy(t[:], sum[:16])
	return t
}

// Hex returns the trace ID of the promotion with the given ID as 32 lowercase
// hexadecimal digits, the form of the trace_id log attribute and of the
// trace-id field of a W3C traceparent header.
func Hex(id string) string {
	t := FromPromotion(id)
	return hex.EncodeToString(t[:])
}
