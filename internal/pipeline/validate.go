package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ferry-dev/ferry/internal/alert"
	"github.com/ferry-dev/ferry/internal/analysis"
	"github.com/ferry-dev/ferry/internal/analysis/burn"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/expr"
)

// Limits and patterns enforced by validation.
const (
	// maxRetries is the largest number of retries a step may ask for.
	maxRetries = 10
	// reservedEnvPrefix starts the names of the variables Ferry sets itself.
	reservedEnvPrefix = "FERRY_"
)

var (
	namePattern   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	envVarPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// headerPattern matches an HTTP header name (a token, RFC 9110 section 5.6.2).
	headerPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	httpMethods   = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

// Validate checks a specification built in code against the rules Parse
// enforces. It returns a *ValidationError listing every problem, whose
// problems name fields but no source positions, or nil.
func (s *Spec) Validate() error {
	v := &validator{}
	v.spec(s)
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

// validator collects the problems of a decoded specification.
type validator struct {
	file string
	// pos maps field paths to source positions; nil for a specification
	// built in code.
	pos map[string]position
	// text maps the field paths of string values to where their characters
	// are; nil for a specification built in code.
	text map[string]textPos
	// skip holds field paths that already have a decoding problem; a
	// problem on such a path, or on one of its ancestors or descendants,
	// would only repeat it.
	skip     map[string]bool
	problems []Problem
}

func (v *validator) add(path, format string, args ...any) {
	line, column := v.at(path)
	v.addAt(path, line, column, format, args...)
}

// addAt adds a problem at a position other than where path starts.
func (v *validator) addAt(path string, line, column int, format string, args ...any) {
	for failed := range v.skip {
		if related(failed, path) {
			return
		}
	}
	p := Problem{File: v.file, Line: line, Column: column, Field: path, Message: fmt.Sprintf(format, args...)}
	v.problems = append(v.problems, p)
}

// at returns the position of path, or of its nearest ancestor with a
// known position: a missing field is reported where its parent starts.
func (v *validator) at(path string) (line, column int) {
	for p := path; ; p = parent(p) {
		if pos, ok := v.pos[p]; ok && pos.line > 0 {
			return pos.line, pos.column
		}
		if p == "" {
			return 0, 0
		}
	}
}

// where describes where path is, for messages that point at another field.
func (v *validator) where(path string) string {
	if line, _ := v.at(path); line > 0 {
		return fmt.Sprintf("at line %d", line)
	}
	return "at " + path
}

// parent returns the path that contains path.
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// related reports whether a and b are the same path or one contains the other.
func related(a, b string) bool {
	return contains(a, b) || contains(b, a)
}

func contains(outer, inner string) bool {
	if outer == "" || outer == inner {
		return true
	}
	rest, ok := strings.CutPrefix(inner, outer)
	return ok && (rest[0] == '.' || rest[0] == '[')
}

func (v *validator) spec(s *Spec) {
	v.name("name", s.Name)
	if len(s.Environments) == 0 {
		v.add("environments", "at least one environment is required")
	}
	index := map[string]int{}
	for i, e := range s.Environments {
		p := fmt.Sprintf("environments[%d].name", i)
		if !v.name(p, e.Name) {
			continue
		}
		if first, dup := index[e.Name]; dup {
			v.add(p, "duplicate environment %q (first defined %s)", e.Name, v.where(fmt.Sprintf("environments[%d].name", first)))
			continue
		}
		index[e.Name] = i
	}
	shared := map[string]string{}
	v.notifications("notifications", s.Notifications, shared, nil)
	for i, e := range s.Environments {
		v.notifications(fmt.Sprintf("environments[%d].notifications", i), e.Notifications, map[string]string{}, shared)
	}
	for i, e := range s.Environments {
		v.after(i, e, index)
		v.environmentSteps(i, e)
		if e.Gates != nil {
			v.gates(fmt.Sprintf("environments[%d].gates", i), e.Gates)
		}
	}
	v.cycles(s, index)
}

// notifications checks a list of notification endpoints at p. seen maps the
// names met in the list to their paths, and pipeline those of the
// pipeline's endpoints, which an environment's may not repeat.
func (v *validator) notifications(p string, list []Notification, seen, pipeline map[string]string) {
	for i, n := range list {
		q := fmt.Sprintf("%s[%d]", p, i)
		if v.name(q+".name", n.Name) {
			if first, dup := pipeline[n.Name]; dup {
				v.add(q+".name", "duplicate notification %q: the pipeline's notifications define it %s", n.Name, v.where(first))
			} else if first, dup := seen[n.Name]; dup {
				v.add(q+".name", "duplicate notification %q (first defined %s)", n.Name, v.where(first))
			} else {
				seen[n.Name] = q + ".name"
			}
		}
		if n.URL == "" {
			v.add(q+".url", "required")
		} else if !absoluteHTTP(n.URL) {
			v.add(q+".url", "invalid URL %q: must be an absolute http or https URL", n.URL)
		}
		if len(n.Events) == 0 {
			v.add(q+".events", "at least one event is required: %s", strings.Join(NotificationEvents, ", "))
		}
		events := map[string]bool{}
		for j, ev := range n.Events {
			r := fmt.Sprintf("%s.events[%d]", q, j)
			switch {
			case !slices.Contains(NotificationEvents, ev):
				v.add(r, "unknown event %q: use %s", ev, strings.Join(NotificationEvents, ", "))
			case events[ev]:
				v.add(r, "duplicate entry %q", ev)
			}
			events[ev] = true
		}
		if n.Format != "" && n.Format != FormatJSON && n.Format != FormatSlack {
			v.add(q+".format", "unknown format %q: use %s or %s", n.Format, FormatJSON, FormatSlack)
		}
		for _, k := range slices.Sorted(maps.Keys(n.Headers)) {
			r := q + ".headers" + fieldKey(k)
			switch {
			case !v.notificationHeader(r, k):
			case strings.ContainsAny(n.Headers[k], "\r\n\x00"):
				v.add(r, "header value must not contain CR, LF or NUL")
			}
		}
		for _, k := range slices.Sorted(maps.Keys(n.SecretHeaders)) {
			r := q + ".secretHeaders" + fieldKey(k)
			if !v.notificationHeader(r, k) {
				continue
			}
			if _, clash := n.Headers[k]; clash {
				v.add(r, "header %q is also in headers: a header is either a secret or not", k)
				continue
			}
			v.envVar(r, n.SecretHeaders[k])
		}
	}
}

// notificationHeader checks the name of a header a notification sets and
// reports whether it is valid: a token, and none of those Ferry sets.
func (v *validator) notificationHeader(path, name string) bool {
	lower := strings.ToLower(name)
	switch {
	case !headerPattern.MatchString(name):
		v.add(path, "invalid header name %q", name)
		return false
	case lower == "content-type" || lower == "idempotency-key" || strings.HasPrefix(lower, "x-ferry-"):
		v.add(path, "header %q is set by Ferry", name)
		return false
	}
	return true
}

// name checks a pipeline, environment or step name and reports whether it is valid.
func (v *validator) name(path, name string) bool {
	switch {
	case name == "":
		v.add(path, "required")
		return false
	case !namePattern.MatchString(name):
		v.add(path, "invalid name %q: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit", name)
		return false
	}
	return true
}

func (v *validator) after(i int, e Environment, index map[string]int) {
	seen := map[string]bool{}
	for j, up := range e.After {
		p := fmt.Sprintf("environments[%d].after[%d]", i, j)
		switch _, known := index[up]; {
		case up == e.Name && up != "":
			v.add(p, "environment %q cannot come after itself", up)
		case !known:
			v.add(p, "unknown environment %q", up)
		case seen[up]:
			v.add(p, "duplicate entry %q", up)
		}
		seen[up] = true
	}
}

// cycles reports every cycle in the After relation, once per edge that
// closes one, in promotion order ("dev -> staging -> dev").
func (v *validator) cycles(s *Spec, index map[string]int) {
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(s.Environments))
	var stack []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = active
		stack = append(stack, i)
		for j, up := range s.Environments[i].After {
			t, ok := index[up]
			if !ok || up == s.Environments[i].Name {
				continue
			}
			switch state[t] {
			case active:
				start := slices.Index(stack, t)
				v.add(fmt.Sprintf("environments[%d].after[%d]", i, j), "cycle: %s", cycleText(s, stack[start:]))
			case unvisited:
				visit(t)
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i := range s.Environments {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

// cycleText formats a cycle found as a chain of environments each listing
// the next in After: it prints them upstream first, starting from the one
// declared first, and closes the loop.
func cycleText(s *Spec, chain []int) string {
	order := slices.Clone(chain)
	slices.Reverse(order)
	first := slices.Index(order, slices.Min(order))
	order = append(order[first:], order[:first]...)
	names := make([]string, 0, len(order)+1)
	for _, i := range order {
		names = append(names, s.Environments[i].Name)
	}
	names = append(names, names[0])
	return strings.Join(names, " -> ")
}

func (v *validator) environmentSteps(i int, e Environment) {
	seen := map[string]string{}
	var preflight []Step
	if e.Gates != nil {
		preflight = e.Gates.Preflight
	}
	// In the order they are written, else in the order they run, so that
	// the later step is the duplicate.
	type list struct {
		field string
		steps []Step
	}
	lists := []list{{"gates.preflight", preflight}, {"steps", e.Steps}, {"verify", e.Verify}}
	if e.Strategy != nil && e.Strategy.Canary != nil {
		c := e.Strategy.Canary
		lists = append(lists, list{"strategy.canary.setWeight", c.SetWeight})
		for k, ph := range c.Phases {
			lists = append(lists, list{fmt.Sprintf("strategy.canary.phases[%d].analysis", k), ph.Analysis})
		}
		v.canaryStrategy(fmt.Sprintf("environments[%d].strategy.canary", i), c)
	}
	if e.Watch != nil {
		lists = append(lists, list{"watch.checks", e.Watch.Checks})
		v.watch(fmt.Sprintf("environments[%d].watch", i), e.Watch)
	}
	if e.Alerts != nil {
		v.alerts(fmt.Sprintf("environments[%d].alerts", i), e.Alerts)
	}
	slices.SortStableFunc(lists, func(a, b list) int {
		al, ac := v.at(fmt.Sprintf("environments[%d].%s", i, a.field))
		bl, bc := v.at(fmt.Sprintf("environments[%d].%s", i, b.field))
		if al != bl {
			return al - bl
		}
		return ac - bc
	})
	for _, list := range lists {
		names := seen
		if strings.HasPrefix(list.field, "strategy.") {
			// Each phase may run the same checks: names are unique within a list.
			names = map[string]string{}
		}
		for j, st := range list.steps {
			p := fmt.Sprintf("environments[%d].%s[%d]", i, list.field, j)
			if v.name(p+".name", st.Name) {
				if first, dup := names[st.Name]; dup {
					v.add(p+".name", "duplicate step %q in environment %q (first defined %s)", st.Name, e.Name, v.where(first))
				} else {
					names[st.Name] = p + ".name"
				}
			}
			kind := list.field
			switch {
			case kind == "strategy.canary.setWeight":
				kind = "steps" // set-weight steps act
			case strings.HasPrefix(kind, "strategy.canary.phases["):
				kind = "verify" // a phase's analysis checks
			case kind == "watch.checks":
				kind = "watch"
			}
			v.step(p, kind, st)
		}
	}
}

// watch checks a post-promotion watch window.
func (v *validator) watch(p string, w *Watch) {
	if w.For <= 0 {
		v.add(p+".for", "a positive duration is required (30m, 2h): how long the window lasts")
	}
	if w.Every < 0 {
		v.add(p+".every", "must not be negative, got %s", w.Every.D())
	}
	if len(w.Checks) == 0 {
		v.add(p+".checks", "at least one check is required")
	}
}

// alerts checks an environment's alert routing.
func (v *validator) alerts(p string, a *Alerts) {
	for j, m := range a.Matchers {
		if _, err := alert.ParseMatcher(m); err != nil {
			v.add(fmt.Sprintf("%s.matchers[%d]", p, j), "%v", err)
		}
	}
}

// canaryStrategy checks a canary strategy's phases.
func (v *validator) canaryStrategy(p string, c *CanaryStrategy) {
	if len(c.SetWeight) == 0 {
		v.add(p+".setWeight", "at least one step is required: the steps that route FERRY_CANARY_WEIGHT percent of traffic to the release")
	}
	if len(c.Phases) == 0 {
		v.add(p+".phases", "at least one phase is required")
	}
	for k, ph := range c.Phases {
		q := fmt.Sprintf("%s.phases[%d]", p, k)
		if ph.Weight < 0 || ph.Weight > 100 {
			v.add(q+".weight", "must be between 0 and 100, got %d", ph.Weight)
		}
		if ph.Pause != "" && ph.Pause != "manual" {
			if d, err := ParseDuration(ph.Pause); err != nil || d <= 0 {
				v.add(q+".pause", "want a positive duration (5m, 1h) or manual, got %q", ph.Pause)
			}
		}
	}
}

// step checks the step at p, which is in the list called list ("steps",
// "verify" or "gates.preflight").
func (v *validator) step(p, list string, st Step) {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"exec", st.Exec != nil}, {"http", st.HTTP != nil}, {"prometheus", st.Prometheus != nil}, {"web", st.Web != nil}, {"canary", st.Canary != nil}} {
		if k.set {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		v.add(p, "one of exec, http, prometheus, web or canary is required")
	case 1:
	default:
		v.add(p, "%s are mutually exclusive: set exactly one of exec, http, prometheus, web or canary",
			strings.Join(kinds[:len(kinds)-1], ", ")+" and "+kinds[len(kinds)-1])
	}
	if st.Exec != nil {
		v.exec(p+".exec", st.Exec)
	}
	if st.HTTP != nil {
		v.http(p+".http", st.HTTP)
	}
	for _, k := range []struct {
		name string
		set  bool
	}{{"prometheus", st.Prometheus != nil}, {"web", st.Web != nil}} {
		if k.set && list == "steps" {
			v.add(p+"."+k.name, "a %s check measures and changes nothing: put it under verify or gates.preflight; a deploy step must act (exec or http)", k.name)
		}
	}
	if st.Prometheus != nil {
		v.prometheus(p+".prometheus", st.Prometheus)
	}
	if st.Web != nil {
		v.web(p+".web", st.Web)
	}
	if st.Canary != nil {
		if list != "verify" {
			v.add(p+".canary", "a canary check judges a deployed canary against its baseline: put it under verify or a canary phase's analysis")
		}
		v.canary(p+".canary", st.Canary)
	}
	if st.Retries < 0 || st.Retries > maxRetries {
		v.add(p+".retries", "must be between 0 and %d, got %d", maxRetries, st.Retries)
	}
	if st.Backoff < 0 {
		v.add(p+".backoff", "must not be negative, got %s", st.Backoff.D())
	}
	seen := map[string]bool{}
	for j, name := range st.SecretEnv {
		q := fmt.Sprintf("%s.secretEnv[%d]", p, j)
		if !v.envVar(q, name) {
			continue
		}
		if seen[name] {
			v.add(q, "duplicate entry %q", name)
		}
		seen[name] = true
		if st.Exec != nil {
			if _, clash := st.Exec.Env[name]; clash {
				v.add(q, "%q is also set in exec.env: a variable is either a secret or not", name)
			}
		}
	}
}

func (v *validator) exec(p string, x *Exec) {
	switch {
	case x.Run != "" && x.Command != nil:
		v.add(p, "run and command are mutually exclusive: set exactly one")
	case x.Run == "" && x.Command == nil:
		v.add(p, "one of run or command is required")
	case x.Command != nil && len(x.Command) == 0:
		v.add(p+".command", "must not be empty")
	case x.Command != nil && x.Command[0] == "":
		v.add(p+".command[0]", "the program to run must not be empty")
	}
	keys := make([]string, 0, len(x.Env))
	for k := range x.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v.envVar(p+".env"+fieldKey(k), k)
	}
	if x.Timeout < 0 {
		v.add(p+".timeout", "must not be negative, got %s", x.Timeout.D())
	}
}

// envVar checks the name of an environment variable a step receives and
// reports whether it is valid.
func (v *validator) envVar(path, name string) bool {
	switch {
	case !envVarPattern.MatchString(name):
		v.add(path, "invalid environment variable name %q: use letters, digits and '_', not starting with a digit", name)
		return false
	case strings.HasPrefix(strings.ToUpper(name), reservedEnvPrefix):
		v.add(path, "environment variable %q is reserved: names starting with %s are set by Ferry", name, reservedEnvPrefix)
		return false
	}
	return true
}

func (v *validator) http(p string, h *HTTP) {
	if h.URL == "" {
		v.add(p+".url", "required")
	} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(p+".url", "invalid URL %q: must be an absolute http or https URL", h.URL)
	}
	if h.Method != "" && !slices.Contains(httpMethods, h.Method) {
		v.add(p+".method", "unknown method %q: use one of %s", h.Method, strings.Join(httpMethods, ", "))
	}
	keys := make([]string, 0, len(h.Headers))
	for k := range h.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		q := p + ".headers" + fieldKey(k)
		switch {
		case !headerPattern.MatchString(k):
			v.add(q, "invalid header name %q", k)
		case strings.ContainsAny(h.Headers[k], "\r\n\x00"):
			v.add(q, "header value must not contain CR, LF or NUL")
		}
	}
	if h.ExpectStatus != 0 && (h.ExpectStatus < 100 || h.ExpectStatus > 599) {
		v.add(p+".expectStatus", "must be 0 (any 2xx) or between 100 and 599, got %d", h.ExpectStatus)
	}
	if h.Timeout < 0 {
		v.add(p+".timeout", "must not be negative, got %s", h.Timeout.D())
	}
}

// On-timeout actions of approvals.
const (
	onTimeoutReject   = "reject"
	onTimeoutEscalate = "escalate"
)

// exprEnv is the CEL environment policies and approval counts are checked in.
var exprEnv = sync.OnceValues(expr.NewEnv)

func (v *validator) gates(p string, g *Gates) {
	if g.Soak < 0 {
		v.add(p+".soak", "must not be negative, got %s", g.Soak.D())
	}
	seen := map[string]string{}
	for j, pol := range g.Policies {
		q := fmt.Sprintf("%s.policies[%d]", p, j)
		if v.name(q+".name", pol.Name) {
			if first, dup := seen[pol.Name]; dup {
				v.add(q+".name", "duplicate policy %q (first defined %s)", pol.Name, v.where(first))
			} else {
				seen[pol.Name] = q + ".name"
			}
		}
		if pol.Expr == "" {
			v.add(q+".expr", "required")
		} else {
			v.expr(q+".expr", pol.Expr, expr.Bool)
		}
	}
	if g.Windows != nil {
		for _, prob := range g.Windows.Validate() {
			q := p + ".windows"
			if prob.Field != "" {
				q += "." + prob.Field
			}
			v.add(q, "%s", prob.Message)
		}
	}
	if g.Approvals != nil {
		v.approvals(p+".approvals", g.Approvals)
	}
	if g.ErrorBudget != nil {
		v.errorBudget(p+".errorBudget", g.ErrorBudget)
	}
	for j, r := range g.ExpediteRoles {
		if _, err := auth.ParseRole(r); err != nil {
			v.add(fmt.Sprintf("%s.expediteRoles[%d]", p, j), "%v", err)
		}
	}
	if g.OverrideRole != "" {
		if _, err := auth.ParseRole(g.OverrideRole); err != nil {
			v.add(p+".overrideRole", "%v", err)
		}
	}
}

func (v *validator) approvals(p string, a *Approvals) {
	switch n, err := strconv.Atoi(strings.TrimSpace(a.Required)); {
	case strings.TrimSpace(a.Required) == "":
		v.add(p+".required", "required: a number of approvals or a CEL expression giving one")
	case err == nil && n < 0:
		v.add(p+".required", "must not be negative, got %d", n)
	case err != nil:
		v.expr(p+".required", a.Required, expr.Int)
	}
	seen := map[string]bool{}
	for j, from := range a.From {
		q := fmt.Sprintf("%s.from[%d]", p, j)
		kind, name, _ := strings.Cut(from, ":")
		switch {
		case kind == "role":
			if _, err := auth.ParseRole(name); err != nil {
				v.add(q, "%v", err)
				continue
			}
		case kind == "user":
			if name == "" || strings.TrimSpace(name) != name {
				v.add(q, "invalid user %q: write user:NAME", from)
				continue
			}
		default:
			v.add(q, "invalid approver %q: write role:NAME or user:NAME", from)
			continue
		}
		if seen[from] {
			v.add(q, "duplicate entry %q", from)
		}
		seen[from] = true
	}
	if a.ExpiresAfter < 0 {
		v.add(p+".expiresAfter", "must not be negative, got %s", a.ExpiresAfter.D())
	}
	if a.Timeout < 0 {
		v.add(p+".timeout", "must not be negative, got %s", a.Timeout.D())
	}
	switch a.OnTimeout {
	case "", onTimeoutReject:
	case onTimeoutEscalate:
		if a.Escalate == nil {
			v.add(p+".onTimeout", "escalate needs escalate.webhook to post to")
		}
	default:
		v.add(p+".onTimeout", "unknown action %q: use %s or %s", a.OnTimeout, onTimeoutReject, onTimeoutEscalate)
	}
	if a.Escalate != nil {
		q := p + ".escalate"
		if a.Escalate.After < 0 {
			v.add(q+".after", "must not be negative, got %s", a.Escalate.After.D())
		}
		if a.Escalate.Webhook == "" {
			v.add(q+".webhook", "required")
		} else if u, err := url.Parse(a.Escalate.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(q+".webhook", "invalid URL %q: must be an absolute http or https URL", a.Escalate.Webhook)
		}
	}
}

// expr checks that the CEL expression src at path compiles to want.
func (v *validator) expr(path, src string, want expr.Kind) {
	env, err := exprEnv()
	if err != nil {
		v.add(path, "cannot check expression: %v", err)
		return
	}
	_, err = env.Compile(src, want)
	if err == nil {
		return
	}
	var cerr *expr.Error
	if !errors.As(err, &cerr) {
		v.add(path, "%v", err)
		return
	}
	v.addIn(path, "expression", cerr.Line, cerr.Column, cerr.Message)
}

// addIn adds a problem found at line and column (1-based) within the
// string value at path, such as a compile error in a CEL expression, where
// it is in the file: the position within the value is added to where the
// value's characters start. When the value's characters do not map one to
// one to the source (a folded or multi-line scalar, or one with escape
// sequences), the problem is reported at the start of the value and its
// message gives the position within the value, which is called what.
func (v *validator) addIn(path, what string, line, column int, message string) {
	tp, known := v.text[path]
	switch {
	case known && tp.exact && tp.block:
		v.addAt(path, tp.line+line-1, tp.column+column-1, "%s", message)
	case known && tp.exact && line == 1:
		v.addAt(path, tp.line, tp.column+column-1, "%s", message)
	case known:
		v.addAt(path, tp.line, tp.column, "%s (at %d:%d in the %s)", message, line, column, what)
	default:
		v.add(path, "%s (at %d:%d in the %s)", message, line, column, what)
	}
}

// noDataValues are the values of Measure.NoData.
var noDataValues = []string{"fail", "inconclusive", "pass", "wait"}

func (v *validator) prometheus(p string, c *PrometheusCheck) {
	if c.Address == "" {
		v.add(p+".address", "required")
	} else if !absoluteHTTP(c.Address) {
		v.add(p+".address", "invalid URL %q: must be an absolute http or https URL", c.Address)
	}
	if strings.TrimSpace(c.Query) == "" {
		v.add(p+".query", "required")
	} else {
		v.interpolate(p+".query", c.Query)
	}
	if c.Timeout < 0 {
		v.add(p+".timeout", "must not be negative, got %s", c.Timeout.D())
	}
	v.measure(p, c.Measure)
}

func (v *validator) web(p string, c *WebCheck) {
	if c.URL == "" {
		v.add(p+".url", "required")
	} else if u, ok := v.interpolate(p+".url", c.URL); ok && !absoluteHTTP(u) {
		v.add(p+".url", "invalid URL %q: must be an absolute http or https URL", c.URL)
	}
	if c.Method != "" && !slices.Contains(httpMethods, c.Method) {
		v.add(p+".method", "unknown method %q: use one of %s", c.Method, strings.Join(httpMethods, ", "))
	}
	keys := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		q := p + ".headers" + fieldKey(k)
		switch {
		case !headerPattern.MatchString(k):
			v.add(q, "invalid header name %q", k)
		case strings.ContainsAny(c.Headers[k], "\r\n\x00"):
			v.add(q, "header value must not contain CR, LF or NUL")
		default:
			v.interpolate(q, c.Headers[k])
		}
	}
	if c.Body != "" {
		v.interpolate(p+".body", c.Body)
	}
	if c.Timeout < 0 {
		v.add(p+".timeout", "must not be negative, got %s", c.Timeout.D())
	}
	v.measure(p, c.Measure)
}

