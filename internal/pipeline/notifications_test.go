package pipeline

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseNotifications(t *testing.T) {
	spec := parseFile(t, "testdata/valid/notifications.yaml")
	releases := Notification{
		Name:          "releases",
		URL:           "https://hooks.example.com/ferry",
		Events:        NotificationEvents,
		Headers:       map[string]string{"X-Team": "payments"},
		SecretHeaders: map[string]string{"Authorization": "RELEASES_HOOK_AUTH"},
	}
	channel := Notification{
		Name:   "prod-channel",
		URL:    "https://hooks.slack.com/services/T000/B000/XXXX",
		Events: []string{EventPromotionFailed, EventPromotionRolledBack, EventApprovalRequested},
		Format: FormatSlack,
	}
	if got := spec.NotificationsFor("staging"); !reflect.DeepEqual(got, []Notification{releases}) {
		t.Errorf("staging notifies %+v, want only the pipeline's endpoint", got)
	}
	if got := spec.NotificationsFor("prod"); !reflect.DeepEqual(got, []Notification{releases, channel}) {
		t.Errorf("prod notifies %+v, want the pipeline's endpoint then its own", got)
	}
	if got := releases.MessageFormat(); got != FormatJSON {
		t.Errorf("the default format is %q, want json", got)
	}
	if !channel.Wants(EventApprovalRequested) || channel.Wants(EventPromotionSucceeded) {
		t.Errorf("Wants does not follow events %v", channel.Events)
	}
}

// notifyYAML returns a pipeline whose pipeline-level notifications are the
// given lines (from line 3) and whose prod environment notifies ops-prod.
func notifyYAML(lines ...string) string {
	return "name: shop\nnotifications:\n  " + strings.Join(lines, "\n  ") + "\n" +
		"environments:\n  - name: staging\n  - name: prod\n    notifications:\n" +
		"      - {name: ops-prod, url: 'http://127.0.0.1:9/x', events: [gate.blocked]}\n"
}

