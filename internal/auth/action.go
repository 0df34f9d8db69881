package auth

import (
	"errors"
	"fmt"
	"strings"
)

// Action is something a principal asks to do. Actions are persisted, in
// audit events for instance, as their string values.
type Action string

// The actions, each with the role it needs and the level of resource it
// applies to (see Requirement).
const (
	// ActionView reads anything: a global list, a pipeline, an environment.
	// Needs viewer on the resource.
	ActionView Action = "view"
	// ActionApplyPipeline creates or changes a pipeline. Needs admin on the
	// pipeline.
	ActionApplyPipeline Action = "apply-pipeline"
	// ActionCreateRelease creates a release of a pipeline. Needs releaser
	// on the pipeline.
	ActionCreateRelease Action = "create-release"
	// ActionPromote starts a promotion into an environment. Needs promoter
	// on the environment.
	ActionPromote Action = "promote"
	// ActionAbort aborts a promotion into an environment. Needs promoter on
	// the environment.
	ActionAbort Action = "abort"
	// ActionRollback rolls an environment back. Needs promoter on the
	// environment.
	ActionRollback Action = "rollback"
	// ActionApprove approves or rejects a promotion into an environment.
	// Needs approver on the environment.
	ActionApprove Action = "approve"
	// ActionOverrideWindow breaks glass: it promotes into an environment
	// outside its deployment window or during a freeze. Needs admin on the
	// environment.
	ActionOverrideWindow Action = "override-window"
	// ActionManageTokens creates, lists and revokes tokens. Needs admin on
	// the global scope, because a token may carry any grant.
	ActionManageTokens Action = "manage-tokens"
	// ActionReview reads, exports and verifies the audit trail of a
	// resource, and acknowledges the break-glass overrides recorded in it.
	// Needs admin on the resource.
	ActionReview Action = "review"
	// ActionReceiveAlerts delivers Alertmanager notifications, which may
	// roll back a promotion in any environment. Needs promoter on the
	// global scope.
	ActionReceiveAlerts Action = "receive-alerts"
)

// Actions returns every action.
func Actions() []Action {
	return []Action{
		ActionView, ActionApplyPipeline, ActionCreateRelease,
		ActionPromote, ActionAbort, ActionRollback, ActionApprove,
		ActionOverrideWindow, ActionManageTokens, ActionReview, ActionReceiveAlerts,
	}
}

// Level is the kind of resource an action applies to.
type Level string

// The levels of resources.
const (
	// LevelAny actions apply to whatever resource the request names: the
	// whole of Ferry, a pipeline or an environment.
	LevelAny Level = "any"
	// LevelGlobal actions apply to the whole of Ferry; only a global grant
	// allows them.
	LevelGlobal Level = "global"
	// LevelPipeline actions apply to a pipeline; a global or pipeline grant
	// allows them, an environment grant does not.
	LevelPipeline Level = "pipeline"
	// LevelEnvironment actions apply to one environment of a pipeline.
	LevelEnvironment Level = "environment"
)

// Requirement returns the role action needs and the level of resource it
// applies to. ok is false for an unknown action.
func (a Action) Requirement() (role Role, level Level, ok bool) {
	switch a {
	case ActionView:
		return RoleViewer, LevelAny, true
	case ActionApplyPipeline:
		return RoleAdmin, LevelPipeline, true
	case ActionCreateRelease:
		return RoleReleaser, LevelPipeline, true
	case ActionPromote, ActionAbort, ActionRollback:
		return RolePromoter, LevelEnvironment, true
	case ActionApprove:
		return RoleApprover, LevelEnvironment, true
	case ActionOverrideWindow:
		return RoleAdmin, LevelEnvironment, true
	case ActionManageTokens:
		return RoleAdmin, LevelGlobal, true
	case ActionReceiveAlerts:
		return RolePromoter, LevelGlobal, true
	case ActionReview:
		return RoleAdmin, LevelAny, true
	}
	return "", "", false
}

