package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ferry-dev/ferry/internal/alert"
	"github.com/ferry-dev/ferry/internal/audit"
	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/engine"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/release"
	"github.com/ferry-dev/ferry/internal/stats"
	"github.com/ferry-dev/ferry/internal/view"
)

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// servedDocument fetches the OpenAPI document from the handler.
func servedDocument(t *testing.T, b *testBundle) map[string]any {
	t.Helper()
	rec := b.do(t, http.MethodGet, "/api/v1/openapi.json", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("the document is not valid JSON: %v", err)
	}
	return doc
}

// operations returns "METHOD path" of every operation in doc.
func operations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatalf("document has no paths")
	}
	out := map[string]map[string]any{}
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			out[strings.ToUpper(method)+" "+path] = op.(map[string]any)
		}
	}
	return out
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	b := setup(t, func(c *Config) { c.Version = "1.2.3" })
	doc := servedDocument(t, b)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Errorf("openapi = %v, want 3.x", doc["openapi"])
	}
	info, ok := doc["info"].(map[string]any)
	if !ok || info["title"] == "" || info["version"] != "1.2.3" {
		t.Errorf("info = %v", doc["info"])
	}
	ids := map[string]string{}
	for key, op := range operations(t, doc) {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", key)
		}
		if other, dup := ids[id]; dup {
			t.Errorf("operationId %q used by %s and %s", id, key, other)
		}
		ids[id] = key
		if _, ok := op["responses"].(map[string]any); !ok {
			t.Errorf("%s has no responses", key)
		}
	}
}

func TestOpenAPIDescribesEveryRouteAndNoOther(t *testing.T) {
	b := setup(t)
	documented := operations(t, servedDocument(t, b))
	var served []string
	for _, rt := range newServer(Config{Service: &fakeService{}, DisableAuth: true}).routes() {
		served = append(served, rt.method+" "+rt.path)
	}
	for _, key := range served {
		if _, ok := documented[key]; !ok {
			t.Errorf("route %s is not in the OpenAPI document", key)
		}
	}
	for key := range documented {
		if !slices.Contains(served, key) {
			t.Errorf("the OpenAPI document describes %s, which is not in the route table", key)
		}
	}
}

func TestOpenAPIOperationsReachTheirHandlers(t *testing.T) {
	b := setup(t)
	wildcard := regexp.MustCompile(`\{[^}]+\}`)
	for key, op := range operations(t, servedDocument(t, b)) {
		method, path, _ := strings.Cut(key, " ")
		target := wildcard.ReplaceAllString(path, "x")
		body := ""
		if _, ok := op["requestBody"]; ok {
			body = "{}"
		}
		rec := b.do(t, method, target, body)
		if rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s (%s %s): 405", key, method, target)
		}
		if rec.Code == http.StatusNotFound {
			var p problem
			_ = json.Unmarshal(rec.Body.Bytes(), &p)
			if p.Code == codeNoRoute {
				t.Errorf("%s (%s %s): no route", key, method, target)
			}
		}
	}
}

func TestOpenAPIPathParametersMatchPaths(t *testing.T) {
	b := setup(t)
	doc := servedDocument(t, b)
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	for key, op := range operations(t, doc) {
		_, path, _ := strings.Cut(key, " ")
		var want []string
		for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		var got []string
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			param := resolve(t, doc, p.(map[string]any))
			if param["in"] == "path" {
				got = append(got, param["name"].(string))
				if param["required"] != true {
					t.Errorf("%s: path parameter %v is not required", key, param["name"])
				}
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("%s: path parameters %v, want %v", key, got, want)
		}
	}
}

func TestOpenAPIReferencesResolve(t *testing.T) {
	b := setup(t)
	doc := servedDocument(t, b)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["$ref"]; ok {
				resolve(t, doc, v)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

// resolve follows v's $ref within doc, if it has one.
func resolve(t *testing.T, doc map[string]any, v map[string]any) map[string]any {
	t.Helper()
	ref, ok := v["$ref"].(string)
	if !ok {
		return v
	}
	var cur any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("$ref %s does not resolve", ref)
		}
		if cur, ok = m[part]; !ok {
			t.Fatalf("$ref %s does not resolve: no %q", ref, part)
		}
	}
	out, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("$ref %s is not an object", ref)
	}
	return out
}

