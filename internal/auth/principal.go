package auth

// Principal is who a request acts as: a user and the grants of the token
// they presented.
type Principal struct {
	// User names the person or system.
	User string `json:"user"`
	// Grants are the roles and scopes the principal holds.
	Grants []Grant `json:"grants"`
	// TokenID identifies the token the principal authenticated with, for
	// audit; empty if none.
	TokenID string `json:"tokenId,omitempty"`
}

// Can decides whether p may do action on the resource at pipeline and env,
// as Authorize does.
func (p Principal) Can(action Action, pipeline, env string) Decision {
	return Authorize(p.Grants, action, pipeline, env)
}