// measure checks the measuring fields of the metric check at p.
func (v *validator) measure(p string, m Measure) {
	if m.Interval < 0 {
		v.add(p+".interval", "must not be negative, got %s", m.Interval.D())
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"count", m.Count}, {"failureLimit", m.FailureLimit}, {"inconclusiveLimit", m.InconclusiveLimit}, {"consecutiveErrorLimit", m.ConsecutiveErrorLimit}} {
		if f.n < 0 {
			v.add(p+"."+f.name, "must not be negative, got %d", f.n)
		}
	}
	if m.SuccessCondition == "" && m.FailureCondition == "" {
		v.add(p, "at least one of successCondition or failureCondition is required")
	}
	for _, c := range []struct{ name, src string }{{"successCondition", m.SuccessCondition}, {"failureCondition", m.FailureCondition}} {
		if c.src != "" {
			v.condition(p+"."+c.name, c.src)
		}
	}
	if m.NoData != "" && !slices.Contains(noDataValues, m.NoData) {
		v.add(p+".noData", "unknown value %q: use one of %s", m.NoData, strings.Join(noDataValues, ", "))
	}
}

// condition checks that the condition src at path compiles.
func (v *validator) condition(path, src string) {
	_, err := analysis.CompileCondition(src)
	if err == nil {
		return
	}
	var cerr *analysis.Error
	if !errors.As(err, &cerr) {
		v.add(path, "%v", err)
		return
	}
	v.addIn(path, "condition", cerr.Line, cerr.Column, cerr.Message)
}

