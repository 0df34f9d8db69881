package auth

import (
	"errors"
	"strings"
	"testing"
)

// matrixScopes are the grant scopes of the matrix, in column order: global,
// the matching pipeline, another pipeline, the matching environment,
// another environment of the same pipeline, and an environment of the same
// name in another pipeline.
var matrixScopes = []string{"*", "shop", "other", "shop/prod", "shop/staging", "other/prod"}

// matrix is the expected outcome of every action, for every role, granted on
// each of matrixScopes. It is written out by hand from the specification of
// the roles and actions, not derived from the implementation: "Y" allows,
// "-" denies. The request column names the resource checked: environment
// actions are checked on shop/prod, pipeline actions on shop, global actions
// on *, and actions of any level on each of the three.
const matrix = `
action           request    role       *  shop  other  shop/prod  shop/staging  other/prod
view             *          viewer     Y  -     -      -          -             -
view             *          releaser   Y  -     -      -          -             -
view             *          promoter   Y  -     -      -          -             -
view             *          approver   Y  -     -      -          -             -
view             *          admin      Y  -     -      -          -             -
view             shop       viewer     Y  Y     -      -          -             -
view             shop       releaser   Y  Y     -      -          -             -
view             shop       promoter   Y  Y     -      -          -             -
view             shop       approver   Y  Y     -      -          -             -
view             shop       admin      Y  Y     -      -          -             -
view             shop/prod  viewer     Y  Y     -      Y          -             -
view             shop/prod  releaser   Y  Y     -      Y          -             -
view             shop/prod  promoter   Y  Y     -      Y          -             -
view             shop/prod  approver   Y  Y     -      Y          -             -
view             shop/prod  admin      Y  Y     -      Y          -             -
apply-pipeline   shop       viewer     -  -     -      -          -             -
apply-pipeline   shop       releaser   -  -     -      -          -             -
apply-pipeline   shop       promoter   -  -     -      -          -             -
apply-pipeline   shop       approver   -  -     -      -          -             -
apply-pipeline   shop       admin      Y  Y     -      -          -             -
create-release   shop       viewer     -  -     -      -          -             -
create-release   shop       releaser   Y  Y     -      -          -             -
create-release   shop       promoter   -  -     -      -          -             -
create-release   shop       approver   -  -     -      -          -             -
create-release   shop       admin      Y  Y     -      -          -             -
promote          shop/prod  viewer     -  -     -      -          -             -
promote          shop/prod  releaser   -  -     -      -          -             -
promote          shop/prod  promoter   Y  Y     -      Y          -             -
promote          shop/prod  approver   -  -     -      -          -             -
promote          shop/prod  admin      Y  Y     -      Y          -             -
abort            shop/prod  viewer     -  -     -      -          -             -
abort            shop/prod  releaser   -  -     -      -          -             -
abort            shop/prod  promoter   Y  Y     -      Y          -             -
abort            shop/prod  approver   -  -     -      -          -             -
abort            shop/prod  admin      Y  Y     -      Y          -             -
rollback         shop/prod  viewer     -  -     -      -          -             -
rollback         shop/prod  releaser   -  -     -      -          -             -
rollback         shop/prod  promoter   Y  Y     -      Y          -             -
rollback         shop/prod  approver   -  -     -      -          -             -
rollback         shop/prod  admin      Y  Y     -      Y          -             -
approve          shop/prod  viewer     -  -     -      -          -             -
approve          shop/prod  releaser   -  -     -      -          -             -
approve          shop/prod  promoter   -  -     -      -          -             -
approve          shop/prod  approver   Y  Y     -      Y          -             -
approve          shop/prod  admin      Y  Y     -      Y          -             -
override-window  shop/prod  viewer     -  -     -      -          -             -
override-window  shop/prod  releaser   -  -     -      -          -             -
override-window  shop/prod  promoter   -  -     -      -          -             -
override-window  shop/prod  approver   -  -     -      -          -             -
override-window  shop/prod  admin      Y  Y     -      Y          -             -
manage-tokens    *          viewer     -  -     -      -          -             -
manage-tokens    *          releaser   -  -     -      -          -             -
manage-tokens    *          promoter   -  -     -      -          -             -
manage-tokens    *          approver   -  -     -      -          -             -
manage-tokens    *          admin      Y  -     -      -          -             -
receive-alerts   *          viewer     -  -     -      -          -             -
receive-alerts   *          releaser   -  -     -      -          -             -
receive-alerts   *          promoter   Y  -     -      -          -             -
receive-alerts   *          approver   -  -     -      -          -             -
receive-alerts   *          admin      Y  -     -      -          -             -
review           *          viewer     -  -     -      -          -             -
review           *          releaser   -  -     -      -          -             -
review           *          promoter   -  -     -      -          -             -
review           *          approver   -  -     -      -          -             -
review           *          admin      Y  -     -      -          -             -
review           shop       viewer     -  -     -      -          -             -
review           shop       releaser   -  -     -      -          -             -
review           shop       promoter   -  -     -      -          -             -
review           shop       approver   -  -     -      -          -             -
review           shop       admin      Y  Y     -      -          -             -
review           shop/prod  viewer     -  -     -      -          -             -
review           shop/prod  releaser   -  -     -      -          -             -
review           shop/prod  promoter   -  -     -      -          -             -
review           shop/prod  approver   -  -     -      -          -             -
review           shop/prod  admin      Y  Y     -      Y          -             -
`

