package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// GlobalScope is the text form of the global scope. ParseScope also accepts
// the empty string for it.
const GlobalScope = "*"

// namePattern matches a pipeline or environment name: a lowercase DNS label.
var namePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Scope is the part of Ferry a grant applies to: everything (the zero
// Scope), one pipeline, or one environment of one pipeline.
type Scope struct {
	// Pipeline names the pipeline; empty means global.
	Pipeline string
	// Environment names an environment of Pipeline; empty means the whole
	// pipeline. It must be empty when Pipeline is.
	Environment string
}

// ParseScope parses "" or "*" (global), "shop" (a pipeline) or "shop/prod"
// (an environment of a pipeline).
func ParseScope(s string) (Scope, error) {
	if s == "" || s == GlobalScope {
		return Scope{}, nil
	}
	pipeline, env, hasEnv := strings.Cut(s, "/")
	sc := Scope{Pipeline: pipeline, Environment: env}
	if hasEnv && env == "" {
		return Scope{}, fmt.Errorf("scope %q: environment name is empty (want pipeline or pipeline/environment)", s)
	}
	if err := sc.Validate(); err != nil {
		return Scope{}, fmt.Errorf("scope %q: %w", s, err)
	}
	return sc, nil
}

// Validate checks that the names in s are well formed.
func (s Scope) Validate() error {
	if s.Pipeline == "" {
		if s.Environment != "" {
			return fmt.Errorf("environment %q has no pipeline", s.Environment)
		}
		return nil
	}
	if !namePattern.MatchString(s.Pipeline) {
		return fmt.Errorf("pipeline name %q is invalid: %s", s.Pipeline, nameRule)
	}
	if s.Environment != "" && !namePattern.MatchString(s.Environment) {
		return fmt.Errorf("environment name %q is invalid: %s", s.Environment, nameRule)
	}
	return nil
}

const nameRule = "want 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"

// IsGlobal reports whether s covers all of Ferry.
func (s Scope) IsGlobal() bool { return s.Pipeline == "" }

// String returns s in the form ParseScope reads: "*", "shop" or "shop/prod".
func (s Scope) String() string {
	switch {
	case s.Pipeline == "":
		return GlobalScope
	case s.Environment == "":
		return s.Pipeline
	default:
		return s.Pipeline + "/" + s.Environment
	}
}

// Covers reports whether s includes the resource at pipeline and env. An
// empty env names a pipeline-level resource (the pipeline itself, its
// releases); empty pipeline and env name a global resource. The global
// scope covers everything; a pipeline scope covers the pipeline and each of
// its environments; an environment scope covers only that environment, not
// its pipeline.
func (s Scope) Covers(pipeline, env string) bool {
	switch {
	case s.Pipeline == "":
		return s.Environment == ""
	case s.Pipeline != pipeline:
		return false
	case s.Environment == "":
		return true
	default:
		return s.Environment == env
	}
}

// MarshalText encodes s as String does.
func (s Scope) MarshalText() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes s as ParseScope does.
func (s *Scope) UnmarshalText(b []byte) error {
	sc, err := ParseScope(string(b))
	if err != nil {
		return err
	}
	*s = sc
	return nil
}

// Grant gives a role over a scope.
type Grant struct {
	Role  Role  `json:"role"`
	Scope Scope `json:"scope"`
}

// ParseGrant parses the command-line form of a grant, "role" (global) or
// "role:scope", such as "promoter:shop/prod".
func ParseGrant(s string) (Grant, error) {
	roleText, scopeText, _ := strings.Cut(s, ":")
	r, err := ParseRole(roleText)
	if err != nil {
		return Grant{}, fmt.Errorf("grant %q: %w", s, err)
	}
	sc, err := ParseScope(scopeText)
	if err != nil {
		return Grant{}, fmt.Errorf("grant %q: %w", s, err)
	}
	return Grant{Role: r, Scope: sc}, nil
}

// Validate checks the role and the scope of g.
func (g Grant) Validate() error {
	if !g.Role.Valid() {
		return fmt.Errorf("unknown role %q: want one of %s", g.Role, roleNames())
	}
	if err := g.Scope.Validate(); err != nil {
		return fmt.Errorf("scope of %s grant: %w", g.Role, err)
	}
	return nil
}

// String describes g for people, as in "promoter on shop" or "admin on *".
func (g Grant) String() string {
	return string(g.Role) + " on " + g.Scope.String()
}

// ValidateGrants checks every grant and returns all problems joined, or nil.
// A token needs at least one grant to be useful, but an empty list is valid.
func ValidateGrants(grants []Grant) error {
	var errs []error
	for i, g := range grants {
		if err := g.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("grant %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
