package release

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestParseArtifact(t *testing.T) {
	a, err := ParseArtifact("api=registry.example:5000/shop/api@" + d1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "api" || a.URI != "registry.example:5000/shop/api" || a.Digest != d1 {
		t.Fatalf("parsed %+v", a)
	}
	if a.String() != "api=registry.example:5000/shop/api@"+d1 {
		t.Fatalf("String() = %s", a.String())
	}
	for in, want := range map[string]string{
		"api":                                     "want NAME=URI@sha256:HEX",
		"api=registry.example/api":                "has no digest",
		"api=registry.example/api@sha256:":        "is not sha256:",
		"api=x@sha256:" + strings.Repeat("A", 64): "lower-case",
		"api=x@sha512:" + strings.Repeat("a", 64): "is not sha256:",
		"api=x@" + d1[:70]:                        "is not sha256:",
		"=x@" + d1:                                "artifact name",
		"a b=x@" + d1:                             "artifact name",
		"api=@" + d1:                              "URI",
	} {
		_, err := ParseArtifact(in)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseArtifact(%q) = %v, want ErrInvalid mentioning %q", in, err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	r := Release{Pipeline: "shop", Version: "1.2.3+build.7", Artifacts: []Artifact{
		{Name: "web", URI: "x/web", Digest: d2}, {Name: "api", URI: "x/api", Digest: d1}}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Artifacts[0].Name != "api" {
		t.Fatalf("Validate did not sort artifacts by name: %+v", r.Artifacts)
	}
	bad := []struct {
		r    Release
		want string
	}{
		{Release{Version: "1", Artifacts: r.Artifacts}, "pipeline is required"},
		{Release{Pipeline: "shop", Version: "1 0", Artifacts: r.Artifacts}, "version"},
		{Release{Pipeline: "shop", Version: "1"}, "no artifacts"},
		{Release{Pipeline: "shop", Version: "1", Artifacts: []Artifact{{Name: "a", URI: "x", Digest: d1}, {Name: "a", URI: "y", Digest: d2}}}, "appears twice"},
		{Release{Pipeline: "shop", Version: "1", Artifacts: r.Artifacts, Labels: map[string]string{"": "x"}}, "label key"},
	}
	for _, b := range bad {
		if err := b.r.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid mentioning %q", b.r, err, b.want)
		}
	}
}

func TestDifferenceAndContentDigest(t *testing.T) {
	commitTime := time.Date(2025, 3, 14, 16, 9, 26, 500000000, time.FixedZone("UTC+1", 3600))
	base := Release{Pipeline: "shop", Version: "1", Commit: "abc", Labels: map[string]string{"team": "a"},
		Artifacts: []Artifact{{Name: "api", URI: "x/api", Digest: d1}, {Name: "web", URI: "x/web", Digest: d2}}}
	same := base
	same.Artifacts = []Artifact{base.Artifacts[1], base.Artifacts[0]} // order does not matter
	if d := Difference(&base, &same); d != "" || base.ContentDigest() != same.ContentDigest() {
		t.Fatalf("equal content: difference %q, digests %s / %s", d, base.ContentDigest(), same.ContentDigest())
	}
	change := func(f func(r *Release)) *Release {
		r := base
		r.Artifacts = append([]Artifact(nil), base.Artifacts...)
		r.Labels = map[string]string{"team": "a"}
		f(&r)
		return &r
	}
	cases := []struct {
		r    *Release
		want string
	}{
		{change(func(r *Release) { r.Artifacts[0].Digest = d2 }), `artifact "api" has digest ` + d2},
		{change(func(r *Release) { r.Artifacts[1].URI = "y/web" }), `artifact "web" has URI y/web`},
		{change(func(r *Release) { r.Artifacts = r.Artifacts[:1] }), `artifact "web" of the existing release is missing`},
		{change(func(r *Release) { r.Artifacts = append(r.Artifacts, Artifact{Name: "cli", URI: "x/cli", Digest: d1}) }), `artifact "cli" is not in the existing release`},
		{change(func(r *Release) { r.Commit = "def" }), "commit"},
		{change(func(r *Release) { r.CommitTime = &commitTime }), `commit time "2025-03-14T15:09:26.5Z" differs from the existing release's ""`},
		{change(func(r *Release) { r.Labels["team"] = "b" }), "labels differ"},
	}
	for _, c := range cases {
		if d := Difference(&base, c.r); !strings.Contains(d, c.want) {
			t.Errorf("Difference = %q, want it to contain %q", d, c.want)
		}
		if c.r.ContentDigest() == base.ContentDigest() {
			t.Errorf("content digest unchanged for a release that differs by %q", c.want)
		}
	}
}

// TestContentDigestWithoutCommitTimeIsStable checks that a release without a
// commit time keeps the digest it had before commit times existed:
// approvals are bound to it.
func TestContentDigestWithoutCommitTimeIsStable(t *testing.T) {
	r := Release{Pipeline: "shop", Version: "1", Commit: "abc", Labels: map[string]string{"team": "a"},
		Artifacts: []Artifact{{Name: "api", URI: "x/api", Digest: d1}}}
	const want = "sha256:60432120aa7d06b396881d9f2dbbc614c18712d86999508e760c8951846e1768"
	if got := r.ContentDigest(); got != want {
		t.Errorf("ContentDigest = %s, want %s", got, want)
	}
	// The same instant in another zone is the same content.
	utc := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	local := utc.In(time.FixedZone("UTC-5", -5*3600))
	a, b := r, r
	a.CommitTime, b.CommitTime = &utc, &local
	if a.ContentDigest() != b.ContentDigest() || Difference(&a, &b) != "" {
		t.Errorf("one commit time in two zones: digests %s / %s, difference %q", a.ContentDigest(), b.ContentDigest(), Difference(&a, &b))
	}
	if a.ContentDigest() == want {
		t.Errorf("a commit time does not change the content digest")
	}
}

func TestCheckCommitTime(t *testing.T) {
	now := time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	epoch := time.Unix(0, 0)
	tests := []struct {
		name string
		ct   *time.Time
		want string // "" for accepted
	}{
		{"absent", nil, ""},
		{"an hour ago", at(-time.Hour), ""},
		{"within the allowed skew", at(MaxCommitTimeSkew), ""},
		{"1970", &epoch, ""},
		{"beyond the skew", at(MaxCommitTimeSkew + time.Second), "commit time 2025-03-14T12:05:01Z is in the future (server time 2025-03-14T12:00:00Z"},
		{"zero", &time.Time{}, "commit time 0001-01-01T00:00:00Z is before 1970"},
	}
	for _, tt := range tests {
		r := Release{CommitTime: tt.ct}
		err := r.CheckCommitTime(now)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", tt.name, err)
		case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want ErrInvalid containing %q", tt.name, err, tt.want)
		}
	}
}