// TestOpenAPISchemasMatchGoTypes checks that each component schema has the
// JSON fields of the Go type the API encodes or decodes, so that the two
// cannot drift apart. For response types, the fields always present (no
// omitempty) must be the required ones.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	types := map[string]struct {
		v       any
		request bool
	}{
		"Problem":              {problem{}, false},
		"ValidationError":      {pipeline.Problem{}, false},
		"ApplyRequest":         {applyRequest{}, true},
		"ApplyResult":          {view.ApplyResult{}, false},
		"PipelineSummary":      {view.Pipeline{}, false},
		"Revision":             {pipeline.Revision{}, false},
		"PipelineSpec":         {pipeline.Spec{}, false},
		"EnvironmentSpec":      {pipeline.Environment{}, false},
		"Status":               {view.Status{}, false},
		"EnvironmentStatus":    {view.Environment{}, false},
		"ReleaseRef":           {view.ReleaseRef{}, false},
		"PromotionRef":         {view.PromotionRef{}, false},
		"Artifact":             {release.Artifact{}, true},
		"CreateReleaseRequest": {createReleaseRequest{}, true},
		"Release":              {release.Release{}, false},
		"PromoteRequest":       {engine.PromoteRequest{}, true},
		"RollbackRequest":      {engine.RollbackRequest{}, true},
		"AbortRequest":         {abortRequest{}, true},
		"Promotion":            {view.Promotion{}, false},
		"Step":                 {view.Step{}, false},
		"Transition":           {view.Transition{}, false},
		"Notification":         {view.Notification{}, false},
		"NotificationSpec":     {pipeline.Notification{}, false},
		"LogChunk":             {view.LogChunk{}, false},
		"AuditEvent":           {audit.Event{}, false},
		"AuditHead":            {audit.Head{}, false},
		"AuditCheckpoint":      {audit.Checkpoint{}, false},
		"AuditBreak":           {audit.Break{}, false},
		"AuditReport":          {audit.Report{}, false},
		"AuditPublicKey":       {publicKeyInfo{}, false},
		"Replica":              {view.Replica{}, false},
		"CommentRequest":       {commentRequest{}, true},
		"GateEvaluation":       {promotion.GateEvaluation{}, false},
		"Plan":                 {view.Plan{}, false},
		"Alert":                {view.Alert{}, false},
		"AlertReport":          {view.AlertReport{}, false},
		"AlertmanagerMessage":  {alert.Message{}, false},
		"AlertTarget":          {view.AlertTarget{}, false},
		"Grant":                {auth.Grant{}, true},
		"CreateTokenRequest":   {createTokenRequest{}, true},
		"Token":                {tokenInfo{}, false},
		"CreatedToken":         {createdToken{}, false},
		"Stats":                {stats.Report{}, false},
		"StatsBucket":          {stats.Bucket{}, false},
		"AuditGap":             {stats.AuditGap{}, false},
	}
	schemas := openAPIDocument("test")["components"].(object)["schemas"].(object)
	for name, s := range schemas {
		schema := s.(object)
		if schema["type"] != "object" {
			continue
		}
		tt, ok := types[name]
		if !ok {
			t.Errorf("schema %s: no Go type to check it against; add it to this test", name)
			continue
		}
		all, always := jsonFields(reflect.TypeOf(tt.v))
		var props []string
		for p := range schema["properties"].(object) {
			props = append(props, p)
		}
		sort.Strings(props)
		if !slices.Equal(props, all) {
			t.Errorf("schema %s has properties %v; the Go type has %v", name, props, all)
		}
		var required []string
		if r, ok := schema["required"].([]any); ok {
			for _, x := range r {
				required = append(required, x.(string))
			}
		}
		sort.Strings(required)
		for _, r := range required {
			if !slices.Contains(all, r) {
				t.Errorf("schema %s requires unknown property %q", name, r)
			}
		}
		if !tt.request && !slices.Equal(required, always) {
			t.Errorf("schema %s requires %v; the Go type always has %v", name, required, always)
		}
		if tt.request && schema["additionalProperties"] != false {
			t.Errorf("request schema %s must refuse additional properties, as the API does", name)
		}
	}
}

// jsonFields returns the sorted JSON names of t's fields, and those without
// omitempty; the fields of an embedded struct without a JSON name count as
// t's own, as encoding/json flattens them.
func jsonFields(t reflect.Type) (all, always []string) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			a, w := jsonFields(f.Type)
			all, always = append(all, a...), append(always, w...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(opts, "omitempty") {
			always = append(always, name)
		}
	}
	sort.Strings(all)
	sort.Strings(always)
	return all, always
}