// neededRole is the role a denial must name for each action, again written
// out from the specification.
var neededRole = map[Action]string{
	ActionView:           "viewer",
	ActionApplyPipeline:  "admin",
	ActionCreateRelease:  "releaser",
	ActionPromote:        "promoter",
	ActionAbort:          "promoter",
	ActionRollback:       "promoter",
	ActionApprove:        "approver",
	ActionOverrideWindow: "admin",
	ActionManageTokens:   "admin",
	ActionReview:         "admin",
	ActionReceiveAlerts:  "promoter",
}

type matrixRow struct {
	action  Action
	request string
	role    Role
	allow   []bool
}

func parseMatrix(t *testing.T) []matrixRow {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(matrix), "\n")
	header := strings.Fields(lines[0])
	if got, want := strings.Join(header[3:], " "), strings.Join(matrixScopes, " "); got != want {
		t.Fatalf("matrix columns = %q, want %q", got, want)
	}
	var rows []matrixRow
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 3+len(matrixScopes) {
			t.Fatalf("matrix line %d has %d fields: %q", i+2, len(f), line)
		}
		row := matrixRow{action: Action(f[0]), request: f[1], role: Role(f[2])}
		for _, cell := range f[3:] {
			switch cell {
			case "Y":
				row.allow = append(row.allow, true)
			case "-":
				row.allow = append(row.allow, false)
			default:
				t.Fatalf("matrix line %d: cell %q is neither Y nor -", i+2, cell)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func TestAuthorizeMatrix(t *testing.T) {
	rows := parseMatrix(t)

	// Every action must appear with every role, so that adding an action or
	// a role without deciding its permissions fails here.
	seen := map[Action]map[Role]bool{}
	for _, r := range rows {
		if seen[r.action] == nil {
			seen[r.action] = map[Role]bool{}
		}
		seen[r.action][r.role] = true
	}
	for _, a := range Actions() {
		for _, role := range Roles() {
			if !seen[a][role] {
				t.Errorf("matrix has no row for action %q and role %q", a, role)
			}
		}
	}

	for _, r := range rows {
		req, err := ParseScope(r.request)
		if err != nil {
			t.Fatal(err)
		}
		for i, scopeText := range matrixScopes {
			scope, err := ParseScope(scopeText)
			if err != nil {
				t.Fatal(err)
			}
			grant := Grant{Role: r.role, Scope: scope}
			name := string(r.action) + " " + r.request + " by " + grant.String()
			t.Run(name, func(t *testing.T) {
				d := Authorize([]Grant{grant}, r.action, req.Pipeline, req.Environment)
				if d.Allowed != r.allow[i] {
					t.Fatalf("Allowed = %v, want %v (reason: %s)", d.Allowed, r.allow[i], d.Reason)
				}
				if d.Need.Role != Role(neededRole[r.action]) || d.Need.Scope != req {
					t.Errorf("Need = %v, want %s on %s", d.Need, neededRole[r.action], r.request)
				}
				if d.Allowed {
					if !strings.Contains(d.Reason, "by "+grant.String()) {
						t.Errorf("reason %q does not name the allowing grant %q", d.Reason, grant)
					}
					if d.Err() != nil {
						t.Errorf("Err() = %v for an allowed decision", d.Err())
					}
					return
				}
				for _, want := range []string{
					`role "` + neededRole[r.action] + `"`,
					`on "` + r.request + `"`,
					"the token has: " + grant.String(),
				} {
					if !strings.Contains(d.Reason, want) {
						t.Errorf("reason %q does not contain %q", d.Reason, want)
					}
				}
				if !errors.Is(d.Err(), ErrForbidden) {
					t.Errorf("Err() = %v, want ErrForbidden", d.Err())
				}
			})
		}
	}
}

func TestAuthorizeReason(t *testing.T) {
	shop := Scope{Pipeline: "shop"}
	tests := []struct {
		name     string
		grants   []Grant
		action   Action
		pipeline string
		env      string
		want     string
	}{
		{
			name:     "missing approver",
			grants:   []Grant{{Role: RolePromoter, Scope: shop}},
			action:   ActionApprove,
			pipeline: "shop", env: "prod",
			want: `role "approver" on "shop/prod" (or broader) is required to approve promotions into shop/prod; the token has: promoter on shop`,
		},
		{
			name:   "global action",
			grants: []Grant{{Role: RoleAdmin, Scope: shop}, {Role: RoleViewer}},
			action: ActionManageTokens,
			want:   `role "admin" on "*" (global) is required to manage tokens; the token has: admin on shop, viewer on *`,
		},
		{
			name:     "no grants",
			action:   ActionCreateRelease,
			pipeline: "shop",
			want:     `role "releaser" on "shop" (or broader) is required to create releases of shop; the token has: no grants`,
		},
		{
			name:     "allowed",
			grants:   []Grant{{Role: RoleViewer}, {Role: RoleApprover, Scope: shop}},
			action:   ActionApprove,
			pipeline: "shop", env: "prod",
			want: `allowed to approve promotions into shop/prod by approver on shop`,
		},
		{
			name:     "break glass",
			grants:   []Grant{{Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "prod"}}},
			action:   ActionOverrideWindow,
			pipeline: "shop", env: "prod",
			want: `role "admin" on "shop/prod" (or broader) is required to override the deployment window of shop/prod; the token has: promoter on shop/prod`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Authorize(tt.grants, tt.action, tt.pipeline, tt.env)
			if d.Reason != tt.want {
				t.Errorf("reason:\n got %s\nwant %s", d.Reason, tt.want)
			}
		})
	}
}