// interpolate checks that every ${...} placeholder in the template at path
// is one a metric check knows, and returns the template with each replaced
// by "x".
func (v *validator) interpolate(path, template string) (string, bool) {
	vars := map[string]string{"environment": "x", "pipeline": "x", "release": "x", "promotion": "x"}
	// Every artifact is assumed to exist: which ones a release has is
	// known only when it is created. Interpolate rejects malformed names.
	for rest := template; ; {
		i := strings.Index(rest, "${")
		if i < 0 {
			break
		}
		rest = rest[i+2:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			break
		}
		if name := strings.TrimSpace(rest[:end]); strings.HasPrefix(name, "artifact.") {
			vars[name] = "x"
		}
		rest = rest[end+1:]
	}
	out, err := analysis.Interpolate(template, vars)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "interpolate: ")
		if rest, ok := strings.CutPrefix(msg, "no value for "); ok {
			msg = "unknown variable " + rest + " (${baseline} is known only in canary checks)"
		}
		v.add(path, "%s", msg)
		return "", false
	}
	return out, true
}

// absoluteHTTP reports whether s is an absolute http or https URL with a host.
func absoluteHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// canaryVars are the placeholders a canary query may use.
var canaryVars = map[string]string{"environment": "x", "pipeline": "x", "release": "x", "baseline": "x", "promotion": "x"}

