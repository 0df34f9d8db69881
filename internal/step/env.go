package step

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
)

// The variables Ferry hands to every step, besides the artifact variables
// FERRY_ARTIFACT_<NAME>_URI and FERRY_ARTIFACT_<NAME>_DIGEST.
const (
	EnvPromotionID    = "FERRY_PROMOTION_ID"
	EnvPipeline       = "FERRY_PIPELINE"
	EnvEnvironment    = "FERRY_ENVIRONMENT"
	EnvRelease        = "FERRY_RELEASE"
	EnvRollback       = "FERRY_ROLLBACK"
	EnvStep           = "FERRY_STEP"
	EnvPhase          = "FERRY_PHASE"
	EnvAttempt        = "FERRY_ATTEMPT"
	EnvIdempotencyKey = "FERRY_IDEMPOTENCY_KEY"
	EnvArtifacts      = "FERRY_ARTIFACTS"
	EnvTraceParent    = "TRACEPARENT"
	EnvCanaryWeight   = "FERRY_CANARY_WEIGHT"
)

// MissingSecretError reports a variable named in a step's secretEnv that the
// server's environment does not define.
type MissingSecretError struct {
	// Step is the step's name.
	Step string
	// Name is the missing variable.
	Name string
}

func (e *MissingSecretError) Error() string {
	return fmt.Sprintf("step %q: secret variable %s is not set in the server's environment", e.Step, e.Name)
}

// Environ returns the environment of one attempt of a step, as "NAME=value"
// entries. It is made of, in increasing order of precedence:
//
//  1. base, the server's environment (the caller passes os.Environ());
//  2. the step's exec.env, in order of name;
//  3. each variable named in the step's secretEnv, with its value from base;
//  4. the FERRY_* variables describing the attempt (see the Env constants),
//     then FERRY_ARTIFACT_<NAME>_URI and FERRY_ARTIFACT_<NAME>_DIGEST for
//     every artifact of the release, and TRACEPARENT when req.TraceParent is set.
//
// A later entry replaces an earlier one with the same name, so each name
// appears once. In artifact variables NAME is the artifact's name upper-cased
// with every character other than A-Z and 0-9 replaced by '_'; when two
// artifact names map to the same NAME the one sorting last wins, and
// FERRY_ARTIFACTS (a JSON array of {"name","uri","digest"}) stays exact.
//
// Environ returns a *MissingSecretError when a secretEnv variable is not in base.
func Environ(req Request, base []string) ([]string, error) {
	var e environ
	for _, kv := range base {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		e.set(name, value)
	}
	if req.Step.Exec != nil {
		names := make([]string, 0, len(req.Step.Exec.Env))
		for name := range req.Step.Exec.Env {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			e.set(name, req.Step.Exec.Env[name])
		}
	}
	for _, name := range req.Step.SecretEnv {
		value, ok := lookup(base, name)
		if !ok {
			return nil, &MissingSecretError{Step: req.Step.Name, Name: name}
		}
		e.set(name, value)
	}

	rollback := "0"
	if req.Rollback {
		rollback = "1"
	}
	artifacts := req.Release.Artifacts
	if artifacts == nil {
		artifacts = []release.Artifact{}
	}
	js, err := json.Marshal(artifacts)
	if err != nil {
		return nil, fmt.Errorf("encode artifacts: %w", err)
	}
	e.set(EnvPromotionID, req.PromotionID)
	e.set(EnvPipeline, req.Pipeline)
	e.set(EnvEnvironment, req.Environment)
	e.set(EnvRelease, req.Release.Version)
	e.set(EnvRollback, rollback)
	e.set(EnvStep, req.Step.Name)
	e.set(EnvPhase, string(req.Phase))
	e.set(EnvAttempt, strconv.Itoa(req.Attempt))
	e.set(EnvIdempotencyKey, req.IdempotencyKey)
	e.set(EnvArtifacts, string(js))
	for _, a := range artifacts {
		prefix := "FERRY_ARTIFACT_" + ArtifactEnvName(a.Name)
		e.set(prefix+"_URI", a.URI)
		e.set(prefix+"_DIGEST", a.Digest)
	}
	if req.CanaryWeight != nil {
		e.set(EnvCanaryWeight, strconv.Itoa(*req.CanaryWeight))
	}
	if req.TraceParent != "" {
		e.set(EnvTraceParent, req.TraceParent)
	}
	return e.list, nil
}

// ArtifactEnvName returns the NAME part of an artifact's variables: name
// upper-cased, with every character other than A-Z and 0-9 replaced by '_'
// ("api-server.v2" becomes "API_SERVER_V2").
func ArtifactEnvName(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// SecretValues returns the values of the variables step names in secretEnv,
// taken from base, that a step's output must not show. Empty and missing
// values are left out; each value appears once.
func SecretValues(step pipeline.Step, base []string) []string {
	var out []string
	for _, name := range step.SecretEnv {
		v, ok := lookup(base, name)
		if !ok || v == "" || slices.Contains(out, v) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// IdempotencyKey returns the key handed to every attempt of one step of one
// promotion as FERRY_IDEMPOTENCY_KEY: 64 hex digits of a sha256 over the
// promotion ID, the phase, the step's index in its phase and its name. The
// same arguments always give the same key.
func IdempotencyKey(promotionID string, phase promotion.Phase, index int, stepName string) string {
	h := sha256.New()
	// Length-prefixed fields, so that no two argument lists hash the same bytes.
	for _, f := range []string{"ferry-step-v1", promotionID, string(phase), strconv.Itoa(index), stepName} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// lookup returns the value of the last entry called name in env, as the
// environment built from env would hold it.
func lookup(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// environ is an ordered set of variables where setting a name again
// replaces its value in place.
type environ struct {
	list  []string
	index map[string]int
}

func (e *environ) set(name, value string) {
	if e.index == nil {
		e.index = map[string]int{}
	}
	kv := name + "=" + value
	if i, ok := e.index[name]; ok {
		e.list[i] = kv
		return
	}
	e.index[name] = len(e.list)
	e.list = append(e.list, kv)
}
