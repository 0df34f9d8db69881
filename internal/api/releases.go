package api

import (
	"net/http"
	"time"

	"github.com/ferry-dev/ferry/internal/release"
)

// createReleaseRequest is the body of POST /api/v1/pipelines/{name}/releases.
// The pipeline comes from the path; the server assigns ID and creation time.
type createReleaseRequest struct {
	Version   string             `json:"version"`
	Artifacts []release.Artifact `json:"artifacts"`
	Commit    string             `json:"commit,omitempty"`
	// CommitTime is when Commit was made; lead time for changes counts from it.
	CommitTime *time.Time        `json:"commitTime,omitempty"`
	Source     string            `json:"source,omitempty"`
	BuildURL   string            `json:"buildUrl,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// createRelease stores a release: 201 when created, 200 when an identical
// release with that version exists; the engine refuses (409) the same version
// with other content.
func (s *server) createRelease(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req createReleaseRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rel, created, err := s.svc.CreateRelease(r.Context(), act, release.Release{
		Pipeline:   r.PathValue("name"),
		Version:    req.Version,
		Artifacts:  req.Artifacts,
		Commit:     req.Commit,
		CommitTime: req.CommitTime,
		Source:     req.Source,
		BuildURL:   req.BuildURL,
		Labels:     req.Labels,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, rel)
}

// listReleases lists a pipeline's releases, newest first.
func (s *server) listReleases(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryLimit(r.URL.Query())
	if err != nil {
		return err
	}
	rs, err := s.svc.Releases(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(rs))
}

func (s *server) getRelease(w http.ResponseWriter, r *http.Request) error {
	rel, err := s.svc.Release(r.Context(), r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rel)
}
