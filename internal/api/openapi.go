package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/ferry-dev/ferry/internal/auth"
	"github.com/ferry-dev/ferry/internal/pipeline"
	"github.com/ferry-dev/ferry/internal/promotion"
)

// object is a JSON object of the OpenAPI document.
type object = map[string]any

// openAPIDocument returns the OpenAPI 3.1 description of every route in the
// route table. openapi_test.go checks that the two agree.
func openAPIDocument(version string) object {
	return object{
		"openapi": "3.1.0",
		"info": object{
			"title":   "Ferry API",
			"version": version,
			"description": "Ferry moves immutable releases through a pipeline of environments. " +
				"Errors are RFC 9457 problem details (application/problem+json). Every POST accepts an " +
				"Idempotency-Key header; a repeated request with the same key replays the first response. " +
				"Every route but /healthz and /readyz needs an API token sent as \"Authorization: Bearer <token>\": " +
				"a missing, unknown, expired or revoked token gets 401, and a token without the role the request needs " +
				"on its pipeline or environment gets 403 with a detail naming that role and scope.",
		},
		"security": []any{object{"bearer": []any{}}},
		"paths": object{
			"/healthz": object{
				"get": operation{id: "health", summary: "Report that the process serves HTTP",
					tag: "server", text: true, public: true}.build(),
			},
			"/readyz": object{
				"get": operation{id: "ready", summary: "Report whether the server is ready to serve",
					tag: "server", text: true, public: true, errors: []int{503}}.build(),
			},
			"/metrics": object{
				"get": operation{id: "metrics", summary: "Ferry's own metrics, for Prometheus to scrape", tag: "server",
					description: "The Prometheus text exposition format (text/plain; version=0.0.4). Needs a token with any role on the global scope " +
						"(Prometheus sends it with authorization.credentials_file). docs/operations.md lists the metrics.",
					ok: object{"200": object{
						"description": "The metrics.",
						"content":     object{"text/plain": object{"schema": object{"type": "string"}}},
					}}}.build(),
			},
			"/api/v1/openapi.json": object{
				"get": operation{id: "openapi", summary: "This OpenAPI document", tag: "server",
					description: "Any valid token may read it, whatever its grants.",
					ok:          object{"200": jsonResponse("The OpenAPI document.", object{"type": "object"})}}.build(),
			},
			"/api/v1/pipelines": object{
				"post": operation{id: "applyPipeline", tag: "pipelines",
					summary: "Apply a pipeline's YAML",
					description: "Parses and validates the YAML and stores it as the pipeline's next revision. " +
						"Validation errors come back as a 400 problem whose errors list each one with file, line and column.",
					body: "ApplyRequest",
					ok: object{
						"201": jsonResponse("A new revision was created.", schemaRef("ApplyResult")),
						"200": jsonResponse("The source equals the latest revision; nothing changed.", schemaRef("ApplyResult")),
					},
					errors: []int{400}}.build(),
				"get": operation{id: "listPipelines", tag: "pipelines", summary: "List pipelines with their latest revision",
					ok: object{"200": jsonResponse("The pipelines, by name.", arrayOf(schemaRef("PipelineSummary")))}}.build(),
			},
			"/api/v1/pipelines/{name}": object{
				"get": operation{id: "getPipeline", tag: "pipelines", summary: "Get a revision of a pipeline",
					params: []object{paramRef("name"),
						queryParam("revision", intSchema(1), "Revision number; defaults to the latest.")},
					ok:     object{"200": jsonResponse("The revision.", schemaRef("Revision"))},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/pipelines/{name}/status": object{
				"get": operation{id: "getStatus", tag: "pipelines", summary: "Get the status of every environment of a pipeline",
					params: []object{paramRef("name")},
					ok:     object{"200": jsonResponse("The status.", schemaRef("Status"))},
					errors: []int{404}}.build(),
			},
			"/api/v1/pipelines/{name}/history": object{
				"get": operation{id: "getHistory", tag: "pipelines", summary: "List a pipeline's promotions, newest first",
					params: []object{paramRef("name"),
						queryParam("environment", stringSchema(), "Only promotions into this environment."),
						paramRef("limit")},
					ok:     object{"200": jsonResponse("The promotions.", arrayOf(schemaRef("Promotion")))},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/pipelines/{name}/releases": object{
				"post": operation{id: "createRelease", tag: "releases",
					summary: "Create a release of a pipeline",
					description: "Releases are immutable: creating an identical release again answers 200 with the stored one; " +
						"the same version with other content is refused with 409, naming the difference.",
					params: []object{paramRef("name")},
					body:   "CreateReleaseRequest",
					ok: object{
						"201": jsonResponse("The release was created.", schemaRef("Release")),
						"200": jsonResponse("An identical release with this version exists.", schemaRef("Release")),
					},
					errors: []int{400, 404, 409}}.build(),
				"get": operation{id: "listReleases", tag: "releases", summary: "List a pipeline's releases, newest first",
					params: []object{paramRef("name"), paramRef("limit")},
					ok:     object{"200": jsonResponse("The releases.", arrayOf(schemaRef("Release")))},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/pipelines/{name}/releases/{version}": object{
				"get": operation{id: "getRelease", tag: "releases", summary: "Get a release by version",
					params: []object{paramRef("name"), paramRef("version")},
					ok:     object{"200": jsonResponse("The release.", schemaRef("Release"))},
					errors: []int{404}}.build(),
			},
			"/api/v1/promotions": object{
				"post": operation{id: "promote", tag: "promotions", summary: "Promote a release into an environment",
					body:   "PromoteRequest",
					ok:     object{"201": jsonResponse("The promotion was created.", schemaRef("Promotion"))},
					errors: []int{400, 404, 409, 422}}.build(),
				"get": operation{id: "listPromotions", tag: "promotions", summary: "List promotions, newest first",
					params: []object{
						queryParam("pipeline", stringSchema(), "Only promotions of this pipeline."),
						queryParam("environment", stringSchema(), "Only promotions into this environment."),
						{
							"name": "state", "in": "query", "style": "form", "explode": true,
							"description": "Only promotions in these states; repeat the parameter or separate states with commas.",
							"schema":      arrayOf(schemaRef("State")),
						},
						queryParam("active", object{"type": "boolean"}, "Only promotions that have not ended."),
						queryParam("release", stringSchema(), "Only promotions of this release version; needs pipeline."),
						paramRef("limit"),
					},
					ok:     object{"200": jsonResponse("The promotions.", arrayOf(schemaRef("Promotion")))},
					errors: []int{400}}.build(),
			},
			"/api/v1/promotions/{id}": object{
				"get": operation{id: "getPromotion", tag: "promotions", summary: "Get a promotion, optionally waiting for a change",
					description: "With waitVersion=N the request waits until the promotion's version exceeds N or the timeout " +
						"passes, then returns the promotion as it is. Clients follow a promotion by passing the version they saw.",
					params: []object{paramRef("id"),
						queryParam("waitVersion", int64Schema(0), "Wait until the promotion's version exceeds this."),
						queryParam("timeout", object{"type": "string", "default": DefaultWaitTimeout.String(), "examples": []any{"30s"}},
							fmt.Sprintf("How long to wait: a duration such as 30s, or seconds. At most %s; needs waitVersion.", MaxWaitTimeout)),
					},
					ok:     object{"200": jsonResponse("The promotion.", schemaRef("Promotion"))},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/promotions/{id}/logs": object{
				"get": operation{id: "getLogs", tag: "promotions", summary: "Get the output of a promotion's steps",
					params: []object{paramRef("id")},
					ok:     object{"200": jsonResponse("The log chunks in order.", arrayOf(schemaRef("LogChunk")))},
					errors: []int{404}}.build(),
			},
			"/api/v1/promotions/{id}/abort": object{
				"post": operation{id: "abortPromotion", tag: "promotions", summary: "Abort a promotion that has not ended",
					params: []object{paramRef("id")},
					body:   "AbortRequest",
					ok:     object{"200": jsonResponse("The promotion after the abort was recorded.", schemaRef("Promotion"))},
					errors: []int{400, 404, 409, 422}}.build(),
			},
			"/api/v1/promotions/{id}/resume": object{
				"post": operation{id: "resumePromotion", tag: "promotions", summary: "Resume a promotion paused by an inconclusive check",
					description: "Counts the inconclusive check as passed (a person looked and decided) and continues. Needs a reason.",
					params:      []object{paramRef("id")},
					body:        "AbortRequest",
					ok:          object{"200": jsonResponse("The promotion after it resumed.", schemaRef("Promotion"))},
					errors:      []int{400, 404, 409}}.build(),
			},
			"/api/v1/promotions/{id}/approve": object{
				"post": operation{id: "approvePromotion", tag: "gates", summary: "Approve a promotion",
					description: "Records the caller's approval, bound to the release's content digest and the pipeline revision; " +
						"a promotion awaiting approval is evaluated again at once. Needs the approver role on the environment, " +
						"and the environment's approvals must name the caller (role or user); the release's creator and the " +
						"promotion's requester may not approve unless allowSelfApproval.",
					params: []object{paramRef("id")},
					body:   "CommentRequest",
					ok:     object{"200": jsonResponse("The promotion after the approval.", schemaRef("Promotion"))},
					errors: []int{400, 403, 404, 409, 422}}.build(),
			},
			"/api/v1/promotions/{id}/reject": object{
				"post": operation{id: "rejectPromotion", tag: "gates", summary: "Reject a promotion",
					description: "A rejection by an eligible approver ends the promotion rejected. The comment is required.",
					params:      []object{paramRef("id")},
					body:        "CommentRequest",
					ok:          object{"200": jsonResponse("The promotion after the rejection.", schemaRef("Promotion"))},
					errors:      []int{400, 403, 404, 409, 422}}.build(),
			},
			"/api/v1/promotions/{id}/review": object{
				"post": operation{id: "reviewPromotion", tag: "gates", summary: "Review an expedited or break-glass promotion",
					params: []object{paramRef("id")},
					body:   "CommentRequest",
					ok:     object{"200": jsonResponse("The promotion with its review.", schemaRef("Promotion"))},
					errors: []int{400, 403, 404, 409, 422}}.build(),
			},
			"/api/v1/approvals": object{
				"get": operation{id: "listApprovals", tag: "gates", summary: "List the promotions awaiting the caller's approval",
					ok: object{"200": jsonResponse("Promotions awaiting approval the caller may decide on.", arrayOf(schemaRef("Promotion")))}}.build(),
			},
			"/api/v1/reviews": object{
				"get": operation{id: "listReviews", tag: "gates", summary: "List expedited and break-glass promotions nobody has reviewed",
					ok: object{"200": jsonResponse("The unreviewed promotions, oldest first.", arrayOf(schemaRef("Promotion")))}}.build(),
			},
			"/api/v1/plan": object{
				"get": operation{id: "getPlan", tag: "gates", summary: "Explain what promoting a release now would do",
					description: "Evaluates every gate of the environment for the release without changing anything: " +
						"pass, fail or pending, why, who may approve, when a window opens, how long soak has left.",
					params: []object{
						queryParam("pipeline", stringSchema(), "The pipeline."),
						queryParam("release", stringSchema(), "The release's version."),
						queryParam("environment", stringSchema(), "The target environment."),
						queryParam("expedite", object{"type": "boolean"}, "Plan an expedited promotion (skips soak)."),
						queryParam("overrideWindow", object{"type": "boolean"}, "Plan a break-glass promotion (ignores windows)."),
						queryParam("reason", stringSchema(), "The reason the promotion would carry."),
					},
					ok:     object{"200": jsonResponse("The plan.", schemaRef("Plan"))},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/rollbacks": object{
				"post": operation{id: "rollback", tag: "promotions", summary: "Roll an environment back to an earlier release",
					body:   "RollbackRequest",
					ok:     object{"201": jsonResponse("The rollback promotion was created.", schemaRef("Promotion"))},
					errors: []int{400, 404, 409, 422}}.build(),
			},
			"/api/v1/alerts/alertmanager": object{
				"post": operation{id: "receiveAlertmanager", tag: "verification", summary: "Receive an Alertmanager webhook notification",
					description: "Point an Alertmanager webhook receiver here with a bearer token that may roll back in every pipeline. " +
						"Firing alerts labelled ferry_pipeline and ferry_environment, or matching an environment's alerts.matchers, are " +
						"recorded on the promotion verifying or watching there — one entry per alert group, repeats change nothing — " +
						"and roll it back where the environment sets alerts.rollback.",
					body:   "AlertmanagerMessage",
					ok:     object{"200": jsonResponse("What was done for each environment the alerts concern.", schemaRef("AlertReport"))},
					errors: []int{400, 413}}.build(),
			},
			"/api/v1/audit": object{
				"get": operation{id: "listAudit", tag: "audit", summary: "List audit events in sequence order",
					params: []object{
						queryParam("promotion", stringSchema(), "Only events of this promotion ID."),
						queryParam("actor", stringSchema(), "Only events by this actor."),
						queryParam("action", stringSchema(), "Only events with this action, such as promotion.transition."),
						queryParam("since", object{"type": "string", "format": "date-time"}, "Only events at or after this RFC 3339 time."),
						queryParam("until", object{"type": "string", "format": "date-time"}, "Only events before this RFC 3339 time."),
						queryParam("after", int64Schema(0), "Only events with a sequence number above this; pass the last seq seen to page."),
						paramRef("limit"),
					},
					ok:     object{"200": jsonResponse("The events.", arrayOf(schemaRef("AuditEvent")))},
					errors: []int{400}}.build(),
			},
			"/api/v1/audit/verify": object{
				"get": operation{id: "verifyAudit", tag: "audit", summary: "Verify the whole audit chain and its checkpoints",
					description: "Needs admin on the global scope. Checks every event's hash and link from the genesis, every stored " +
						"checkpoint (signature with the server's key, and hash), and that the log ends at the head the store recorded. " +
						"A broken chain is a 200 report with ok false and break naming the first sequence number where it breaks.",
					ok: object{"200": jsonResponse("The verification report.", schemaRef("AuditReport"))}}.build(),
			},
			"/api/v1/audit/export": object{
				"get": operation{id: "exportAudit", tag: "audit", summary: "Export the audit log as JSON lines",
					description: "Answers application/x-ndjson: a header line, one line per event in sequence order each followed by " +
						"the checkpoints of its seq, and an end line; every line has a type member (header, event, checkpoint, end). " +
						"Without a filter the export is the whole log and, when the chain verifies, ends with a checkpoint of its last " +
						"event signed at export time, so that ferry audit verify --file --pubkey checks it to the end. With since or " +
						"promotion it is partial (header partial true): its events verify one by one but it cannot show that none is missing. " +
						"Needs admin on the global scope, or, with promotion, on that promotion's environment.",
					params: []object{
						queryParam("since", object{"type": "string", "format": "date-time"}, "Only events at or after this RFC 3339 time."),
						queryParam("promotion", stringSchema(), "Only events of this promotion ID."),
					},
					ok: object{"200": object{"description": "The export.",
						"content": object{ndjsonContentType: object{"schema": stringSchema()}}}},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/audit/pubkey": object{
				"get": operation{id: "auditPublicKey", tag: "audit", summary: "The public key that verifies the server's checkpoints",
					description: "Any valid token may read it. 404 when the server has no audit key.",
					ok:          object{"200": jsonResponse("The public key.", schemaRef("AuditPublicKey"))},
					errors:      []int{404}}.build(),
			},
			"/api/v1/audit/checkpoints": object{
				"post": operation{id: "createAuditCheckpoint", tag: "audit", summary: "Sign the audit chain's head now",
					description: "Needs admin on the global scope. Stores a checkpoint of the last event, signed with the server's " +
						"audit key, or answers 200 with the stored one when the last event has one. 409 when the log is empty, " +
						"404 when the server has no audit key.",
					emptyBody: true,
					ok: object{
						"201": jsonResponse("The checkpoint was signed and stored.", schemaRef("AuditCheckpoint")),
						"200": jsonResponse("The last event has a checkpoint already.", schemaRef("AuditCheckpoint")),
					},
					errors: []int{404, 409}}.build(),
			},
			"/api/v1/cluster": object{
				"get": operation{id: "getCluster", tag: "server", summary: "List the live replicas sharing the store",
					description: "Every Ferry server on the same store is a replica. The list holds those seen recently, " +
						"by ID, each with the promotions it drives (holds the lease of). On SQLite there is one.",
					ok: object{"200": jsonResponse("The replicas, by ID.", arrayOf(schemaRef("Replica")))}}.build(),
			},
			"/api/v1/stats": object{
				"get": operation{id: "getStats", tag: "stats", summary: "Promotion and delivery figures",
					description: "Computes, from the store, the figures of the promotions that ended in the window: " +
						"promotion success rate, mean time to promote, rollback rate, verification failure rate, post-promotion " +
						"incident rate, time to detect, approval latency, telemetry coverage and audit completeness, and the four " +
						"delivery keys (deployment frequency, lead time for changes, change failure rate, time to restore). " +
						"docs/stats.md defines each. A figure with nothing to measure is null, never 0. Any role may read the " +
						"figures of a pipeline (or environment) it may view; without pipeline, a global grant is needed.",
					params: []object{
						queryParam("pipeline", stringSchema(), "Only promotions of this pipeline."),
						queryParam("environment", stringSchema(), "Only promotions into this environment, which then counts as production."),
						queryParam("window", object{"type": "string", "default": DefaultStatsWindow, "examples": []any{"30d", "7d", "12h"}},
							"How far back from now: a duration such as 12h or days such as 30d; at most 366d."),
						queryParam("bucket", object{"type": "string", "examples": []any{"1d", "6h"}},
							"Adds a series of the figures per bucket of this length (at least 1h), oldest first; the window must be a whole number of buckets, at most 1000."),
					},
					ok:     object{"200": jsonResponse("The figures.", schemaRef("Stats"))},
					errors: []int{400, 404}}.build(),
			},
			"/api/v1/tokens": object{
				"post": operation{id: "createToken", tag: "tokens", summary: "Create an API token",
					description: "Needs admin on the global scope. The answer holds the token's plaintext (secret): " +
						"it is shown this once and never stored, only its SHA-256 is. The creation is audited as token.create, " +
						"without the secret.",
					body:   "CreateTokenRequest",
					ok:     object{"201": jsonResponse("The token was created.", schemaRef("CreatedToken"))},
					errors: []int{400}}.build(),
				"get": operation{id: "listTokens", tag: "tokens", summary: "List every API token, oldest first",
					description: "Needs admin on the global scope. Revoked and expired tokens are listed too; secrets and hashes never are.",
					ok:          object{"200": jsonResponse("The tokens.", arrayOf(schemaRef("Token")))}}.build(),
			},
			"/api/v1/tokens/{id}/revoke": object{
				"post": operation{id: "revokeToken", tag: "tokens", summary: "Revoke an API token",
					description: "Needs admin on the global scope. The token stops working at once. Revoking a revoked token " +
						"keeps its first revocation time. Audited as token.revoke.",
					params:    []object{pathParam("id", "The token's ID, as token list shows it.")},
					emptyBody: true,
					ok:        object{"200": jsonResponse("The token, revoked.", schemaRef("Token"))},
					errors:    []int{404}}.build(),
			},
		},
		"components": object{
			"securitySchemes": object{
				"bearer": object{"type": "http", "scheme": "bearer",
					"description": "An API token made by ferry token create (ferry_ followed by 43 letters and digits)."},
			},
			"parameters": object{
				"name":    pathParam("name", "The pipeline's name."),
				"version": pathParam("version", "The release's version."),
				"id":      pathParam("id", "The promotion's ID."),
				"limit": queryParam("limit",
					object{"type": "integer", "minimum": 1, "maximum": MaxLimit, "default": DefaultLimit},
					"The largest number of items to return."),
				"actor": object{
					"name": HeaderActor, "in": "header", "schema": stringSchema(),
					"description": fmt.Sprintf("Who makes the request when the server runs with --auth=off; defaults to %q. "+
						"Ignored otherwise: the actor is the user of the token.", DefaultActor),
				},
				"idempotencyKey": object{
					"name": HeaderIdempotencyKey, "in": "header",
					"schema": object{"type": "string", "maxLength": MaxIdempotencyKeyLength},
					"description": "Makes the request safe to retry: a repeat with the same key, actor, path and body " +
						"replays the first response; the same key with another request is refused with 422.",
				},
			},
			"headers": object{
				"replayed": object{
					"description": "true when the response is the stored response to an earlier request with the same Idempotency-Key.",
					"schema":      object{"type": "string", "enum": []any{"true"}},
				},
			},
			"responses": object{
				"Problem": object{
					"description": "An error, as an RFC 9457 problem detail.",
					"content":     object{problemContentType: object{"schema": schemaRef("Problem")}},
				},
			},
			"schemas": schemas(),
		},
	}
}

// operation describes one route for the document.
type operation struct {
	id, tag, summary, description string
	params                        []object
	// body names the schema of a JSON request body; empty for none.
	body string
	// ok holds the success responses by status.
	ok object
	// text marks a route that answers 200 text/plain.
	text bool
	// errors lists the problem statuses the route documents besides the default.
	errors []int
	// public marks a route that needs no token.
	public bool
	// emptyBody marks a POST without a request body.
	emptyBody bool
}

func (o operation) build() object {
	out := object{"operationId": o.id, "summary": o.summary, "tags": []any{o.tag}}
	if o.description != "" {
		out["description"] = o.description
	}
	params := append([]object(nil), o.params...)
	responses := object{}
	for status, resp := range o.ok {
		responses[status] = resp
	}
	if o.text {
		responses["200"] = object{
			"description": "OK.",
			"content":     object{"text/plain": object{"schema": object{"type": "string", "examples": []any{"ok"}}}},
		}
	}
	if o.public {
		out["security"] = []any{}
	} else {
		o.errors = append(o.errors, http.StatusUnauthorized, http.StatusForbidden)
	}
	if o.emptyBody {
		params = append(params, paramRef("idempotencyKey"))
		o.errors = append(o.errors, http.StatusUnprocessableEntity)
	}
	if o.body != "" {
		params = append(params, paramRef("actor"), paramRef("idempotencyKey"))
		out["requestBody"] = object{
			"required": true,
			"content":  object{"application/json": object{"schema": schemaRef(o.body)}},
		}
		for _, resp := range o.ok {
			resp.(object)["headers"] = object{HeaderReplayed: object{"$ref": "#/components/headers/replayed"}}
		}
		// Every body can be too large and every key can be reused for another request.
		o.errors = append(o.errors, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
	}
	for _, status := range o.errors {
		responses[strconv.Itoa(status)] = object{"$ref": "#/components/responses/Problem"}
	}
	responses["default"] = object{"$ref": "#/components/responses/Problem"}
	if len(params) > 0 {
		ps := make([]any, len(params))
		for i, p := range params {
			ps[i] = p
		}
		out["parameters"] = ps
	}
	out["responses"] = responses
	return out
}

func schemaRef(name string) object { return object{"$ref": "#/components/schemas/" + name} }

func paramRef(name string) object { return object{"$ref": "#/components/parameters/" + name} }

func jsonResponse(description string, schema object) object {
	return object{
		"description": description,
		"content":     object{"application/json": object{"schema": schema}},
	}
}

func pathParam(name, description string) object {
	return object{"name": name, "in": "path", "required": true, "schema": stringSchema(), "description": description}
}

func queryParam(name string, schema object, description string) object {
	return object{"name": name, "in": "query", "schema": schema, "description": description}
}

func stringSchema() object { return object{"type": "string"} }

func intSchema(minimum int) object { return object{"type": "integer", "minimum": minimum} }

func int64Schema(minimum int) object {
	return object{"type": "integer", "format": "int64", "minimum": minimum}
}

func arrayOf(items object) object { return object{"type": "array", "items": items} }

func nullable(s object) object { return object{"oneOf": []any{s, object{"type": "null"}}} }

func dateTime() object { return object{"type": "string", "format": "date-time"} }

func described(s object, description string) object {
	out := object{"description": description}
	for k, v := range s {
		out[k] = v
	}
	return out
}

// structSchema returns an object schema with the given properties, refusing
// others when closed (request bodies are decoded strictly).
func structSchema(required []string, closed bool, props object) object {
	out := object{"type": "object", "properties": props}
	if len(required) > 0 {
		req := make([]any, len(required))
		for i, r := range required {
			req[i] = r
		}
		out["required"] = req
	}
	if closed {
		out["additionalProperties"] = false
	}
	return out
}

func enum[T ~string](values ...T) object {
	vs := make([]any, len(values))
	for i, v := range values {
		vs[i] = string(v)
	}
	return object{"type": "string", "enum": vs}
}

// schemas returns the document's component schemas. openapi_test.go checks
// that each one has the JSON fields of the Go type it describes.
func schemas() object {
	stringMap := object{"type": "object", "additionalProperties": stringSchema()}
	stepSpec := structSchema([]string{"name"}, false, object{
		"name": stringSchema(),
		"exec": structSchema(nil, false, object{
			"run":     described(stringSchema(), "A shell script run with /bin/sh -c."),
			"command": arrayOf(stringSchema()),
			"env":     stringMap,
			"workdir": stringSchema(),
			"timeout": described(stringSchema(), "A Go duration such as 5m."),
		}),
		"http": structSchema([]string{"url"}, false, object{
			"method":       stringSchema(),
			"url":          stringSchema(),
			"headers":      stringMap,
			"body":         stringSchema(),
			"expectStatus": object{"type": "integer"},
			"timeout":      described(stringSchema(), "A Go duration such as 30s."),
		}),
		"retries":   object{"type": "integer", "minimum": 0},
		"backoff":   described(stringSchema(), "A Go duration; doubles per retry."),
		"secretEnv": arrayOf(stringSchema()),
	})
	return object{
		"State": described(enum(promotion.States...), "The lifecycle state of a promotion."),
		"Kind":  enum(promotion.KindPromote, promotion.KindRollback),
		"Phase": enum(promotion.PhasePreflight, promotion.PhaseDeploy, promotion.PhaseCanary, promotion.PhaseVerify,
			promotion.PhaseWatch, promotion.PhaseRollback),
		"Problem": structSchema([]string{"type", "title", "status", "code"}, false, object{
			"type":     described(object{"type": "string", "format": "uri"}, "Identifies the kind of problem; its address documents it."),
			"title":    stringSchema(),
			"status":   object{"type": "integer"},
			"detail":   described(stringSchema(), "What went wrong with this request, in words."),
			"instance": described(stringSchema(), "The request path."),
			"code": described(enum(codeInvalid, codeNotFound, codeConflict, codePrecondition, codeUnavailable,
				codeUnauthenticated, codeForbidden, codeNoRoute, codeMethodNotAllowed, codeTooLarge, codeIdempotencyMismatch, codeInternal),
				"A stable code to branch on."),
			"errors": described(arrayOf(schemaRef("ValidationError")), "The individual problems, such as each validation error of a pipeline."),
			"details": described(object{"type": "object"}, "Other facts about the problem for machines, such as the upstream environments a release is missing, "+
				"or, in a 403, the user and the grant that would allow the request (need)."),
		}),
		"ValidationError": structSchema([]string{"message"}, false, object{
			"file":    stringSchema(),
			"line":    object{"type": "integer"},
			"column":  object{"type": "integer"},
			"field":   described(stringSchema(), "The path of the offending field, such as environments[1].steps[0].exec."),
			"message": stringSchema(),
		}),
		"ApplyRequest": structSchema([]string{"source"}, true, object{
			"filename": described(stringSchema(), "The file the source came from; errors cite it."),
			"source":   described(stringSchema(), "The pipeline's YAML."),
		}),
		"ApplyResult": structSchema([]string{"pipeline", "revision", "digest", "created"}, false, object{
			"pipeline": stringSchema(),
			"revision": object{"type": "integer"},
			"digest":   stringSchema(),
			"created":  described(object{"type": "boolean"}, "False when the source equalled the latest revision."),
		}),
		"PipelineSummary": structSchema([]string{"name", "revision", "digest", "environments", "updatedAt"}, false, object{
			"name":         stringSchema(),
			"revision":     object{"type": "integer"},
			"digest":       stringSchema(),
			"environments": arrayOf(stringSchema()),
			"updatedAt":    dateTime(),
		}),
		"Revision": structSchema([]string{"pipeline", "number", "digest", "spec", "createdAt"}, false, object{
			"pipeline":  stringSchema(),
			"number":    object{"type": "integer", "minimum": 1},
			"digest":    described(stringSchema(), "sha256 of the canonical JSON of the spec."),
			"spec":      schemaRef("PipelineSpec"),
			"source":    described(stringSchema(), "The YAML as applied."),
			"createdAt": dateTime(),
			"createdBy": stringSchema(),
		}),
		"PipelineSpec": structSchema([]string{"name", "environments"}, false, object{
			"name":         stringSchema(),
			"environments": arrayOf(schemaRef("EnvironmentSpec")),
			"notifications": described(arrayOf(schemaRef("NotificationSpec")),
				"The endpoints told about the promotions of every environment."),
		}),
		"NotificationSpec": structSchema([]string{"name", "url", "events"}, false, object{
			"name":   stringSchema(),
			"url":    described(stringSchema(), "Where messages are POSTed."),
			"events": arrayOf(enum(pipeline.NotificationEvents...)),
			"format": enum(pipeline.FormatJSON, pipeline.FormatSlack),
			"headers": described(object{"type": "object", "additionalProperties": stringSchema()},
				"Headers sent with every message."),
			"secretHeaders": described(object{"type": "object", "additionalProperties": stringSchema()},
				"Header names mapped to the server's environment variables holding their values."),
		}),
		"EnvironmentSpec": structSchema([]string{"name"}, false, object{
			"name":        stringSchema(),
			"after":       arrayOf(stringSchema()),
			"autoPromote": object{"type": "boolean"},
			"steps":       arrayOf(stepSpec),
			"verify":      arrayOf(stepSpec),
			"rollback":    structSchema(nil, false, object{"automatic": object{"type": "boolean"}}),
			"gates":       described(object{"type": "object"}, "The conditions that must hold before a release deploys here; see docs/pipeline.md."),
			"strategy":    described(object{"type": "object"}, "How a release takes traffic: a canary strategy's phases; see docs/pipeline.md."),
			"watch": described(object{"type": "object"}, "A post-promotion watch window: checks that keep running for a while after the "+
				"promotion's checks passed, rolling back on a failure; see docs/pipeline.md."),
			"alerts": described(object{"type": "object"}, "Which Alertmanager alerts concern the environment (matchers) and whether "+
				"a firing one rolls back the promotion verifying or watching there; see docs/pipeline.md."),
			"notifications": described(arrayOf(schemaRef("NotificationSpec")),
				"The endpoints told about this environment's promotions, besides the pipeline's."),
		}),
		"Status": structSchema([]string{"pipeline", "revision", "environments"}, false, object{
			"pipeline":     stringSchema(),
			"revision":     object{"type": "integer"},
			"environments": arrayOf(schemaRef("EnvironmentStatus")),
		}),
		"EnvironmentStatus": structSchema([]string{"name", "after", "autoPromote", "current", "active", "queued", "last"}, false, object{
			"name":        stringSchema(),
			"after":       arrayOf(stringSchema()),
			"autoPromote": object{"type": "boolean"},
			"current":     described(nullable(schemaRef("ReleaseRef")), "The release running there now."),
			"deployedAt":  dateTime(),
			"active":      described(nullable(schemaRef("PromotionRef")), "The promotion holding the environment."),
			"queued":      described(arrayOf(schemaRef("PromotionRef")), "Promotions waiting for the environment, oldest first."),
			"last":        described(nullable(schemaRef("PromotionRef")), "The most recent finished promotion."),
		}),
		"ReleaseRef": structSchema([]string{"id", "version"}, false, object{
			"id":      stringSchema(),
			"version": stringSchema(),
		}),
		"PromotionRef": structSchema([]string{"id", "state", "kind", "release"}, false, object{
			"id":          stringSchema(),
			"pipeline":    described(stringSchema(), "Present where the context does not imply it, as in the cluster view."),
			"environment": described(stringSchema(), "Present where the context does not imply it, as in the cluster view."),
			"state":       schemaRef("State"),
			"kind":        schemaRef("Kind"),
			"release":     schemaRef("ReleaseRef"),
		}),
		"CommentRequest": structSchema(nil, true, object{
			"comment": stringSchema(),
		}),
		"GateEvaluation": structSchema([]string{"name", "kind", "result", "reason", "at"}, false, object{
			"name":   stringSchema(),
			"kind":   described(stringSchema(), "upstream, soak, policy, windows or approvals."),
			"result": object{"type": "string", "enum": []string{"pass", "fail", "pending"}},
			"reason": stringSchema(),
			"until":  described(dateTime(), "When a pending gate may pass, if known."),
			"since":  described(dateTime(), "When a pending approval gate started waiting on people."),
			"at":     dateTime(),
		}),
		"Plan": structSchema([]string{"pipeline", "environment", "release", "revision", "proceed", "result", "reason", "gates", "queue"}, false, object{
			"pipeline":    stringSchema(),
			"environment": stringSchema(),
			"release":     schemaRef("ReleaseRef"),
			"revision":    object{"type": "integer"},
			"proceed":     described(object{"type": "boolean"}, "True when every gate passes now."),
			"result":      object{"type": "string", "enum": []string{"pass", "fail", "pending"}},
			"reason":      stringSchema(),
			"gates":       arrayOf(schemaRef("GateEvaluation")),
			"approvers":   arrayOf(stringSchema()),
			"wakeAt":      described(dateTime(), "When the gates would next be evaluated."),
			"preflight":   arrayOf(stringSchema()),
			"queue":       described(object{"type": "integer"}, "Unfinished promotions into the environment now."),
		}),
		"Replica": structSchema([]string{"id", "host", "addr", "startedAt", "seenAt", "self", "driving"}, false, object{
			"id":        described(stringSchema(), "The replica's instance ID, host:pid."),
			"host":      stringSchema(),
			"addr":      described(stringSchema(), "The address its API listens on."),
			"startedAt": dateTime(),
			"seenAt":    described(dateTime(), "When it last renewed its leases."),
			"self":      described(object{"type": "boolean"}, "True for the replica that answered the request."),
			"driving":   described(arrayOf(schemaRef("PromotionRef")), "The promotions it drives, oldest first."),
		}),
		"Artifact": structSchema([]string{"name", "uri", "digest"}, true, object{
			"name":   described(stringSchema(), "Identifies the artifact within its release."),
			"uri":    described(stringSchema(), "Locates the artifact, without its digest."),
			"digest": object{"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
		}),
		"CreateReleaseRequest": structSchema([]string{"version", "artifacts"}, true, object{
			"version":   stringSchema(),
			"artifacts": object{"type": "array", "minItems": 1, "items": schemaRef("Artifact")},
			"commit":    stringSchema(),
			"commitTime": described(dateTime(), "When the commit was made; lead time for changes counts from it. "+
				"At most 5 minutes ahead of the server's clock."),
			"source":   described(stringSchema(), "Where the source lives, such as a repository URL."),
			"buildUrl": stringSchema(),
			"labels":   stringMap,
		}),
		"Release": structSchema([]string{"id", "pipeline", "version", "artifacts", "createdAt"}, false, object{
			"id":         stringSchema(),
			"pipeline":   stringSchema(),
			"version":    stringSchema(),
			"artifacts":  arrayOf(schemaRef("Artifact")),
			"commit":     stringSchema(),
			"commitTime": described(dateTime(), "When the commit was made, if CI said."),
			"source":     stringSchema(),
			"buildUrl":   stringSchema(),
			"labels":     stringMap,
			"createdAt":  dateTime(),
			"createdBy":  stringSchema(),
		}),
		"PromoteRequest": structSchema([]string{"pipeline", "release", "environment"}, true, object{
			"pipeline":    stringSchema(),
			"release":     described(stringSchema(), "The release's version."),
			"environment": stringSchema(),
			"reason":      stringSchema(),
			"force":       described(object{"type": "boolean"}, "Override the upstream requirement; needs a reason and is recorded."),
			"expedite": described(object{"type": "boolean"},
				"Skip soak for a hotfix; needs a reason and a role the environment allows for it, and the promotion awaits review."),
			"overrideWindow": described(object{"type": "boolean"},
				"Break glass: ignore deployment windows and freezes; needs a reason and admin or the environment's override role, and the promotion awaits review."),
		}),
		"RollbackRequest": structSchema([]string{"pipeline", "environment", "reason"}, true, object{
			"pipeline":    stringSchema(),
			"environment": stringSchema(),
			"to":          described(stringSchema(), "The version to restore; defaults to the release deployed before the current one."),
			"reason":      stringSchema(),
		}),
		"AbortRequest": structSchema([]string{"reason"}, true, object{
			"reason": stringSchema(),
		}),
		"Promotion": structSchema([]string{"id", "traceId", "pipeline", "environment", "kind", "state", "release", "revision",
			"actor", "forced", "steps", "createdAt", "finishedAt", "updatedAt", "version"}, false, object{
			"id":          stringSchema(),
			"traceId":     described(stringSchema(), "The ID of the promotion's OpenTelemetry trace (32 hex digits): the first 16 bytes of SHA-256(\"ferry/promotion/\" + id). Its spans carry the promotion's ID as ferry.promotion.id."),
			"pipeline":    stringSchema(),
			"environment": stringSchema(),
			"kind":        schemaRef("Kind"),
			"state":       schemaRef("State"),
			"release":     schemaRef("ReleaseRef"),
			"rollbackTo":  described(schemaRef("ReleaseRef"), "The release restored if this promotion fails."),
			"revision":    described(object{"type": "integer"}, "The pipeline revision the promotion pinned."),
			"reason":      stringSchema(),
			"actor":       stringSchema(),
			"forced":      object{"type": "boolean"},
			"message":     described(stringSchema(), "Explains the current state."),
			"steps":       arrayOf(schemaRef("Step")),
			"transitions": arrayOf(schemaRef("Transition")),
			"notifications": described(arrayOf(schemaRef("Notification")),
				"The messages owed to notification endpoints about the promotion, and where their delivery stands."),
			"createdAt":      dateTime(),
			"startedAt":      dateTime(),
			"finishedAt":     nullable(dateTime()),
			"updatedAt":      dateTime(),
			"wakeAt":         described(dateTime(), "When a waiting promotion continues."),
			"version":        described(object{"type": "integer", "format": "int64"}, "Increases with every change; pass it as waitVersion to wait for the next."),
			"expedited":      described(object{"type": "boolean"}, "A hotfix that skipped soak; it awaits review."),
			"overrideWindow": described(object{"type": "boolean"}, "A break-glass promotion outside its deployment window; it awaits review."),
			"gates":          described(arrayOf(object{"type": "object"}), "The latest evaluation of each gate of the environment: pass, fail or pending, with a reason."),
			"approvals":      described(arrayOf(object{"type": "object"}), "The approval decisions recorded on the promotion."),
			"review":         described(object{"type": "object"}, "The after-the-fact review of an expedited or break-glass promotion."),
			"canary": described(object{"type": "object", "properties": object{
				"phase": object{"type": "integer"}, "phases": object{"type": "integer"}, "weight": object{"type": "integer"}}},
				"Where a canary strategy stands: its current phase (1-based), how many phases it has, and the traffic weight."),
			"watch": described(structSchema([]string{"for", "startedAt", "until", "open"}, false, object{
				"for":       described(stringSchema(), "The window's length, such as 30m0s."),
				"startedAt": dateTime(),
				"until":     dateTime(),
				"open":      described(object{"type": "boolean"}, "True while the promotion is watching."),
			}), "The post-promotion watch window, once it started."),
			"alerts": described(arrayOf(schemaRef("Alert")), "The alert groups recorded on the promotion, one entry per group."),
		}),
		"Alert": structSchema([]string{"key", "groupKey", "summary", "at", "rolledBack"}, false, object{
			"key":        described(stringSchema(), "Identifies the alert group for this environment; Alertmanager's repeats of the group share it."),
			"groupKey":   stringSchema(),
			"summary":    described(stringSchema(), "The firing alerts on one line."),
			"at":         dateTime(),
			"rolledBack": described(object{"type": "boolean"}, "True when the alert rolled the promotion back."),
		}),
		"AlertmanagerMessage": described(structSchema([]string{"version", "groupKey", "truncatedAlerts", "status", "receiver",
			"groupLabels", "commonLabels", "commonAnnotations", "externalURL", "alerts"}, false, object{
			"version":           described(stringSchema(), "The payload version; only 4 is accepted."),
			"groupKey":          described(stringSchema(), "Identifies the alert group; Ferry records one entry per group and environment."),
			"truncatedAlerts":   object{"type": "integer"},
			"status":            object{"type": "string", "enum": []string{"firing", "resolved"}},
			"receiver":          stringSchema(),
			"groupLabels":       stringMap,
			"commonLabels":      stringMap,
			"commonAnnotations": stringMap,
			"externalURL":       stringSchema(),
			"alerts":            arrayOf(object{"type": "object"}),
		}), "Alertmanager's webhook payload, exactly as Alertmanager sends it (webhook_configs); fields Ferry does not read are ignored. See docs/api.md."),
		"AlertReport": structSchema([]string{"targets"}, false, object{
			"targets": arrayOf(schemaRef("AlertTarget")),
		}),
		"AlertTarget": structSchema([]string{"pipeline", "environment", "alerts", "outcome"}, false, object{
			"pipeline":    stringSchema(),
			"environment": stringSchema(),
			"alerts":      described(object{"type": "integer"}, "How many firing alerts of the notification concern the environment."),
			"promotionId": described(stringSchema(), "The promotion verifying or watching there, if any."),
			"outcome":     object{"type": "string", "enum": []string{"recorded", "duplicate", "rolled_back", "ignored"}},
			"reason":      described(stringSchema(), "Why an ignored target was ignored."),
		}),
		"Step": structSchema([]string{"name", "phase", "index", "state", "attempts", "exitCode"}, false, object{
			"name":       stringSchema(),
			"phase":      schemaRef("Phase"),
			"index":      object{"type": "integer"},
			"state":      described(stringSchema(), "The state of the latest attempt (running, succeeded, failed, interrupted, aborted), or pending."),
			"attempts":   object{"type": "integer"},
			"exitCode":   described(nullable(object{"type": "integer"}), "The exit code of the latest attempt of an exec step."),
			"error":      stringSchema(),
			"startedAt":  dateTime(),
			"finishedAt": dateTime(),
		}),
		"Notification": structSchema([]string{"id", "endpoint", "event", "seq", "state", "attempts", "createdAt"}, false, object{
			"id":            described(stringSchema(), "Identifies the message for good, across retries; receivers drop a message whose ID they have seen."),
			"endpoint":      described(stringSchema(), "The endpoint's name."),
			"event":         enum(pipeline.NotificationEvents...),
			"seq":           described(object{"type": "integer"}, "Numbers the messages to the endpoint about the promotion from 1."),
			"state":         enum("pending", "delivered", "failed"),
			"attempts":      object{"type": "integer"},
			"lastError":     described(stringSchema(), "The error of the latest failed attempt."),
			"createdAt":     dateTime(),
			"lastAttemptAt": dateTime(),
			"finishedAt":    described(dateTime(), "When it was delivered or given up on."),
		}),
		"Transition": structSchema([]string{"from", "to", "actor", "at"}, false, object{
			"from":   schemaRef("State"),
			"to":     schemaRef("State"),
			"reason": stringSchema(),
			"actor":  stringSchema(),
			"at":     dateTime(),
		}),
		"LogChunk": structSchema([]string{"phase", "step", "index", "attempt", "at", "text"}, false, object{
			"phase":   schemaRef("Phase"),
			"step":    stringSchema(),
			"index":   object{"type": "integer"},
			"attempt": object{"type": "integer"},
			"at":      dateTime(),
			"text":    stringSchema(),
		}),
		"Grant": structSchema([]string{"role", "scope"}, true, object{
			"role":  enum(auth.Roles()...),
			"scope": described(stringSchema(), "* (global), a pipeline such as shop, or an environment such as shop/prod."),
		}),
		"CreateTokenRequest": structSchema([]string{"user", "grants"}, true, object{
			"user":   described(stringSchema(), "The person or system the token acts for; recorded as the actor of what it does."),
			"grants": object{"type": "array", "minItems": 1, "items": schemaRef("Grant")},
			"expires": described(object{"type": "string", "default": DefaultTokenExpiry, "examples": []any{"90d", "12h", "never"}},
				"How long the token lives: a duration such as 12h, days such as 90d, or never."),
		}),
		"Token": structSchema([]string{"id", "user", "grants", "createdAt"}, false, object{
			"id":        described(stringSchema(), "Identifies the token; not secret: the first 8 characters after ferry_."),
			"user":      stringSchema(),
			"grants":    arrayOf(schemaRef("Grant")),
			"createdAt": dateTime(),
			"createdBy": stringSchema(),
			"expiresAt": described(dateTime(), "When the token stops working; absent when it never expires."),
			"revokedAt": described(dateTime(), "When the token was revoked; absent while it is in force."),
		}),
		"CreatedToken": structSchema([]string{"secret", "token"}, false, object{
			"secret": described(stringSchema(), "The token's plaintext, shown only in this answer."),
			"token":  schemaRef("Token"),
		}),
		"Stats": statsSchema(),
		"StatsBucket": structSchema(append([]string{"from", "to"}, figureNames()...), false,
			merge(object{"from": dateTime(), "to": described(dateTime(), "The end of the bucket, excluded.")}, figureProps())),
		"AuditGap": structSchema([]string{"promotionId", "problem"}, false, object{
			"promotionId": stringSchema(),
			"problem":     described(stringSchema(), "What the audit trail lacks, such as a transition or a step's event."),
		}),
		"AuditEvent": structSchema([]string{"seq", "time", "actor", "action", "subject"}, false, object{
			"seq":         object{"type": "integer", "format": "int64"},
			"time":        dateTime(),
			"actor":       stringSchema(),
			"action":      described(stringSchema(), "The change, such as pipeline.apply or promotion.transition."),
			"subject":     described(stringSchema(), "What changed, such as pipeline/shop."),
			"promotionId": stringSchema(),
			"reason":      stringSchema(),
			"details":     described(object{"type": "object"}, "Action-specific facts."),
			"prevHash":    described(stringSchema(), "The hash of the event before, 64 zeros for the first."),
			"hash":        described(stringSchema(), "Hex SHA-256 of prevHash and the event's canonical JSON."),
		}),
		"AuditHead": structSchema([]string{"seq", "hash"}, false, object{
			"seq":  object{"type": "integer", "format": "int64"},
			"hash": stringSchema(),
		}),
		"AuditCheckpoint": structSchema([]string{"seq", "hash", "time", "keyId", "signature"}, false, object{
			"seq":       object{"type": "integer", "format": "int64"},
			"hash":      stringSchema(),
			"time":      dateTime(),
			"keyId":     described(stringSchema(), "The first 16 hex digits of the SHA-256 of the signing public key."),
			"signature": described(stringSchema(), "Base64 ed25519 signature; see docs/operations.md for what it covers."),
		}),
		"AuditBreak": structSchema([]string{"seq", "reason"}, false, object{
			"seq":    described(object{"type": "integer", "format": "int64"}, "The first sequence number where the chain breaks."),
			"reason": stringSchema(),
		}),
		"AuditReport": structSchema([]string{"ok", "events", "head", "signaturesChecked", "checkpoints", "unsigned"}, false, object{
			"ok":                object{"type": "boolean"},
			"partial":           object{"type": "boolean"},
			"events":            object{"type": "integer", "format": "int64"},
			"first":             object{"type": "integer", "format": "int64"},
			"last":              object{"type": "integer", "format": "int64"},
			"runs":              object{"type": "integer"},
			"head":              schemaRef("AuditHead"),
			"signaturesChecked": object{"type": "boolean"},
			"keyIds":            arrayOf(stringSchema()),
			"checkpoints":       described(object{"type": "integer"}, "Checkpoints that matched the chain."),
			"signed":            schemaRef("AuditCheckpoint"),
			"unsigned":          described(object{"type": "integer", "format": "int64"}, "Events after the newest matching checkpoint."),
			"anchored":          object{"type": "integer", "format": "int64"},
			"break":             schemaRef("AuditBreak"),
		}),
		"AuditPublicKey": structSchema([]string{"publicKey", "keyId"}, false, object{
			"publicKey": described(stringSchema(), "ed25519: and the key's 32 bytes in base64, as ferry audit verify --pubkey takes it."),
			"keyId":     stringSchema(),
		}),
	}
}

// statsSchema describes stats.Report.
func statsSchema() object {
	props := merge(object{
		"pipeline":    described(stringSchema(), "The pipeline filter, when given."),
		"environment": described(stringSchema(), "The environment filter, when given."),
		"production": described(arrayOf(stringSchema()),
			"The environments (pipeline/environment) the production figures count: those no other environment runs after, or the environment filter."),
		"from":          described(dateTime(), "The start of the window."),
		"to":            described(dateTime(), "The end of the window (now), excluded."),
		"auditGaps":     described(arrayOf(schemaRef("AuditGap")), "The first promotions whose audit trail is incomplete, and why."),
		"bucketSeconds": described(object{"type": "number"}, "The length of each bucket of series, when asked for."),
		"series":        described(arrayOf(schemaRef("StatsBucket")), "The figures of each bucket, oldest first, when asked for."),
	}, figureProps())
	return structSchema(append([]string{"production", "from", "to"}, figureNames()...), false, props)
}

// figure is one figure of stats.Figures for the document.
type figure struct{ name, kind, description string }

// figureTable lists the figures of stats.Figures: name, kind (count, rate,
// seconds or number) and meaning.
func figureTable() []figure {
	return []figure{
		{"promotions", "count", "Promotions of both kinds that ended in the window."},
		{"attempts", "count", "Promote-kind promotions that passed their gates and started deploying."},
		{"succeeded", "count", "Attempts that succeeded."},
		{"successRate", "rate", "M1: succeeded / attempts."},
		{"promotedToProduction", "count", "Successful promotions into production whose release is known."},
		{"meanTimeToPromoteSeconds", "seconds", "M2: mean time from a release's creation to its success in production."},
		{"rolledBack", "count", "Attempts rolled back, automatically or by a later ferry rollback."},
		{"rollbackRate", "rate", "M3: rolledBack / attempts."},
		{"verified", "count", "Attempts whose checks or canary phases ran."},
		{"verificationFailed", "count", "Verified attempts stopped by a failing check or canary step."},
		{"verificationFailureRate", "rate", "M4: verificationFailed / verified."},
		{"live", "count", "Promote-kind promotions that passed verification (entered watching, or succeeded)."},
		{"incidents", "count", "Live promotions whose watch window failed or that drew an alert after going live."},
		{"incidentRate", "rate", "M5: incidents / live."},
		{"meanTimeToDetectSeconds", "seconds", "M6: mean time from going live to the first failure signal."},
		{"awaitedApproval", "count", "Promotions that waited for approval."},
		{"approvalLatencySeconds", "seconds", "M7: mean time a promotion spent awaiting approval."},
		{"withTelemetry", "count", "Attempts with at least one verification measurement."},
		{"telemetryCoverage", "rate", "M9: withTelemetry / attempts."},
		{"auditComplete", "count", "Promotions whose audit trail accounts for their whole record."},
		{"auditCompleteness", "rate", "M10: auditComplete / promotions."},
		{"deployments", "count", "Promote-kind promotions into production that deployed and ended succeeded, failed, rolled_back or rollback_failed."},
		{"successfulDeployments", "count", "Deployments that succeeded."},
		{"deploymentFrequencyPerDay", "number", "Successful deployments per day; null when no promotion ended in the window."},
		{"leadTimeCount", "count", "Successful deployments whose release has a commit time."},
		{"withoutCommitTime", "count", "Successful deployments left out of lead time: their release has no commit time."},
		{"leadTimeForChangesSeconds", "seconds", "Median time from a release's commit to its success in production."},
		{"changeFailures", "count", "Deployments that failed, were rolled back, or drew an alert after going live."},
		{"changeFailureRate", "rate", "changeFailures / deployments."},
		{"restored", "count", "Change failures after which the environment ran a good release again."},
		{"unrestored", "count", "Change failures not restored yet."},
		{"timeToRestoreSeconds", "seconds", "Median time from detecting a change failure to its restoration."},
	}
}

// figureProps returns the schema properties of stats.Figures.
func figureProps() object {
	out := object{}
	for _, f := range figureTable() {
		var s object
		switch f.kind {
		case "count":
			s = intSchema(0)
		case "rate":
			s = nullable(object{"type": "number", "minimum": 0, "maximum": 1})
		case "seconds", "number":
			s = nullable(object{"type": "number"})
		}
		out[f.name] = described(s, f.description)
	}
	return out
}

// figureNames lists the names of stats.Figures, every one always present.
func figureNames() []string {
	figures := figureTable()
	out := make([]string, len(figures))
	for i, f := range figures {
		out[i] = f.name
	}
	return out
}

// merge returns the properties of a and b together.
func merge(a, b object) object {
	out := object{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
