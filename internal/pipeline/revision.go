package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Digest returns "sha256:" followed by the hex sha256 of the canonical JSON
// of s. Specifications that differ only in how their YAML was written (key
// order, flow or block style, comments, quoting) have the same digest.
func (s *Spec) Digest() string {
	sum := sha256.Sum256(canonicalJSON(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NewRevision returns the revision of s applied from source, with its
// Pipeline, Digest, Spec and Source set; the store sets Number and
// CreatedAt. The revision holds its own copy of s, so later changes to s do
// not alter it.
func NewRevision(s *Spec, source []byte) *Revision {
	canonical := canonicalJSON(s)
	sum := sha256.Sum256(canonical)
	r := &Revision{
		Pipeline: s.Name,
		Digest:   "sha256:" + hex.EncodeToString(sum[:]),
		Source:   string(source),
	}
	if err := json.Unmarshal(canonical, &r.Spec); err != nil {
		panic("pipeline: copy spec: " + err.Error())
	}
	return r
}

// canonicalJSON encodes s as JSON, which is canonical enough for a digest:
// struct fields keep their declared order and map keys are sorted.
func canonicalJSON(s *Spec) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		// Every type in Spec marshals; failing here is a programming error.
		panic("pipeline: marshal spec: " + err.Error())
	}
	return b
}
