package api

import (
	"errors"
	"net/http"

	"github.com/ferry-dev/ferry/internal/alert"
)

// receiveAlertmanager takes an Alertmanager webhook notification. A
// malformed payload is refused with 400 naming where it broke, and changes
// nothing; a payload that concerns no environment is answered with no targets.
func (s *server) receiveAlertmanager(w http.ResponseWriter, r *http.Request) error {
	act, err := actor(r)
	if err != nil {
		return err
	}
	m, err := alert.Decode(r.Body, s.maxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit)
		}
		return invalidf("alertmanager payload: %v", err)
	}
	rep, err := s.svc.ReceiveAlerts(r.Context(), act, m)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
