// Package pipeline defines pipeline specifications: the YAML contract users
// apply, its strict parsing with source positions, its validation, and the
// immutable revisions that promotions pin.
package pipeline

import (
	"fmt"
	"time"

	"github.com/ferry-dev/ferry/internal/gate/window"
)

// Spec is one pipeline as written in YAML.
type Spec struct {
	// Name identifies the pipeline.
	Name string `yaml:"name" json:"name"`
	// Environments are the stages of the pipeline; their order is given by After.
	Environments []Environment `yaml:"environments" json:"environments"`
	// Notifications are the endpoints told about the promotions of every environment.
	Notifications []Notification `yaml:"notifications,omitempty" json:"notifications,omitempty"`
}

// Environment is one stage of a pipeline.
type Environment struct {
	// Name identifies the environment within its pipeline.
	Name string `yaml:"name" json:"name"`
	// After lists the upstream environments a release must have succeeded in first.
	After []string `yaml:"after,omitempty" json:"after,omitempty"`
	// AutoPromote promotes a release automatically once every upstream environment succeeded with it.
	AutoPromote bool `yaml:"autoPromote,omitempty" json:"autoPromote,omitempty"`
	// Steps deploy a release, in order.
	Steps []Step `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Verify holds the checks run after the steps.
	Verify []Step `yaml:"verify,omitempty" json:"verify,omitempty"`
	// Rollback configures what happens when a step or check fails.
	Rollback *Rollback `yaml:"rollback,omitempty" json:"rollback,omitempty"`
	// Gates must hold before a release deploys into the environment.
	Gates *Gates `yaml:"gates,omitempty" json:"gates,omitempty"`
	// Strategy is how a release takes traffic: all at once (none), or in canary phases.
	Strategy *Strategy `yaml:"strategy,omitempty" json:"strategy,omitempty"`
	// Watch keeps checking for a while after the checks passed; a failure
	// rolls the environment back.
	Watch *Watch `yaml:"watch,omitempty" json:"watch,omitempty"`
	// Alerts says which Alertmanager alerts concern the environment and
	// whether a firing one rolls back the promotion verifying or watching there.
	Alerts *Alerts `yaml:"alerts,omitempty" json:"alerts,omitempty"`
	// Notifications are the endpoints told about this environment's
	// promotions, besides the pipeline's.
	Notifications []Notification `yaml:"notifications,omitempty" json:"notifications,omitempty"`
}

// Watch is a post-promotion watch window: after the verify checks pass, the
// promotion is watching — the release runs in the environment and Checks
// keep running until For has passed. A failing check (or a firing alert,
// see Alerts) rolls the environment back to the release it replaced.
type Watch struct {
	// For is how long the window lasts, counted from its start.
	For Duration `yaml:"for" json:"for"`
	// Every is the wait between two runs of an exec or http check. A
	// prometheus or web check measures at its own interval for the whole
	// window. Defaults to 1m.
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
	// Checks run together for the whole window: exec, http, prometheus or web.
	Checks []Step `yaml:"checks" json:"checks"`
}

// DefaultWatchEvery is the wait between runs of a watch's exec and http checks.
const DefaultWatchEvery = time.Minute

// EveryOrDefault returns the wait between runs of w's exec and http checks.
func (w *Watch) EveryOrDefault() time.Duration {
	if w.Every > 0 {
		return w.Every.D()
	}
	return DefaultWatchEvery
}

// Alerts routes Alertmanager alerts to an environment. An alert labelled
// ferry_pipeline and ferry_environment reaches its environment whatever the
// matchers say.
type Alerts struct {
	// Matchers select the alerts that concern the environment, written as
	// Alertmanager writes them: alertname="HighErrorRate", severity=~"page|critical".
	// An alert must satisfy all of them.
	Matchers []string `yaml:"matchers,omitempty" json:"matchers,omitempty"`
	// Rollback rolls back the promotion verifying or watching in the
	// environment when one of its alerts fires. Without it alerts are only
	// recorded on the promotion.
	Rollback bool `yaml:"rollback,omitempty" json:"rollback,omitempty"`
}

// Strategy is how a release takes traffic after its deploy steps.
type Strategy struct {
	Canary *CanaryStrategy `yaml:"canary,omitempty" json:"canary,omitempty"`
}

// CanaryStrategy moves traffic to the release in phases: at each phase the
// SetWeight steps route Weight percent of traffic to it (they get
// FERRY_CANARY_WEIGHT), then the phase pauses, then its analysis runs. A
// failure sets the weight back to 0 and rolls back. After the last phase
// the environment's verify checks run.
type CanaryStrategy struct {
	// SetWeight are the steps that route traffic; any step kind.
	SetWeight []Step `yaml:"setWeight" json:"setWeight"`
	// Phases run in order; the last one's weight is usually 100.
	Phases []CanaryPhase `yaml:"phases" json:"phases"`
}

// CanaryPhase is one step of a canary's traffic.
type CanaryPhase struct {
	// Weight is the percentage of traffic, 0 to 100.
	Weight int `yaml:"weight" json:"weight"`
	// Pause is a duration to wait after setting the weight, or "manual" to
	// wait for ferry advance.
	Pause string `yaml:"pause,omitempty" json:"pause,omitempty"`
	// Analysis are checks run after the pause.
	Analysis []Step `yaml:"analysis,omitempty" json:"analysis,omitempty"`
}

// CanaryItem is one item of a canary strategy, flattened: a set-weight
// step, a pause, or an analysis check of a phase.
type CanaryItem struct {
	// Phase is the 1-based phase number and Weight its traffic percentage.
	Phase  int
	Weight int
	// Step is the step to run; nil for a pause.
	Step *Step
	// Pause is how long to wait; Manual waits for a person.
	Pause  time.Duration
	Manual bool
	// Name names the item in a promotion's steps ("phase 1 (5%): set-weight/route").
	Name string
}

// CanaryItems flattens the strategy: for each phase, its set-weight steps,
// its pause, then its analysis checks. Pauses that do not parse are
// skipped (validation refuses them).
func (c *CanaryStrategy) CanaryItems() []CanaryItem {
	if c == nil {
		return nil
	}
	var out []CanaryItem
	for i, ph := range c.Phases {
		label := fmt.Sprintf("phase %d (%d%%)", i+1, ph.Weight)
		for j := range c.SetWeight {
			s := c.SetWeight[j]
			out = append(out, CanaryItem{Phase: i + 1, Weight: ph.Weight, Step: &s, Name: label + ": " + s.Name})
		}
		switch {
		case ph.Pause == "manual":
			out = append(out, CanaryItem{Phase: i + 1, Weight: ph.Weight, Manual: true, Name: label + ": pause"})
		case ph.Pause != "":
			if d, err := ParseDuration(ph.Pause); err == nil && d > 0 {
				out = append(out, CanaryItem{Phase: i + 1, Weight: ph.Weight, Pause: d, Name: label + ": pause"})
			}
		}
		for j := range ph.Analysis {
			s := ph.Analysis[j]
			out = append(out, CanaryItem{Phase: i + 1, Weight: ph.Weight, Step: &s, Name: label + ": " + s.Name})
		}
	}
	return out
}

// Gates are an environment's conditions before deploying, evaluated in this
// order: upstream success (always), soak, policies, windows, approvals; then
// the preflight checks run before the steps.
type Gates struct {
	// Soak is how long the release must have run successfully in every
	// upstream environment, with no failed or rolled-back promotion of it since.
	Soak Duration `yaml:"soak,omitempty" json:"soak,omitempty"`
	// Policies are CEL expressions that must all hold.
	Policies []Policy `yaml:"policies,omitempty" json:"policies,omitempty"`
	// Windows are the times deployments are allowed, and the freezes.
	Windows *window.Spec `yaml:"windows,omitempty" json:"windows,omitempty"`
	// Approvals are the people who must approve.
	Approvals *Approvals `yaml:"approvals,omitempty" json:"approvals,omitempty"`
	// ErrorBudget holds promotions while the service burns its error budget too fast.
	ErrorBudget *ErrorBudget `yaml:"errorBudget,omitempty" json:"errorBudget,omitempty"`
	// Preflight checks run before the deploy steps; a failure ends the
	// promotion failed with nothing deployed.
	Preflight []Step `yaml:"preflight,omitempty" json:"preflight,omitempty"`
	// ExpediteRoles may request expedited promotions (skipping soak). Defaults to [admin].
	ExpediteRoles []string `yaml:"expediteRoles,omitempty" json:"expediteRoles,omitempty"`
	// OverrideRole may override windows and freezes besides admin (break-glass).
	OverrideRole string `yaml:"overrideRole,omitempty" json:"overrideRole,omitempty"`
	// Rollbacks says which time-based gates also apply to rollbacks; by
	// default rollbacks skip soak and windows (never RBAC, policies or approvals).
	Rollbacks *RollbackGates `yaml:"rollbacks,omitempty" json:"rollbacks,omitempty"`
}

// Policy is a CEL expression over the release, pipeline, environment,
// promotion, now and history that must be true.
type Policy struct {
	Name string `yaml:"name" json:"name"`
	Expr string `yaml:"expr" json:"expr"`
	// Message is shown when the policy fails.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
}

// Approvals configures who must approve a promotion.
type Approvals struct {
	// Required is a count ("2") or a CEL expression giving one
	// ('release.labels["risk"] == "low" ? 0 : 2').
	Required string `yaml:"required" json:"required"`
	// From lists who may approve: "role:NAME" or "user:NAME". Empty: anyone with the approver role.
	From []string `yaml:"from,omitempty" json:"from,omitempty"`
	// AllowSelfApproval lets the release's creator and the promotion's requester approve.
	AllowSelfApproval bool `yaml:"allowSelfApproval,omitempty" json:"allowSelfApproval,omitempty"`
	// ExpiresAfter voids approvals older than this.
	ExpiresAfter Duration `yaml:"expiresAfter,omitempty" json:"expiresAfter,omitempty"`
	// Timeout is how long a promotion waits for approvals; then OnTimeout applies.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OnTimeout is "reject" (the default) or "escalate".
	OnTimeout string `yaml:"onTimeout,omitempty" json:"onTimeout,omitempty"`
	// Escalate calls a webhook after a wait.
	Escalate *Escalate `yaml:"escalate,omitempty" json:"escalate,omitempty"`
}

// Escalate posts to a webhook when approvals are late.
type Escalate struct {
	After   Duration `yaml:"after,omitempty" json:"after,omitempty"`
	Webhook string   `yaml:"webhook" json:"webhook"`
}

// RollbackGates turns time-based gates on for rollbacks.
type RollbackGates struct {
	Soak    bool `yaml:"soak,omitempty" json:"soak,omitempty"`
	Windows bool `yaml:"windows,omitempty" json:"windows,omitempty"`
}

// AutoRollback reports whether a failed promotion into e is rolled back
// automatically. Defaults to true.
func (e Environment) AutoRollback() bool {
	if e.Rollback == nil || e.Rollback.Automatic == nil {
		return true
	}
	return *e.Rollback.Automatic
}

// Rollback configures rollback of an environment.
type Rollback struct {
	// Automatic redeploys the previous release when a step or check fails. Defaults to true.
	Automatic *bool `yaml:"automatic,omitempty" json:"automatic,omitempty"`
}

// Step is one deploy step or check. Exactly one of Exec, HTTP, Prometheus,
// Web and Canary is set; the last three are checks, allowed under verify and
// preflight.
type Step struct {
	// Name identifies the step within its list.
	Name string `yaml:"name" json:"name"`
	// Exec runs a process.
	Exec *Exec `yaml:"exec,omitempty" json:"exec,omitempty"`
	// HTTP makes an HTTP request.
	HTTP *HTTP `yaml:"http,omitempty" json:"http,omitempty"`
	// Prometheus measures a PromQL query repeatedly (a check).
	Prometheus *PrometheusCheck `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`
	// Web measures a JSON HTTP endpoint repeatedly (a check, for metric systems without Prometheus).
	Web *WebCheck `yaml:"web,omitempty" json:"web,omitempty"`
	// Canary compares the canary's metrics with the baseline's with a statistical judge (a check).
	Canary *CanaryCheck `yaml:"canary,omitempty" json:"canary,omitempty"`
	// Retries is the number of extra attempts after a failure, with exponential backoff.
	Retries int `yaml:"retries,omitempty" json:"retries,omitempty"`
	// Backoff is the wait before the first retry; it doubles for each further
	// retry, up to one minute. Defaults to 1s.
	Backoff Duration `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	// SecretEnv names variables taken from the server's environment and passed
	// to the step; their values never appear in stored output or API responses.
	SecretEnv []string `yaml:"secretEnv,omitempty" json:"secretEnv,omitempty"`
}