func TestParseNotificationProblems(t *testing.T) {
	const ok = "  url: https://hooks.example.com/x\n    events: [promotion.failed]"
	tests := map[string]struct {
		yaml         string
		line, column int
		field        string
		message      string
	}{
		"unknown field": {
			notifyYAML("- name: ops", ok, "  formt: slack"),
			6, 5, "notifications[0].formt", `unknown field "formt" (did you mean "format"?)`,
		},
		"relative URL": {
			notifyYAML("- name: ops", "  url: /hooks/ferry", "  events: [promotion.failed]"),
			4, 10, "notifications[0].url", `invalid URL "/hooks/ferry": must be an absolute http or https URL`,
		},
		"another scheme": {
			notifyYAML("- name: ops", "  url: ftp://hooks.example.com/x", "  events: [promotion.failed]"),
			4, 10, "notifications[0].url", "must be an absolute http or https URL",
		},
		"missing URL": {
			notifyYAML("- name: ops", "  events: [promotion.failed]"),
			3, 5, "notifications[0].url", "required",
		},
		"unknown event": {
			notifyYAML("- name: ops", "  url: https://h.example.com/", "  events: [promotion.failed, promotion.started]"),
			5, 32, "notifications[0].events[1]", `unknown event "promotion.started": use promotion.succeeded, promotion.failed, promotion.rolled_back, approval.requested, gate.blocked`,
		},
		"duplicate event": {
			notifyYAML("- name: ops", "  url: https://h.example.com/", "  events: [gate.blocked, gate.blocked]"),
			5, 28, "notifications[0].events[1]", `duplicate entry "gate.blocked"`,
		},
		"no events": {
			notifyYAML("- name: ops", "  url: https://h.example.com/"),
			3, 5, "notifications[0].events", "at least one event is required",
		},
		"unknown format": {
			notifyYAML("- name: ops", ok, "  format: teams"),
			6, 13, "notifications[0].format", `unknown format "teams": use json or slack`,
		},
		"duplicate name": {
			notifyYAML("- name: ops", ok, "- name: ops", ok),
			6, 11, "notifications[1].name", `duplicate notification "ops" (first defined at line 3)`,
		},
		"environment repeats a pipeline name": {
			notifyYAML("- name: ops-prod", ok),
			10, 16, "environments[1].notifications[0].name", `duplicate notification "ops-prod": the pipeline's notifications define it at line 3`,
		},
		"invalid name": {
			notifyYAML("- name: Ops", ok),
			3, 11, "notifications[0].name", `invalid name "Ops"`,
		},
		"header Ferry sets": {
			notifyYAML("- name: ops", ok, "  headers: {Idempotency-Key: x}"),
			6, 15, "notifications[0].headers.Idempotency-Key", `header "Idempotency-Key" is set by Ferry`,
		},
		"header with a newline": {
			notifyYAML("- name: ops", ok, `  headers: {X-Team: "a\nb"}`),
			6, 15, "notifications[0].headers.X-Team", "header value must not contain CR, LF or NUL",
		},
		"secret header also plain": {
			notifyYAML("- name: ops", ok, "  headers: {Authorization: x}", "  secretHeaders: {Authorization: HOOK_AUTH}"),
			7, 21, "notifications[0].secretHeaders.Authorization", `header "Authorization" is also in headers`,
		},
		"secret header from a Ferry variable": {
			notifyYAML("- name: ops", ok, "  secretHeaders: {Authorization: FERRY_TOKEN}"),
			6, 21, "notifications[0].secretHeaders.Authorization", `environment variable "FERRY_TOKEN" is reserved`,
		},
		"secret header from an invalid name": {
			notifyYAML("- name: ops", ok, "  secretHeaders: {Authorization: hook-auth}"),
			6, 21, "notifications[0].secretHeaders.Authorization", `invalid environment variable name "hook-auth"`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.yaml))
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) != 1 {
				t.Fatalf("Parse(\n%s) = %v, want one problem", tt.yaml, err)
			}
			p := verr.Problems[0]
			if p.Line != tt.line || p.Column != tt.column || p.Field != tt.field || !strings.Contains(p.Message, tt.message) {
				t.Errorf("problem = %d:%d %s: %s\nwant %d:%d %s: …%s…", p.Line, p.Column, p.Field, p.Message, tt.line, tt.column, tt.field, tt.message)
			}
		})
	}
}

func TestValidateNotifications(t *testing.T) {
	s := validSpec()
	s.Notifications = []Notification{{Name: "ops", URL: "https://h.example.com/", Events: []string{EventGateBlocked}}}
	s.Environments[1].Notifications = []Notification{{Name: "ops", URL: "h.example.com", Events: []string{"deployed"}, Format: "xml"}}
	want := []string{
		`environments[1].notifications[0].name: duplicate notification "ops": the pipeline's notifications define it at notifications[0].name`,
		`environments[1].notifications[0].url: invalid URL "h.example.com": must be an absolute http or https URL`,
		`environments[1].notifications[0].events[0]: unknown event "deployed": use promotion.succeeded, promotion.failed, promotion.rolled_back, approval.requested, gate.blocked`,
		`environments[1].notifications[0].format: unknown format "xml": use json or slack`,
	}
	if err := s.Validate(); err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("Validate = %v, want\n%s", err, strings.Join(want, "\n"))
	}
}

// TestNotificationsReferenceExample keeps the example of the Notifications
// section of docs/pipeline.md valid and equal to
// testdata/valid/notifications.yaml.
func TestNotificationsReferenceExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Notifications\n")
	_, rest, found := strings.Cut(section, "```yaml\n")
	example, _, closed := strings.Cut(rest, "```")
	if !ok || !found || !closed {
		t.Fatal("docs/pipeline.md has no Notifications section with a yaml example")
	}
	spec, err := Parse("docs/pipeline.md", []byte(example))
	if err != nil {
		t.Fatalf("the example does not parse:\n%v", err)
	}
	if want := parseFile(t, "testdata/valid/notifications.yaml").Digest(); spec.Digest() != want {
		t.Error("the Notifications example of docs/pipeline.md differs from testdata/valid/notifications.yaml")
	}
}
