package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-dev/ferry/internal/release"
)

func newReleaseCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Create or show a release",
	}
	cmd.AddCommand(newReleaseCreateCommand(g), newReleaseShowCommand(g))
	return cmd
}

// releaseOptions are the flags of `ferry release create`.
type releaseOptions struct {
	pipeline   string
	version    string
	artifacts  []string
	commit     string
	commitTime string
	source     string
	buildURL   string
	labels     []string
}

// release builds the release the flags describe, checking it locally so that
// a malformed artifact or label is reported before anything is sent.
func (o *releaseOptions) release() (release.Release, error) {
	r := release.Release{
		Pipeline: o.pipeline, Version: o.version,
		Commit: o.commit, Source: o.source, BuildURL: o.buildURL,
	}
	if o.commitTime != "" {
		t, err := time.Parse(time.RFC3339Nano, o.commitTime)
		if err != nil {
			return r, usageErrorf("--commit-time %q: want an RFC 3339 time such as 2025-01-31T09:00:00Z", o.commitTime)
		}
		r.CommitTime = &t
	}
	for _, s := range o.artifacts {
		a, err := release.ParseArtifact(s)
		if err != nil {
			return r, usageErrorf("--artifact: %w", err)
		}
		r.Artifacts = append(r.Artifacts, a)
	}
	for _, s := range o.labels {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return r, usageErrorf("--label %q: want KEY=VALUE", s)
		}
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		r.Labels[k] = v
	}
	if err := r.Validate(); err != nil {
		return r, asUsage(err)
	}
	return r, nil
}

func newReleaseCreateCommand(g *globals) *cobra.Command {
	var o releaseOptions
	cmd := &cobra.Command{
		Use:   "create --pipeline P --version V --artifact NAME=URI@sha256:HEX...",
		Short: "Create an immutable release of a pipeline",
		Long: `Create an immutable release: a version, one or more artifacts addressed by
digest, provenance and labels. Creating the same release again is harmless;
the same version with other content is refused, naming the difference
(exit code 1).`,
		Example: `  ferry release create --pipeline shop --version 1.4.0 \
    --artifact api=registry.example.com/shop/api@sha256:4f6c…  \
    --artifact web=registry.example.com/shop/web@sha256:9b1e… \
    --commit 3f2a9c1 --commit-time 2025-01-31T08:12:44Z --build-url https://ci.example.com/runs/812 --label team=payments`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := o.release()
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rel, created, err := c.CreateRelease(cmd.Context(), r)
			if err != nil {
				return err
			}
			return g.print(rel, func(w io.Writer) error {
				if created {
					_, err := fmt.Fprintf(w, "release %s of %s created (%s)\n", rel.Version, rel.Pipeline, plural(len(rel.Artifacts), "artifact"))
					return err
				}
				_, err := fmt.Fprintf(w, "release %s of %s exists with the same content\n", rel.Version, rel.Pipeline)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.pipeline, "pipeline", "", "pipeline the release belongs to (required)")
	f.StringVar(&o.version, "version", "", "release version, unique in the pipeline (required)")
	f.StringArrayVar(&o.artifacts, "artifact", nil, "artifact as NAME=URI@sha256:HEX; repeat for several (required)")
	f.StringVar(&o.commit, "commit", "", "source commit the release was built from")
	f.StringVar(&o.commitTime, "commit-time", "", "when that commit was made, RFC 3339 (git show -s --format=%cI); lead time for changes counts from it")
	f.StringVar(&o.source, "source", "", "source repository URL")
	f.StringVar(&o.buildURL, "build-url", "", "URL of the CI build that made the release")
	f.StringArrayVar(&o.labels, "label", nil, "label as KEY=VALUE; repeat for several")
	for _, name := range []string{"pipeline", "version", "artifact"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newReleaseShowCommand(g *globals) *cobra.Command {
	var pipelineName string
	cmd := &cobra.Command{
		Use:     "show VERSION --pipeline P",
		Short:   "Show a release: its artifacts, provenance and labels",
		Example: `  ferry release show 1.4.0 --pipeline shop`,
		Args:    exactArgs("VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rel, err := c.Release(cmd.Context(), pipelineName, args[0])
			if err != nil {
				return err
			}
			return g.print(rel, func(w io.Writer) error { return printRelease(w, rel) })
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline (required)")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}

func printRelease(w io.Writer, rel *release.Release) error {
	tw := newTable(w)
	row(tw, "Pipeline:", rel.Pipeline)
	row(tw, "Version:", rel.Version)
	row(tw, "ID:", rel.ID)
	row(tw, "Commit:", orDash(rel.Commit))
	if rel.CommitTime != nil {
		row(tw, "Committed:", formatTime(*rel.CommitTime))
	}
	row(tw, "Source:", orDash(rel.Source))
	row(tw, "Build:", orDash(rel.BuildURL))
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(rel.Labels)) {
		labels = append(labels, k+"="+rel.Labels[k])
	}
	row(tw, "Labels:", orDash(strings.Join(labels, " ")))
	row(tw, "Created:", formatTime(rel.CreatedAt)+" by "+orDash(rel.CreatedBy))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "ARTIFACT", "URI", "DIGEST")
	for _, a := range rel.Artifacts {
		row(tw, a.Name, a.URI, a.Digest)
	}
	return tw.Flush()
}

func newReleasesCommand(g *globals) *cobra.Command {
	var pipelineName string
	var limit int
	cmd := &cobra.Command{
		Use:     "releases --pipeline P",
		Short:   "List a pipeline's releases, newest first",
		Example: `  ferry releases --pipeline shop --limit 10`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimit(limit); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			rs, err := c.Releases(cmd.Context(), pipelineName, limit)
			if err != nil {
				return err
			}
			return g.print(rs, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "VERSION", "ARTIFACTS", "COMMIT", "CREATED", "BY")
				for _, r := range rs {
					names := make([]string, len(r.Artifacts))
					for i, a := range r.Artifacts {
						names[i] = a.Name
					}
					row(tw, r.Version, strings.Join(names, ","), orDash(r.Commit), formatTime(r.CreatedAt), orDash(r.CreatedBy))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&pipelineName, "pipeline", "", "pipeline (required)")
	cmd.Flags().IntVar(&limit, "limit", 0, "largest number of releases to list (default: the server's, 100)")
	_ = cmd.MarkFlagRequired("pipeline")
	return cmd
}

// checkLimit refuses a negative --limit.
func checkLimit(limit int) error {
	if limit < 0 {
		return usageErrorf("--limit %d: want a positive number", limit)
	}
	return nil
}