// canaryDirections are the values of CanaryMetric.Direction.
var canaryDirections = []string{"increase", "decrease", "either"}

func (v *validator) canary(p string, c *CanaryCheck) {
	if c.Prometheus == "" {
		v.add(p+".prometheus", "required")
	} else if !absoluteHTTP(c.Prometheus) {
		v.add(p+".prometheus", "invalid URL %q: must be an absolute http or https URL", c.Prometheus)
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"window", c.Window}, {"step", c.Step}, {"delay", c.Delay}} {
		if f.d < 0 {
			v.add(p+"."+f.name, "must not be negative, got %s", f.d.D())
		}
	}
	window, step := c.Window.D(), c.Step.D()
	if window == 0 {
		window = 10 * time.Minute
	}
	if step == 0 {
		step = 30 * time.Second
	}
	if c.Window >= 0 && c.Step >= 0 && step >= window {
		at := p + ".step"
		if c.Step == 0 {
			at = p + ".window"
		}
		v.add(at, "step (%s) must be shorter than window (%s)", step, window)
	}
	if len(c.Metrics) == 0 {
		v.add(p+".metrics", "at least one metric is required")
	}
	seen := map[string]string{}
	for i, m := range c.Metrics {
		q := fmt.Sprintf("%s.metrics[%d]", p, i)
		switch {
		case strings.TrimSpace(m.Name) == "":
			v.add(q+".name", "required")
		case seen[m.Name] != "":
			v.add(q+".name", "duplicate metric %q (first defined %s)", m.Name, v.where(seen[m.Name]))
		default:
			seen[m.Name] = q + ".name"
		}
		for _, f := range []struct{ field, query string }{{"baseline", m.Baseline}, {"canary", m.Canary}} {
			path := q + "." + f.field
			if strings.TrimSpace(f.query) == "" {
				v.add(path, "required")
				continue
			}
			if _, err := analysis.Interpolate(f.query, canaryVars); err != nil {
				msg := strings.TrimPrefix(err.Error(), "interpolate: ")
				if rest, ok := strings.CutPrefix(msg, "no value for "); ok {
					msg = "unknown variable " + rest
				}
				if i := strings.Index(msg, " (known:"); i >= 0 {
					msg = msg[:i]
				}
				if strings.HasPrefix(msg, "unknown variable") {
					msg += " (a canary query may use ${environment}, ${pipeline}, ${release}, ${baseline} and ${promotion}; $${ writes ${)"
				}
				v.add(path, "%s", msg)
			}
		}
		if m.Direction != "" && !slices.Contains(canaryDirections, m.Direction) {
			v.add(q+".direction", "unknown value %q: use one of %s", m.Direction, strings.Join(canaryDirections, ", "))
		}
		if !(m.Weight >= 0) || math.IsInf(m.Weight, 1) {
			v.add(q+".weight", "must be a finite number ≥ 0, got %v", m.Weight)
		}
		if !(m.EffectSize >= 0) || math.IsInf(m.EffectSize, 1) {
			v.add(q+".effectSize", "must be a finite number ≥ 0, got %v", m.EffectSize)
		}
	}
	pass, marginal := c.PassThreshold, c.MarginalThreshold
	for _, f := range []struct {
		name string
		x    float64
	}{{"passThreshold", pass}, {"marginalThreshold", marginal}} {
		if !(f.x >= 0 && f.x <= 100) {
			v.add(p+"."+f.name, "must be a score from 0 to 100, got %v", f.x)
		}
	}
	if pass == 0 {
		pass = 95
	}
	if marginal == 0 {
		marginal = 75
	}
	if pass >= 0 && pass <= 100 && marginal >= 0 && marginal <= 100 && marginal > pass {
		at := p + ".marginalThreshold"
		if c.MarginalThreshold == 0 {
			at = p + ".passThreshold"
		}
		v.add(at, "marginalThreshold (%v) must not be above passThreshold (%v)", marginal, pass)
	}
	if c.Alpha != 0 && !(c.Alpha > 0 && c.Alpha < 1) {
		v.add(p+".alpha", "must be between 0 and 1 (exclusive), got %v", c.Alpha)
	}
}

