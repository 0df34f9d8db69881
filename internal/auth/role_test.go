package auth

import (
	"strings"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, s := range []string{"viewer", "releaser", "promoter", "approver", "admin"} {
		r, err := ParseRole(s)
		if err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "root", "viewer ", "owner"} {
		_, err := ParseRole(s)
		if err == nil {
			t.Errorf("ParseRole(%q) succeeded", s)
			continue
		}
		if want := `"` + s + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRole(%q) error %q does not name the value", s, err)
		}
		if !strings.Contains(err.Error(), "viewer, releaser, promoter, approver, admin") {
			t.Errorf("ParseRole(%q) error %q does not list the roles", s, err)
		}
	}
}

func TestRoleIncludes(t *testing.T) {
	// includes[r] lists every role r includes, from the specification.
	includes := map[Role][]Role{
		RoleViewer:   {RoleViewer},
		RoleReleaser: {RoleReleaser, RoleViewer},
		RolePromoter: {RolePromoter, RoleViewer},
		RoleApprover: {RoleApprover, RoleViewer},
		RoleAdmin:    {RoleViewer, RoleReleaser, RolePromoter, RoleApprover, RoleAdmin},
	}
	for _, r := range Roles() {
		for _, other := range Roles() {
			want := false
			for _, o := range includes[r] {
				want = want || o == other
			}
			if got := r.Includes(other); got != want {
				t.Errorf("%s.Includes(%s) = %v, want %v", r, other, got, want)
			}
		}
		if r.Includes("root") || Role("root").Includes(r) {
			t.Errorf("unknown role included with %s", r)
		}
	}
}
