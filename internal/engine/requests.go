package engine

import (
	"github.com/ferry-dev/ferry/internal/auth"
)

// PromoteRequest asks for a release to be promoted into an environment.
type PromoteRequest struct {
	Pipeline    string `json:"pipeline"`
	Release     string `json:"release"`
	Environment string `json:"environment"`
	Reason      string `json:"reason,omitempty"`
	// Force overrides the upstream requirement; it needs a Reason and is recorded.
	Force bool `json:"force,omitempty"`
	// Expedite skips soak (a hotfix); it needs a Reason and a role the
	// environment allows for it, and the promotion awaits review.
	Expedite bool `json:"expedite,omitempty"`
	// OverrideWindow ignores deployment windows and freezes (break-glass); it
	// needs a Reason and admin or the environment's override role, and the
	// promotion awaits review.
	OverrideWindow bool `json:"overrideWindow,omitempty"`
	// Principal is who asks, with their grants; nil for the server itself.
	Principal *auth.Principal `json:"-"`
}

// RollbackRequest asks for an environment to be rolled back.
type RollbackRequest struct {
	Pipeline    string `json:"pipeline"`
	Environment string `json:"environment"`
	// To is the version to restore; empty means the release deployed before the current one.
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}