// describe says what doing a to target means, for a reason a person reads.
func (a Action) describe(target Scope) string {
	t := target.String()
	switch a {
	case ActionView:
		if target.IsGlobal() {
			return "view global resources"
		}
		return "view " + t
	case ActionApplyPipeline:
		return "apply pipeline " + t
	case ActionCreateRelease:
		return "create releases of " + t
	case ActionPromote:
		return "promote into " + t
	case ActionAbort:
		return "abort promotions into " + t
	case ActionRollback:
		return "roll back " + t
	case ActionApprove:
		return "approve promotions into " + t
	case ActionOverrideWindow:
		return "override the deployment window of " + t
	case ActionManageTokens:
		return "manage tokens"
	case ActionReceiveAlerts:
		return "deliver alerts, which may roll back any environment"
	case ActionReview:
		if target.IsGlobal() {
			return "review the global audit trail"
		}
		return "review the audit trail of " + t
	}
	return fmt.Sprintf("%s %s", a, t)
}

// ErrForbidden is wrapped by the error of a Decision that denies.
var ErrForbidden = errors.New("forbidden")

// Decision is the outcome of an authorization check.
type Decision struct {
	// Allowed reports whether the action may go ahead.
	Allowed bool `json:"allowed"`
	// Reason says, for a person, which grant allowed the action or exactly
	// which role on which scope was missing and what the caller holds.
	Reason string `json:"reason"`
	// Need is the narrowest grant that would allow the action on the
	// resource checked. It is zero when the request itself was malformed
	// (unknown action, missing pipeline or environment).
	Need Grant `json:"need"`
}

// Err returns nil if d allows, or an error wrapping ErrForbidden whose
// message is the reason.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrForbidden, d.Reason)
}

// Authorize decides whether grants allow action on the resource at pipeline
// and env. The resource is read at the action's level: an environment-level
// action needs both names; a pipeline-level action needs pipeline and
// ignores env, so that a grant on one environment never allows an action on
// its whole pipeline; a global action ignores both. A grant allows the
// action when its role includes the role the action needs and its scope
// covers the resource. Grants that are not valid allow nothing.
func Authorize(grants []Grant, action Action, pipeline, env string) Decision {
	role, level, ok := action.Requirement()
	if !ok {
		return Decision{Reason: fmt.Sprintf("unknown action %q", action)}
	}
	switch level {
	case LevelGlobal:
		pipeline, env = "", ""
	case LevelPipeline:
		env = ""
		if pipeline == "" {
			return Decision{Reason: fmt.Sprintf("action %q needs a pipeline", action)}
		}
	case LevelEnvironment:
		if pipeline == "" || env == "" {
			return Decision{Reason: fmt.Sprintf("action %q needs a pipeline and an environment", action)}
		}
	case LevelAny:
		if pipeline == "" && env != "" {
			return Decision{Reason: fmt.Sprintf("environment %q named without its pipeline", env)}
		}
	}
	target := Scope{Pipeline: pipeline, Environment: env}
	need := Grant{Role: role, Scope: target}
	for _, g := range grants {
		if g.Validate() != nil {
			continue
		}
		if g.Role.Includes(role) && g.Scope.Covers(pipeline, env) {
			return Decision{
				Allowed: true,
				Reason:  fmt.Sprintf("allowed to %s by %s", action.describe(target), g),
				Need:    need,
			}
		}
	}
	on := fmt.Sprintf("on %q (or broader)", target.String())
	if target.IsGlobal() {
		on = fmt.Sprintf("on %q (global)", GlobalScope)
	}
	return Decision{
		Reason: fmt.Sprintf("role %q %s is required to %s; the token has: %s",
			role, on, action.describe(target), describeGrants(grants)),
		Need: need,
	}
}

func describeGrants(grants []Grant) string {
	if len(grants) == 0 {
		return "no grants"
	}
	parts := make([]string, len(grants))
	for i, g := range grants {
		parts[i] = g.String()
	}
	return strings.Join(parts, ", ")
}
