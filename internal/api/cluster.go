package api

import "net/http"

// getCluster lists the live replicas sharing the store, by ID, each with the
// promotions it drives.
func (s *server) getCluster(w http.ResponseWriter, r *http.Request) error {
	reps, err := s.svc.Cluster(r.Context())
	if err != nil {
		return err
	}
	reps = nonNil(reps)
	for i := range reps {
		reps[i].Driving = nonNil(reps[i].Driving)
	}
	return writeJSON(w, http.StatusOK, reps)
}
