package pipeline

import (
	"regexp"
	"strings"
	"testing"
)

const blockYAML = `
# Block style, keys in the usual order.
name: shop
environments:
  - name: dev
    steps:
      - name: deploy
        exec:
          command: [./deploy.sh, dev]
          env:
            A: "1"
            B: two
          timeout: 60s
        retries: 2
  - name: prod
    after:
      - dev
    rollback:
      automatic: false
`

const flowYAML = `{environments: [{steps: [{retries: 2, exec: {timeout: 1m, env: {B: two, A: 1}, command: ["./deploy.sh", 'dev']}, name: deploy}], name: dev}, {rollback: {automatic: false}, after: [dev], name: prod}], name: shop}`

func TestDigestIgnoresHowYAMLIsWritten(t *testing.T) {
	block := mustParse(t, blockYAML)
	flow := mustParse(t, flowYAML)
	if block.Digest() != flow.Digest() {
		t.Errorf("digests differ for equivalent YAML:\n%s\n%s", block.Digest(), flow.Digest())
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(block.Digest()) {
		t.Errorf("Digest() = %q, want sha256:<64 hex digits>", block.Digest())
	}
	if block.Digest() != block.Digest() {
		t.Error("Digest is not stable across calls")
	}
}

func TestDigestChangesWithTheSpec(t *testing.T) {
	base := mustParse(t, blockYAML).Digest()
	changes := map[string][2]string{
		"timeout":  {"timeout: 60s", "timeout: 61s"},
		"env":      {"B: two", "B: three"},
		"after":    {"      - dev\n", "      - dev\n    autoPromote: true\n"},
		"rollback": {"automatic: false", "automatic: true"},
	}
	for name, c := range changes {
		changed := strings.Replace(blockYAML, c[0], c[1], 1)
		if changed == blockYAML {
			t.Fatalf("%s: replacement %q not found", name, c[0])
		}
		if got := mustParse(t, changed).Digest(); got == base {
			t.Errorf("%s: digest unchanged after changing %q to %q", name, c[0], c[1])
		}
	}
}

func TestNewRevision(t *testing.T) {
	spec := mustParse(t, blockYAML)
	r := NewRevision(spec, []byte(blockYAML))
	if r.Pipeline != "shop" || r.Digest != spec.Digest() || r.Source != blockYAML {
		t.Errorf("revision = %+v", r)
	}
	if r.Number != 0 || !r.CreatedAt.IsZero() {
		t.Errorf("Number and CreatedAt are for the store to set, got %d and %v", r.Number, r.CreatedAt)
	}
	if r.Spec.Digest() != r.Digest {
		t.Errorf("revision spec digest %s, want %s", r.Spec.Digest(), r.Digest)
	}
	// The revision is immutable: changing the spec it came from leaves it alone.
	spec.Environments[0].Steps[0].Exec.Env["A"] = "changed"
	spec.Environments[0].Steps[0].Exec.Command[0] = "changed"
	spec.Environments[1].After[0] = "changed"
	*spec.Environments[1].Rollback.Automatic = true
	if r.Spec.Digest() != r.Digest {
		t.Error("changing the original spec changed the revision")
	}
}

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}