func TestAuthorizeLevels(t *testing.T) {
	envGrant := func(r Role) []Grant { return []Grant{{Role: r, Scope: Scope{Pipeline: "shop", Environment: "prod"}}} }
	pipeGrant := func(r Role) []Grant { return []Grant{{Role: r, Scope: Scope{Pipeline: "shop"}}} }
	tests := []struct {
		name     string
		grants   []Grant
		action   Action
		pipeline string
		env      string
		allowed  bool
		need     Grant
	}{
		// A pipeline-level action names the environment in vain: an
		// environment grant still does not allow it.
		{"release with env, env grant", envGrant(RoleReleaser), ActionCreateRelease, "shop", "prod", false,
			Grant{Role: RoleReleaser, Scope: Scope{Pipeline: "shop"}}},
		{"apply with env, env grant", envGrant(RoleAdmin), ActionApplyPipeline, "shop", "prod", false,
			Grant{Role: RoleAdmin, Scope: Scope{Pipeline: "shop"}}},
		{"release with env, pipeline grant", pipeGrant(RoleReleaser), ActionCreateRelease, "shop", "prod", true,
			Grant{Role: RoleReleaser, Scope: Scope{Pipeline: "shop"}}},
		// A global action naming a resource still needs a global grant.
		{"tokens with pipeline", pipeGrant(RoleAdmin), ActionManageTokens, "shop", "", false,
			Grant{Role: RoleAdmin}},
		// Malformed requests deny, with no Need.
		{"promote without env", pipeGrant(RoleAdmin), ActionPromote, "shop", "", false, Grant{}},
		{"promote without pipeline", []Grant{{Role: RoleAdmin}}, ActionPromote, "", "prod", false, Grant{}},
		{"release without pipeline", []Grant{{Role: RoleAdmin}}, ActionCreateRelease, "", "", false, Grant{}},
		{"view env without pipeline", []Grant{{Role: RoleAdmin}}, ActionView, "", "prod", false, Grant{}},
		{"unknown action", []Grant{{Role: RoleAdmin}}, Action("deploy"), "shop", "prod", false, Grant{}},
		// Invalid grants allow nothing.
		{"unknown role", []Grant{{Role: "root"}}, ActionView, "", "", false, Grant{Role: RoleViewer}},
		{"environment without pipeline", []Grant{{Role: RoleAdmin, Scope: Scope{Environment: "prod"}}}, ActionView, "", "", false,
			Grant{Role: RoleViewer}},
		{"bad pipeline name", []Grant{{Role: RoleAdmin, Scope: Scope{Pipeline: "Shop"}}}, ActionView, "Shop", "", false,
			Grant{Role: RoleViewer, Scope: Scope{Pipeline: "Shop"}}},
		// Grants add up: any one that suffices allows.
		{"second grant allows", []Grant{{Role: RoleViewer}, {Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "prod"}}},
			ActionPromote, "shop", "prod", true, Grant{Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "prod"}}},
		{"no grant suffices", []Grant{{Role: RoleViewer}, {Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "prod"}}},
			ActionPromote, "shop", "staging", false, Grant{Role: RolePromoter, Scope: Scope{Pipeline: "shop", Environment: "staging"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Authorize(tt.grants, tt.action, tt.pipeline, tt.env)
			if d.Allowed != tt.allowed {
				t.Fatalf("Allowed = %v, want %v (reason: %s)", d.Allowed, tt.allowed, d.Reason)
			}
			if d.Need != tt.need {
				t.Errorf("Need = %+v, want %+v", d.Need, tt.need)
			}
			if d.Reason == "" {
				t.Error("empty reason")
			}
		})
	}
}

