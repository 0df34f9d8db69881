package api

import (
	"net/http"
)

// applyRequest is the body of POST /api/v1/pipelines.
type applyRequest struct {
	// Filename names the file the source came from; errors cite it.
	Filename string `json:"filename"`
	// Source is the pipeline's YAML text.
	Source string `json:"source"`
}

// applyPipeline stores a pipeline's YAML as its next revision: 201 when a
// revision was created, 200 when the source equals the latest revision.
func (s *server) applyPipeline(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	var req applyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Source == "" {
		return invalidf("source is required: send the pipeline's YAML text")
	}
	res, err := s.svc.Apply(r.Context(), act, req.Filename, []byte(req.Source))
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, res)
}

func (s *server) listPipelines(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.svc.Pipelines(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ps))
}

// getPipeline returns a revision of a pipeline: ?revision=N, or the latest.
func (s *server) getPipeline(w http.ResponseWriter, r *http.Request) error {
	rev, err := queryInt(r.URL.Query(), "revision", 0, 1, maxInt)
	if err != nil {
		return err
	}
	p, err := s.svc.Pipeline(r.Context(), r.PathValue("name"), rev)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *server) getStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.svc.Status(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// getHistory lists a pipeline's finished and running promotions, newest first,
// optionally of one environment.
func (s *server) getHistory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	ps, err := s.svc.History(r.Context(), r.PathValue("name"), q.Get("environment"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ps))
}

// maxInt bounds integer query parameters that have no smaller natural bound.
const maxInt = 1<<31 - 1

// nonNil returns s, or an empty slice when s is nil, so that lists encode as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
