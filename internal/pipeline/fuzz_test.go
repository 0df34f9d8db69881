package pipeline

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(blockYAML))
	f.Add([]byte(flowYAML))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("environments:\n  - name: v\n    steps:\n    - &deploy <<: *deploy\n"))
	f.Add([]byte("name: p\nenvironments: [{name: d, <<: {after: [x]}}]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse("fuzz.yaml", data)
		if err != nil {
			if spec != nil {
				t.Fatal("Parse returned a spec with an error")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) == 0 {
				t.Fatalf("Parse error %v (%T), want a *ValidationError with problems", err, err)
			}
			for _, p := range verr.Problems {
				if p.File != "fuzz.yaml" || p.Line < 1 || p.Column < 1 || p.Message == "" {
					t.Fatalf("problem %+v lacks a file, a position or a message", p)
				}
			}
			return
		}
		// A spec that parses re-validates.
		if err := spec.Validate(); err != nil {
			t.Fatalf("parsed spec does not validate: %v", err)
		}
		// Its canonical JSON, itself YAML, parses back to the same digest.
		canonical, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse("canonical.json", canonical)
		if err != nil {
			t.Fatalf("canonical JSON %s does not parse: %v", canonical, err)
		}
		if again.Digest() != spec.Digest() {
			t.Fatalf("digest changed through canonical JSON %s", canonical)
		}
	})
}
