// Package auth is the pure core of Ferry's identity and access control:
// roles, scopes, grants, the actions they allow, API tokens and the
// principal a request acts as. It does no I/O: the store persists tokens
// and the API turns a Decision into a 403 that says what was missing.
package auth

import (
	"fmt"
	"strings"
)

// Role is a named set of permissions. Roles are persisted as their string
// values.
type Role string

// The roles, from least to most powerful. Releaser, promoter and approver
// each include viewer; admin includes every role. Promoter and approver are
// deliberately disjoint, so that the person who moves a release is not, by
// role alone, the person who approves it.
const (
	// RoleViewer reads pipelines, releases, promotions and their history.
	RoleViewer Role = "viewer"
	// RoleReleaser creates releases, typically held by CI.
	RoleReleaser Role = "releaser"
	// RolePromoter starts, aborts and rolls back promotions.
	RolePromoter Role = "promoter"
	// RoleApprover approves and rejects promotions awaiting approval.
	RoleApprover Role = "approver"
	// RoleAdmin does everything, including managing tokens, applying
	// pipelines and breaking glass.
	RoleAdmin Role = "admin"
)

// Roles returns every role, from least to most powerful.
func Roles() []Role {
	return []Role{RoleViewer, RoleReleaser, RolePromoter, RoleApprover, RoleAdmin}
}

// ParseRole returns the role named s. Names are exact: "Admin" is not a role.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("unknown role %q: want one of %s", s, roleNames())
	}
	return r, nil
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	switch r {
	case RoleViewer, RoleReleaser, RolePromoter, RoleApprover, RoleAdmin:
		return true
	}
	return false
}

// Includes reports whether holding r grants everything other grants. Every
// valid role includes itself; an unknown role includes nothing.
func (r Role) Includes(other Role) bool {
	if !r.Valid() || !other.Valid() {
		return false
	}
	switch r {
	case RoleAdmin:
		return true
	case RoleReleaser, RolePromoter, RoleApprover:
		return other == r || other == RoleViewer
	default:
		return other == r
	}
}

func roleNames() string {
	names := make([]string, 0, len(Roles()))
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}
