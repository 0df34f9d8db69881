package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzCanonicalJSON checks the canonical form against encoding/json: it
// accepts exactly the valid JSON (save duplicate keys), means the same value,
// is itself canonical, and does not change when the input is re-indented.
func FuzzCanonicalJSON(f *testing.F) {
	for _, seed := range []string{
		`{"b":1,"a":[true,false,null,-0.5e+3,"x\u00e9\n\"\\/"]}`,
		`"\ud83d\ude00 \ud800 \udc00x \u2028<&>"`,
		`[{}, [], "", 0, -1, 1E9, 12.50]`,
		"{\"k\":\"\xff\xfe\"}",
		`{"a":1,"a":2}`,
		`{"a" 1}`, `[1,]`, `01`, `"\x"`, `1 2`, ``, `  `,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := CanonicalJSON(data)
		if err != nil {
			if json.Valid(data) && !strings.Contains(err.Error(), "duplicate object key") && !strings.Contains(err.Error(), "nested deeper") {
				t.Fatalf("valid JSON %q refused: %v", data, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON %q accepted as %q", data, c)
		}
		var in, out any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&in); err != nil {
			t.Fatal(err)
		}
		d = json.NewDecoder(bytes.NewReader(c))
		d.UseNumber()
		if err := d.Decode(&out); err != nil {
			t.Fatalf("canonical form %q is not JSON: %v", c, err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("canonical form of %q means %v, not %v", data, out, in)
		}
		again, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("canonical form %q is not canonical: %q, %v", c, again, err)
		}
		var indented bytes.Buffer
		if json.Indent(&indented, data, " ", "\t") == nil {
			if re, err := CanonicalJSON(indented.Bytes()); err != nil || !bytes.Equal(re, c) {
				t.Fatalf("re-indented %q: %q, %v; want %q", data, re, err, c)
			}
		}
	})
}
