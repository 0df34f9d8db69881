// Package release defines releases: immutable bundles of artifacts addressed
// by digest, with provenance and labels, and the rules that keep them immutable.
package release

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Artifact is one build output addressed by digest.
type Artifact struct {
	// Name identifies the artifact within its release ("api", "web").
	Name string `json:"name"`
	// URI locates the artifact without its digest ("registry.example.com/shop/api").
	URI string `json:"uri"`
	// Digest is "sha256:" followed by 64 lower-case hex digits.
	Digest string `json:"digest"`
}

// Release is an immutable bundle of artifacts plus provenance and labels.
type Release struct {
	ID        string     `json:"id"`
	Pipeline  string     `json:"pipeline"`
	Version   string     `json:"version"`
	Artifacts []Artifact `json:"artifacts"`
	Commit    string     `json:"commit,omitempty"`
	// CommitTime is when Commit was made, if CI said: lead time for changes
	// counts from it.
	CommitTime *time.Time        `json:"commitTime,omitempty"`
	Source     string            `json:"source,omitempty"`
	BuildURL   string            `json:"buildUrl,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
	CreatedBy  string            `json:"createdBy,omitempty"`
}

// MaxCommitTimeSkew is how far in the future of the server's clock a
// release's commit time may be: clocks of CI machines and servers drift a
// little, never by more.
const MaxCommitTimeSkew = 5 * time.Minute

var (
	digestRe  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// ErrInvalid marks a release or artifact that breaks the rules.
var ErrInvalid = errors.New("invalid release")

// ParseArtifact parses "NAME=URI@sha256:HEX".
func ParseArtifact(s string) (Artifact, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return Artifact{}, fmt.Errorf("%w: artifact %q: want NAME=URI@sha256:HEX", ErrInvalid, s)
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return Artifact{}, fmt.Errorf("%w: artifact %q has no digest: want NAME=URI@sha256:HEX", ErrInvalid, s)
	}
	a := Artifact{Name: name, URI: rest[:at], Digest: rest[at+1:]}
	return a, a.Validate()
}

// String formats a as "NAME=URI@DIGEST".
func (a Artifact) String() string { return a.Name + "=" + a.URI + "@" + a.Digest }

// Validate checks a's name, URI and digest.
func (a Artifact) Validate() error {
	if !nameRe.MatchString(a.Name) {
		return fmt.Errorf("%w: artifact name %q: use letters, digits, '.', '_' or '-' (at most 63)", ErrInvalid, a.Name)
	}
	if a.URI == "" || strings.ContainsAny(a.URI, " \t\n") {
		return fmt.Errorf("%w: artifact %q: URI %q is empty or contains spaces", ErrInvalid, a.Name, a.URI)
	}
	if !digestRe.MatchString(a.Digest) {
		return fmt.Errorf("%w: artifact %q: digest %q is not sha256: followed by 64 lower-case hex digits", ErrInvalid, a.Name, a.Digest)
	}
	return nil
}

// Validate checks r before it is stored. It sorts the artifacts by name.
func (r *Release) Validate() error {
	if r.Pipeline == "" {
		return fmt.Errorf("%w: pipeline is required", ErrInvalid)
	}
	if !versionRe.MatchString(r.Version) {
		return fmt.Errorf("%w: version %q: use letters, digits, '.', '_', '+' or '-' (at most 128)", ErrInvalid, r.Version)
	}
	if len(r.Artifacts) == 0 {
		return fmt.Errorf("%w: release %s has no artifacts: give at least one NAME=URI@sha256:HEX", ErrInvalid, r.Version)
	}
	seen := map[string]bool{}
	for _, a := range r.Artifacts {
		if err := a.Validate(); err != nil {
			return err
		}
		if seen[a.Name] {
			return fmt.Errorf("%w: artifact %q appears twice", ErrInvalid, a.Name)
		}
		seen[a.Name] = true
	}
	for k := range r.Labels {
		if k == "" || len(k) > 63 {
			return fmt.Errorf("%w: label key %q must be 1 to 63 characters", ErrInvalid, k)
		}
	}
	sort.Slice(r.Artifacts, func(i, j int) bool { return r.Artifacts[i].Name < r.Artifacts[j].Name })
	return nil
}

// CheckCommitTime refuses a commit time later than now plus
// MaxCommitTimeSkew, or before 1970: a commit cannot come from the future,
// and a zero or garbled time would make lead times meaningless.
func (r *Release) CheckCommitTime(now time.Time) error {
	if r.CommitTime == nil {
		return nil
	}
	ct := *r.CommitTime
	switch {
	case ct.Before(time.Unix(0, 0)):
		return fmt.Errorf("%w: commit time %s is before 1970", ErrInvalid, ct.UTC().Format(time.RFC3339Nano))
	case ct.After(now.Add(MaxCommitTimeSkew)):
		return fmt.Errorf("%w: commit time %s is in the future (server time %s, %s of clock skew allowed)",
			ErrInvalid, ct.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339), MaxCommitTimeSkew)
	}
	return nil
}

// commitTimeText is the commit time as the content digest and Difference
// see it: UTC with every digit, or "" when there is none.
func (r *Release) commitTimeText() string {
	if r.CommitTime == nil {
		return ""
	}
	return r.CommitTime.UTC().Format(time.RFC3339Nano)
}

// ContentDigest hashes what makes r's content: artifacts, provenance and labels.
// Two releases with the same version must have the same content digest.
func (r *Release) ContentDigest() string {
	arts := append([]Artifact(nil), r.Artifacts...)
	sort.Slice(arts, func(i, j int) bool { return arts[i].Name < arts[j].Name })
	b, _ := json.Marshal(struct {
		Artifacts []Artifact        `json:"a"`
		Commit    string            `json:"c"`
		Source    string            `json:"s"`
		BuildURL  string            `json:"b"`
		Labels    map[string]string `json:"l"`
		// CommitTime is left out when absent, so that releases made before
		// it existed keep their digest.
		CommitTime string `json:"ct,omitempty"`
	}{arts, r.Commit, r.Source, r.BuildURL, r.Labels, r.commitTimeText()})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Difference names the first way in which b's content differs from a's, or
// returns "" when they are the same.
func Difference(a, b *Release) string {
	am := map[string]Artifact{}
	for _, x := range a.Artifacts {
		am[x.Name] = x
	}
	bm := map[string]Artifact{}
	for _, x := range b.Artifacts {
		bm[x.Name] = x
	}
	names := make([]string, 0, len(am)+len(bm))
	for n := range am {
		names = append(names, n)
	}
	for n := range bm {
		if _, ok := am[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		x, inA := am[n]
		y, inB := bm[n]
		switch {
		case !inA:
			return fmt.Sprintf("artifact %q is not in the existing release", n)
		case !inB:
			return fmt.Sprintf("artifact %q of the existing release is missing", n)
		case x.Digest != y.Digest:
			return fmt.Sprintf("artifact %q has digest %s, the existing release has %s", n, y.Digest, x.Digest)
		case x.URI != y.URI:
			return fmt.Sprintf("artifact %q has URI %s, the existing release has %s", n, y.URI, x.URI)
		}
	}
	switch {
	case a.Commit != b.Commit:
		return fmt.Sprintf("commit %q differs from the existing release's %q", b.Commit, a.Commit)
	case a.commitTimeText() != b.commitTimeText():
		return fmt.Sprintf("commit time %q differs from the existing release's %q", b.commitTimeText(), a.commitTimeText())
	case a.Source != b.Source:
		return fmt.Sprintf("source %q differs from the existing release's %q", b.Source, a.Source)
	case a.BuildURL != b.BuildURL:
		return fmt.Sprintf("build URL %q differs from the existing release's %q", b.BuildURL, a.BuildURL)
	}
	if a.ContentDigest() != b.ContentDigest() {
		return "labels differ from the existing release's"
	}
	return ""
}
