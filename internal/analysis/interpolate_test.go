package analysis

import (
	"strings"
	"testing"
)

func TestInterpolate(t *testing.T) {
	vars := map[string]string{
		"environment":         "production",
		"pipeline":            "shop",
		"release":             "1.4.2",
		"promotion":           "pro-9",
		"artifact.api.digest": "sha256:abc",
		"unrelated":           "ignored",
	}
	tests := []struct{ in, want string }{
		{"", ""},
		{"up", "up"},
		{`sum(rate(errors_total{env="${environment}"}[5m]))`, `sum(rate(errors_total{env="production"}[5m]))`},
		{"${pipeline}/${release}/${promotion}", "shop/1.4.2/pro-9"},
		{`image_digest{digest="${artifact.api.digest}"}`, `image_digest{digest="sha256:abc"}`},
		{"${ environment }", "production"},
		{"$${environment} costs $5, ${release}$", "${environment} costs $5, 1.4.2$"},
		{"$$${release}", "$${release}"},
		{"a$", "a$"},
	}
	for _, tt := range tests {
		got, err := Interpolate(tt.in, vars)
		if err != nil || got != tt.want {
			t.Errorf("Interpolate(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestInterpolateErrors(t *testing.T) {
	vars := map[string]string{"environment": "production", "unrelated": "x"}
	tests := []struct {
		in   string
		want []string
	}{
		{"${env} ${unrelated} ${env}", []string{"unknown variable ${env}, ${unrelated} (known: ${environment}, ${pipeline}, ${release}, ${promotion}, ${baseline}, ${artifact.NAME.digest}"}},
		{"${artifact.api.uri}", []string{"unknown variable ${artifact.api.uri}"}},
		{"${artifact..digest}", []string{"unknown variable ${artifact..digest}"}},
		{"${release} ${artifact.web.digest}", []string{"no value for ${release}, ${artifact.web.digest}"}},
		{"rate(x[5m]) ${environment", []string{"unclosed ${ at offset 12"}},
	}
	for _, tt := range tests {
		got, err := Interpolate(tt.in, vars)
		if err == nil {
			t.Errorf("Interpolate(%q) = %q, want an error", tt.in, got)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Interpolate(%q): %v; want it to contain %q", tt.in, err, w)
			}
		}
	}
}