// Kind returns the driver kind of the step: "exec", "http", "prometheus" or "web".
func (s Step) Kind() string {
	switch {
	case s.Exec != nil:
		return "exec"
	case s.HTTP != nil:
		return "http"
	case s.Prometheus != nil:
		return "prometheus"
	case s.Web != nil:
		return "web"
	case s.Canary != nil:
		return "canary"
	}
	return ""
}

// Timeout returns the step's configured timeout, or zero for none.
func (s Step) Timeout() time.Duration {
	switch {
	case s.Exec != nil:
		return s.Exec.Timeout.D()
	case s.HTTP != nil:
		return s.HTTP.Timeout.D()
	}
	return 0
}

// Exec runs a shell script (Run, via /bin/sh -c) or an argv (Command).
type Exec struct {
	Run     string            `yaml:"run,omitempty" json:"run,omitempty"`
	Command []string          `yaml:"command,omitempty" json:"command,omitempty"`
	Env     map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Workdir string            `yaml:"workdir,omitempty" json:"workdir,omitempty"`
	Timeout Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// HTTP makes one HTTP request and expects a status.
type HTTP struct {
	Method       string            `yaml:"method,omitempty" json:"method,omitempty"`
	URL          string            `yaml:"url" json:"url"`
	Headers      map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body         string            `yaml:"body,omitempty" json:"body,omitempty"`
	ExpectStatus int               `yaml:"expectStatus,omitempty" json:"expectStatus,omitempty"`
	Timeout      Duration          `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Duration is a time.Duration written in YAML as a Go duration string ("30s", "2m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// The events a notification endpoint may ask for.
const (
	// EventPromotionSucceeded: a promotion ended succeeded.
	EventPromotionSucceeded = "promotion.succeeded"
	// EventPromotionFailed: a promotion ended failed, rollback_failed or rejected.
	EventPromotionFailed = "promotion.failed"
	// EventPromotionRolledBack: a promotion's automatic rollback restored the previous release.
	EventPromotionRolledBack = "promotion.rolled_back"
	// EventApprovalRequested: a promotion started waiting for approvals.
	EventApprovalRequested = "approval.requested"
	// EventGateBlocked: a gate other than approvals held a promotion (pending) or refused it (fail).
	EventGateBlocked = "gate.blocked"
)

// NotificationEvents lists the events a notification endpoint may ask for.
var NotificationEvents = []string{EventPromotionSucceeded, EventPromotionFailed, EventPromotionRolledBack,
	EventApprovalRequested, EventGateBlocked}

// The formats of a notification's messages.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Notification is an HTTP endpoint told about promotions: Ferry POSTs a
// message to URL for each of Events, durably, retried until it is accepted.
type Notification struct {
	// Name identifies the endpoint among those a promotion notifies.
	Name string `yaml:"name" json:"name"`
	// URL is where messages are POSTed; an absolute http or https URL.
	URL string `yaml:"url" json:"url"`
	// Events are the events the endpoint is told about.
	Events []string `yaml:"events" json:"events"`
	// Format is json (Ferry's message) or slack (a Slack incoming-webhook
	// message). Defaults to json.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// Headers are sent with every message.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// SecretHeaders maps header names to variables of the server's
	// environment holding their values, read at each delivery and never stored.
	SecretHeaders map[string]string `yaml:"secretHeaders,omitempty" json:"secretHeaders,omitempty"`
}

// Wants reports whether the endpoint asks for event.
func (n Notification) Wants(event string) bool {
	for _, e := range n.Events {
		if e == event {
			return true
		}
	}
	return false
}

// MessageFormat returns the endpoint's format, json when unset.
func (n Notification) MessageFormat() string {
	if n.Format == "" {
		return FormatJSON
	}
	return n.Format
}

// NotificationsFor returns the endpoints told about promotions into env:
// the pipeline's, then the environment's.
func (s *Spec) NotificationsFor(env string) []Notification {
	out := append([]Notification(nil), s.Notifications...)
	if e, ok := s.Environment(env); ok {
		out = append(out, e.Notifications...)
	}
	return out
}

// Environment returns the environment called name, or false.
func (s *Spec) Environment(name string) (Environment, bool) {
	for _, e := range s.Environments {
		if e.Name == name {
			return e, true
		}
	}
	return Environment{}, false
}

// Downstream returns the environments that list env in their After.
func (s *Spec) Downstream(env string) []Environment {
	var out []Environment
	for _, e := range s.Environments {
		for _, a := range e.After {
			if a == env {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// Revision is one immutable, applied version of a pipeline.
type Revision struct {
	// Pipeline is the pipeline's name.
	Pipeline string `json:"pipeline"`
	// Number counts revisions of the pipeline from 1.
	Number int `json:"number"`
	// Digest is the sha256 of the canonical JSON of Spec; equal specs have equal digests.
	Digest string `json:"digest"`
	// Spec is the parsed specification.
	Spec Spec `json:"spec"`
	// Source is the YAML as applied.
	Source string `json:"source,omitempty"`
	// CreatedAt is when the revision was stored.
	CreatedAt time.Time `json:"createdAt"`
	// CreatedBy is the actor that applied it.
	CreatedBy string `json:"createdBy,omitempty"`
}

// Measure says how a metric check measures: how often, how many times, and
// what makes a measurement succeed or fail.
type Measure struct {
	// Interval is the time between measurements. Defaults to 1m.
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Count is the number of measurements taken. Defaults to 1.
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// SuccessCondition is a CEL condition over result ("result < 0.01").
	SuccessCondition string `yaml:"successCondition,omitempty" json:"successCondition,omitempty"`
	// FailureCondition is a CEL condition over result ("result > 0.05"); it wins over SuccessCondition.
	FailureCondition string `yaml:"failureCondition,omitempty" json:"failureCondition,omitempty"`
	// FailureLimit is how many failed measurements are tolerated. Defaults to 0.
	FailureLimit int `yaml:"failureLimit,omitempty" json:"failureLimit,omitempty"`
	// InconclusiveLimit is how many inconclusive measurements are tolerated. Defaults to 0.
	InconclusiveLimit int `yaml:"inconclusiveLimit,omitempty" json:"inconclusiveLimit,omitempty"`
	// ConsecutiveErrorLimit is how many measurements in a row may err. Defaults to 4.
	ConsecutiveErrorLimit int `yaml:"consecutiveErrorLimit,omitempty" json:"consecutiveErrorLimit,omitempty"`
	// NoData is what a measurement without data counts as: fail, inconclusive (the default), pass or wait.
	NoData string `yaml:"noData,omitempty" json:"noData,omitempty"`
}

// PrometheusCheck measures a PromQL query. Query may use ${environment},
// ${pipeline}, ${release}, ${promotion} and ${artifact.NAME.digest}.
type PrometheusCheck struct {
	Address string `yaml:"address" json:"address"`
	Query   string `yaml:"query" json:"query"`
	// Timeout bounds each query. Defaults to 30s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Measure `yaml:",inline" json:",inline"`
}

// WebCheck measures a JSON HTTP endpoint; conditions see the selected part
// of the response as result. URL, headers and body may use the same
// variables as a Prometheus query.
type WebCheck struct {
	URL     string            `yaml:"url" json:"url"`
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
	// JSONPath selects what the conditions see ($.data.errorRate). Defaults to the whole document.
	JSONPath string   `yaml:"jsonPath,omitempty" json:"jsonPath,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	Measure  `yaml:",inline" json:",inline"`
}

// ErrorBudget is the error-budget gate: the multi-window, multi-burn-rate
// rule of the Google SRE workbook over the service's request counters.
type ErrorBudget struct {
	// Prometheus is the server's base URL.
	Prometheus string `yaml:"prometheus" json:"prometheus"`
	// Errors and Total are PromQL rates over $window, such as
	// sum(rate(http_requests_total{code=~"5.."}[$window])); they may use
	// ${environment} and ${pipeline}.
	Errors string `yaml:"errors" json:"errors"`
	Total  string `yaml:"total" json:"total"`
	// Objective is the share of requests that should succeed, in percent (99.9).
	Objective float64 `yaml:"objective" json:"objective"`
	// Period is the objective's period. Defaults to 30d.
	Period Duration `yaml:"period,omitempty" json:"period,omitempty"`
	// Rules are the window pairs and factors. Defaults to 14.4 over 1h and
	// 5m, and 6 over 6h and 30m.
	Rules []BurnRule `yaml:"rules,omitempty" json:"rules,omitempty"`
}

// BurnRule fires when the burn rates over both windows exceed Factor.
type BurnRule struct {
	Long   Duration `yaml:"long" json:"long"`
	Short  Duration `yaml:"short" json:"short"`
	Factor float64  `yaml:"factor" json:"factor"`
}

// CanaryCheck judges a canary against its baseline: for each metric, the
// samples of two PromQL queries over the analysis window are compared with
// a Mann–Whitney test (see ferry judge). Queries may use ${environment},
// ${pipeline}, ${release} (the canary's version), ${baseline} (the version
// running before the promotion) and ${promotion}.
type CanaryCheck struct {
	// Prometheus is the server's base URL.
	Prometheus string `yaml:"prometheus" json:"prometheus"`
	// Window is how far back from the judgement the samples reach. Defaults to 10m.
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// Step is the time between samples. Defaults to 30s.
	Step Duration `yaml:"step,omitempty" json:"step,omitempty"`
	// Delay is how long to wait before judging, so that the canary has
	// data. Defaults to 0.
	Delay Duration `yaml:"delay,omitempty" json:"delay,omitempty"`
	// Metrics are compared one by one.
	Metrics []CanaryMetric `yaml:"metrics" json:"metrics"`
	// PassThreshold and MarginalThreshold are the score (0–100) for a pass
	// and for a marginal verdict. Default to 95 and 75. A marginal verdict
	// pauses the promotion for a person.
	PassThreshold     float64 `yaml:"passThreshold,omitempty" json:"passThreshold,omitempty"`
	MarginalThreshold float64 `yaml:"marginalThreshold,omitempty" json:"marginalThreshold,omitempty"`
	// Alpha is the significance level. Defaults to 0.05.
	Alpha float64 `yaml:"alpha,omitempty" json:"alpha,omitempty"`
}

// CanaryMetric is one metric a canary is judged on.
type CanaryMetric struct {
	Name     string `yaml:"name" json:"name"`
	Baseline string `yaml:"baseline" json:"baseline"`
	Canary   string `yaml:"canary" json:"canary"`
	// Direction is which change is bad: increase, decrease or either (the default).
	Direction string `yaml:"direction,omitempty" json:"direction,omitempty"`
	// Critical fails the whole judgement when this metric fails.
	Critical bool `yaml:"critical,omitempty" json:"critical,omitempty"`
	// Weight counts toward the score. Defaults to 1.
	Weight float64 `yaml:"weight,omitempty" json:"weight,omitempty"`
	// EffectSize is the smallest relative change that matters (0.1 = 10%). Defaults to 0.
	EffectSize float64 `yaml:"effectSize,omitempty" json:"effectSize,omitempty"`
}

// ParseDuration parses a Go duration, also with a leading whole number of
// days of 24 hours ("30d", "1d12h"), as pipeline YAML writes durations.
func ParseDuration(s string) (time.Duration, error) { return parseDuration(s) }