// budgetVars are the placeholders an error-budget query may use.
var budgetVars = map[string]string{"environment": "x", "pipeline": "x"}

func (v *validator) errorBudget(p string, b *ErrorBudget) {
	before := len(v.problems)
	defer func() {
		// The checks below mirror burn.Spec.Validate; should it ever find
		// more, its findings are reported rather than lost.
		if len(v.problems) == before {
			if err := burnSpec(b).Validate(); err != nil {
				v.add(p, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
			}
		}
	}()
	if b.Prometheus == "" {
		v.add(p+".prometheus", "required")
	} else if !absoluteHTTP(b.Prometheus) {
		v.add(p+".prometheus", "invalid URL %q: must be an absolute http or https URL", b.Prometheus)
	}
	for _, q := range []struct{ field, query string }{{"errors", b.Errors}, {"total", b.Total}} {
		path := p + "." + q.field
		switch {
		case strings.TrimSpace(q.query) == "":
			v.add(path, "required")
			continue
		case !strings.Contains(q.query, burn.WindowVar):
			v.add(path, "must contain %s, which stands for each window of the rules, as in rate(http_requests_total[%s])", burn.WindowVar, burn.WindowVar)
			continue
		}
		if _, err := analysis.Interpolate(burn.Query(q.query, time.Minute), budgetVars); err != nil {
			msg := strings.TrimPrefix(err.Error(), "interpolate: ")
			if rest, ok := strings.CutPrefix(msg, "no value for "); ok {
				msg = "unknown variable " + rest
			}
			if i := strings.Index(msg, " (known:"); i >= 0 {
				msg = msg[:i]
			}
			if strings.HasPrefix(msg, "unknown variable") {
				msg += " (an error-budget query may use ${environment} and ${pipeline}; $${ writes ${)"
			}
			v.add(path, "%s", msg)
		}
	}
	if !(b.Objective > 0 && b.Objective < 100) {
		v.add(p+".objective", "must be above 0 and below 100 (percent, such as 99.9), got %v", b.Objective)
	}
	if b.Period < 0 {
		v.add(p+".period", "must not be negative, got %s", b.Period.D())
	}
	for i, r := range b.Rules {
		q := fmt.Sprintf("%s.rules[%d]", p, i)
		for _, w := range []struct {
			field string
			d     Duration
		}{{"long", r.Long}, {"short", r.Short}} {
			switch {
			case w.d <= 0:
				v.add(q+"."+w.field, "must be positive, got %s", w.d.D())
			case w.d.D()%time.Millisecond != 0:
				v.add(q+"."+w.field, "must be a whole number of milliseconds, got %s", w.d.D())
			}
		}
		if r.Short > 0 && r.Long > 0 && r.Short >= r.Long {
			v.add(q+".short", "must be shorter than long (%s), got %s", r.Long.D(), r.Short.D())
		}
		if !(r.Factor > 0) || math.IsInf(r.Factor, 1) {
			v.add(q+".factor", "must be positive, got %v", r.Factor)
		}
	}
}

// burnSpec returns the error-budget gate as the burn package evaluates it.
func burnSpec(b *ErrorBudget) burn.Spec {
	s := burn.Spec{Errors: b.Errors, Total: b.Total, Objective: b.Objective, Period: b.Period.D()}
	for _, r := range b.Rules {
		s.Rules = append(s.Rules, burn.Rule{Long: r.Long.D(), Short: r.Short.D(), Factor: r.Factor})
	}
	return s
}