func TestPrincipalCan(t *testing.T) {
	p := Principal{User: "ci", Grants: []Grant{{Role: RoleReleaser, Scope: Scope{Pipeline: "shop"}}}, TokenID: "abcd1234"}
	if d := p.Can(ActionCreateRelease, "shop", ""); !d.Allowed {
		t.Errorf("releaser on shop cannot create releases of shop: %s", d.Reason)
	}
	if d := p.Can(ActionView, "shop", "prod"); !d.Allowed {
		t.Errorf("releaser on shop cannot view shop/prod: %s", d.Reason)
	}
	d := p.Can(ActionPromote, "shop", "prod")
	if d.Allowed {
		t.Fatal("releaser on shop can promote")
	}
	if want := `role "promoter" on "shop/prod"`; !strings.Contains(d.Reason, want) {
		t.Errorf("reason %q does not contain %q", d.Reason, want)
	}
}

func TestActionsHaveRequirements(t *testing.T) {
	for _, a := range Actions() {
		role, level, ok := a.Requirement()
		if !ok || !role.Valid() || level == "" {
			t.Errorf("action %q: Requirement() = %q, %q, %v", a, role, level, ok)
		}
		if string(role) != neededRole[a] {
			t.Errorf("action %q needs %q, want %q", a, role, neededRole[a])
		}
	}
	if _, _, ok := Action("nope").Requirement(); ok {
		t.Error("unknown action has a requirement")
	}
}
