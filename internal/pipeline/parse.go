package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxValues bounds the number of YAML values Parse decodes, counting each
// expansion of an alias anew, so that a small document built from nested
// aliases cannot make it do unbounded work.
const maxValues = 100_000

// Problem is one thing wrong with a pipeline specification.
type Problem struct {
	// File is the name of the file the specification came from; empty for a
	// specification built in code.
	File string `json:"file,omitempty"`
	// Line is the 1-based line of the offending YAML node; zero when unknown.
	Line int `json:"line,omitempty"`
	// Column is the 1-based column of the offending YAML node; zero when unknown.
	Column int `json:"column,omitempty"`
	// Field is the path of the offending field, such as
	// "environments[1].steps[0].exec.timeout"; empty for the document itself.
	Field string `json:"field,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats p as "file:line:column: field: message", leaving out the
// parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	loc := p.File
	if p.Line > 0 {
		loc += fmt.Sprintf(":%d:%d", p.Line, p.Column)
		loc = strings.TrimPrefix(loc, ":")
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a pipeline specification.
type ValidationError struct {
	// Problems are ordered by position in the source, when known.
	Problems []Problem
}

// Error formats one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Parse decodes and validates one pipeline specification. Parsing is strict:
// unknown fields, values of the wrong type, malformed YAML, an empty document
// and more than one document are errors. Every problem found is returned at
// once, as a *ValidationError whose problems name filename, the line and
// column of the offending node and the path of the offending field.
func Parse(filename string, data []byte) (*Spec, error) {
	d := &decoder{
		file:    filename,
		pos:     map[string]position{},
		text:    map[string]textPos{},
		anchors: map[string]ast.Node{},
		merging: map[ast.Node]bool{},
		failed:  map[string]bool{},
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if line, col, ok := invalidUTF8(data); ok {
		d.problems = append(d.problems, Problem{File: filename, Line: line, Column: col, Message: "invalid UTF-8"})
		return nil, d.err()
	}
	f, err := parseYAML(data)
	if err != nil {
		d.problems = append(d.problems, syntaxProblem(filename, err))
		return nil, d.err()
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	switch {
	case len(docs) == 0:
		d.problems = append(d.problems, Problem{File: filename, Line: 1, Column: 1, Message: "empty document: a pipeline needs at least a name and an environment"})
		return nil, d.err()
	case len(docs) > 1:
		at := docs[1].Start
		if at == nil {
			at = nodeToken(docs[1].Body)
		}
		d.problemAt(at, "", "more than one YAML document: put each pipeline in its own file")
		return nil, d.err()
	}

	var s Spec
	d.decode(docs[0].Body, reflect.ValueOf(&s).Elem(), "")
	if d.exhausted {
		// What was decoded is a fragment; validating it would only add noise.
		return nil, d.err()
	}
	v := &validator{file: filename, pos: d.pos, text: d.text, skip: d.failed}
	v.spec(&s)
	d.problems = append(d.problems, v.problems...)
	if len(d.problems) > 0 {
		return nil, d.err()
	}
	return &s, nil
}

// position is where a node starts in the source.
type position struct{ line, column int }

// textPos is where the characters of a string value are in the source, so
// that a position inside the value, such as that of a compile error in a
// CEL expression, can be mapped to the file.
type textPos struct {
	// line and column are those of the value's first character: after the
	// opening quote of a quoted scalar, at the indentation of the first
	// content line of a block scalar.
	line, column int
	// block is set for a literal block scalar ("|"), whose lines are kept:
	// line n of the value is line line+n-1 of the file, starting at column.
	block bool
	// exact is set when every character of the value maps to a position as
	// described above: a single-line scalar without escape sequences, or a
	// literal block scalar.
	exact bool
}

// decoder turns a go-yaml AST into a Spec by walking the Go types, so that
// it can report every problem with its position and field path rather than
// stopping at the first, and record the position of every field for
// validation.
type decoder struct {
	file     string
	problems []Problem
	// pos maps field paths to the position of their value (of their key, for
	// map entries).
	pos map[string]position
	// text maps the field paths of string values to where their characters
	// are.
	text map[string]textPos
	// anchors maps anchor names to their values, as they are met.
	anchors map[string]ast.Node
	// merging holds the mappings whose merge keys are being expanded, to
	// catch a merge key that refers to its own mapping.
	merging map[ast.Node]bool
	// failed holds the field paths that had a decoding problem, so that
	// validation does not report them a second time.
	failed map[string]bool
	values int
	// exhausted is set once maxValues is exceeded; decoding then stops.
	exhausted bool
}

var (
	durationType = reflect.TypeFor[Duration]()
	timeType     = reflect.TypeFor[time.Time]()
)

func (d *decoder) err() error {
	slices.SortStableFunc(d.problems, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return &ValidationError{Problems: d.problems}
}

func (d *decoder) problemAt(tk *token.Token, field, format string, args ...any) {
	p := Problem{File: d.file, Field: field, Message: fmt.Sprintf(format, args...)}
	if tk != nil && tk.Position != nil {
		p.Line, p.Column = tk.Position.Line, tk.Position.Column
	}
	d.problems = append(d.problems, p)
	d.failed[field] = true
}

// decode stores node into v, whose field path is path.
func (d *decoder) decode(node ast.Node, v reflect.Value, path string) {
	at := nodeToken(node)
	if !d.spend(1, at, path) {
		return
	}
	if _, seen := d.pos[path]; !seen {
		d.pos[path] = posOf(node)
	}
	node, tag, ok := d.resolve(node, path)
	if !ok {
		return
	}
	d.decodeValue(at, node, tag, v, path)
}

// spend counts n more values decoded and reports whether decoding may go on.
func (d *decoder) spend(n int, at *token.Token, path string) bool {
	if d.exhausted {
		return false
	}
	d.values += n
	if d.values > maxValues {
		d.exhausted = true
		d.problemAt(at, path, "document too large: more than %d values once aliases are expanded", maxValues)
		return false
	}
	return true
}

// decodeValue stores the resolved node, to which the standard tag applies,
// into v. Problems are reported at the token at, where the value (or the
// anchor, alias or tag that leads to it) starts.
func (d *decoder) decodeValue(at *token.Token, node ast.Node, tag string, v reflect.Value, path string) {
	if _, null := node.(*ast.NullNode); null {
		return
	}
	if v.Type() == durationType {
		text, ok := d.scalar(at, node, tag, path, "a duration such as 30s or 5m")
		if !ok {
			return
		}
		dur, err := parseDuration(text)
		if err != nil {
			d.problemAt(at, path, "invalid duration %q: write a number with a unit, such as 30s, 5m, 1h30m or 30d", text)
			return
		}
		v.Set(reflect.ValueOf(Duration(dur)))
		return
	}
	if v.Type() == timeType {
		text, ok := d.scalar(at, node, tag, path, "an RFC 3339 timestamp such as 2026-12-20T00:00:00Z")
		if !ok {
			return
		}
		t, err := time.Parse(time.RFC3339, text)
		if err != nil {
			d.problemAt(at, path, "invalid timestamp %q: write an RFC 3339 timestamp with a time zone, such as 2026-12-20T00:00:00Z", text)
			return
		}
		v.Set(reflect.ValueOf(t))
		return
	}

	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decodeValue(at, node, tag, elem.Elem(), path)
		v.Set(elem)
	case reflect.Struct:
		d.decodeStruct(at, node, v, path)
	case reflect.Slice:
		seq, ok := node.(*ast.SequenceNode)
		if !ok {
			d.problemAt(at, path, "expected a list, got %s", describe(node, tag))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, item := range seq.Values {
			d.decode(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(out)
	case reflect.Map:
		entries, ok := d.entries(at, node, path)
		if !ok {
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(entries))
		for _, e := range entries {
			p := path + fieldKey(e.key)
			d.pos[p] = posOf(e.keyNode)
			val := reflect.New(v.Type().Elem()).Elem()
			d.decode(e.value, val, p)
			out.SetMapIndex(reflect.ValueOf(e.key).Convert(v.Type().Key()), val)
		}
		v.Set(out)
	case reflect.String:
		text, ok := d.scalar(at, node, tag, path, "a string")
		if ok {
			v.SetString(text)
			if tp, known := textPosOf(node); known {
				d.text[path] = tp
			}
		}
	case reflect.Int:
		n, ok := node.(*ast.IntegerNode)
		if !ok || tag == string(token.StringTag) {
			d.problemAt(at, path, "expected an integer, got %s", describe(node, tag))
			return
		}
		var i int64
		switch x := n.Value.(type) {
		case int64:
			i = x
		case uint64:
			if x > math.MaxInt64 {
				i = math.MaxInt64
			} else {
				i = int64(x)
			}
		}
		if i < math.MinInt32 || i > math.MaxInt32 {
			d.problemAt(at, path, "integer %s is out of range", n.Token.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		var f float64
		switch n := node.(type) {
		case *ast.IntegerNode:
			switch x := n.Value.(type) {
			case int64:
				f = float64(x)
			case uint64:
				f = float64(x)
			}
		case *ast.FloatNode:
			f = n.Value
		case *ast.InfinityNode, *ast.NanNode:
			f = math.NaN()
		default:
			d.problemAt(at, path, "expected a number, got %s", describe(node, tag))
			return
		}
		if tag == string(token.StringTag) {
			d.problemAt(at, path, "expected a number, got %s", describe(node, tag))
			return
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			d.problemAt(at, path, "number %s is out of range", node.GetToken().Value)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		b, ok := node.(*ast.BoolNode)
		if !ok || tag == string(token.StringTag) {
			d.problemAt(at, path, "expected true or false, got %s", describe(node, tag))
			return
		}
		v.SetBool(b.Value)
	default:
		// Only reachable if Spec gains a field of a kind decode does not know.
		d.problemAt(at, path, "cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(at *token.Token, node ast.Node, v reflect.Value, path string) {
	entries, ok := d.entries(at, node, path)
	if !ok {
		return
	}
	fields := map[string][]int{}
	var names []string
	structFields(v.Type(), nil, fields, &names)
	for _, e := range entries {
		p := join(path, e.key)
		index, ok := fields[e.key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", e.key)
			if s := suggest(e.key, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += fmt.Sprintf(" (known fields: %s)", strings.Join(names, ", "))
			}
			d.problemAt(nodeToken(e.keyNode), p, "%s", msg)
			continue
		}
		d.decode(e.value, v.FieldByIndex(index), p)
	}
}

// structFields adds the YAML names of the exported fields of the struct
// type t to fields, with their index sequences below prefix. The fields of
// an embedded struct tagged ",inline" are those of the struct itself.
func structFields(t reflect.Type, prefix []int, fields map[string][]int, names *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		index := append(slices.Clone(prefix), i)
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(opts, ","), "inline") {
			structFields(f.Type, index, fields, names)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		fields[name] = index
		*names = append(*names, name)
	}
}

// entry is one key and value of a YAML mapping.
type entry struct {
	key     string
	keyNode ast.Node
	value   ast.Node
}

// entries returns the entries of the mapping node, with the entries of
// merge keys ("<<: *base") added where the mapping does not set them.
func (d *decoder) entries(at *token.Token, node ast.Node, path string) ([]entry, bool) {
	var values []*ast.MappingValueNode
	switch m := node.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		d.problemAt(at, path, "expected a mapping, got %s", describe(node, ""))
		return nil, false
	}
	if !d.spend(len(values), at, path) {
		return nil, false
	}
	if d.merging[node] {
		d.problemAt(at, path, "a merge key refers to the mapping that contains it")
		return nil, false
	}
	var own, merged []entry
	for _, mv := range values {
		keyNode := ast.Node(mv.Key)
		if k, ok := keyNode.(*ast.MappingKeyNode); ok {
			keyNode = k.Value
		}
		if _, ok := keyNode.(*ast.MergeKeyNode); ok {
			d.merging[node] = true
			merged = append(merged, d.mergeEntries(mv.Value, path)...)
			delete(d.merging, node)
			continue
		}
		key, ok := keyText(keyNode)
		if !ok {
			d.problemAt(nodeToken(keyNode), path, "mapping keys must be strings, got %s", describe(keyNode, ""))
			continue
		}
		own = append(own, entry{key: key, keyNode: keyNode, value: mv.Value})
	}
	seen := map[string]bool{}
	for _, e := range own {
		seen[e.key] = true
	}
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			own = append(own, e)
		}
	}
	return own, true
}

// mergeEntries returns the entries a merge key's value brings in: one
// mapping, or a list of mappings of which the first wins.
func (d *decoder) mergeEntries(node ast.Node, path string) []entry {
	at := nodeToken(node)
	node, _, ok := d.resolve(node, path)
	if !ok {
		return nil
	}
	if seq, isSeq := node.(*ast.SequenceNode); isSeq {
		var out []entry
		for _, item := range seq.Values {
			itemAt := nodeToken(item)
			item, _, ok := d.resolve(item, path)
			if !ok {
				continue
			}
			if _, isSeq := item.(*ast.SequenceNode); isSeq {
				d.problemAt(itemAt, path, "merge key needs a mapping or a list of mappings, got a list")
				continue
			}
			es, _ := d.entries(itemAt, item, path)
			out = append(out, es...)
		}
		return out
	}
	es, _ := d.entries(at, node, path)
	return es
}

// resolve follows anchors, aliases and tags to the node holding the value,
// and returns the standard tag (such as "!!str") applied to it, if any.
func (d *decoder) resolve(node ast.Node, path string) (ast.Node, string, bool) {
	tag := ""
	for range 64 {
		switch n := node.(type) {
		case nil:
			return &ast.NullNode{}, tag, true
		case *ast.AnchorNode:
			if name, ok := keyText(n.Name); ok {
				d.anchors[name] = n.Value
			}
			node = n.Value
		case *ast.AliasNode:
			name, _ := keyText(n.Value)
			target, ok := d.anchors[name]
			if !ok {
				d.problemAt(nodeToken(n), path, "unknown alias *%s", name)
				return nil, "", false
			}
			node = target
		case *ast.TagNode:
			t := n.Start.Value
			if !strings.HasPrefix(t, "!!") {
				d.problemAt(nodeToken(n), path, "unsupported tag %s", t)
				return nil, "", false
			}
			tag = t
			node = n.Value
		default:
			return node, tag, true
		}
	}
	d.problemAt(nodeToken(node), path, "too many nested anchors, aliases and tags")
	return nil, "", false
}

// scalar returns the text of a scalar node: strings as written, numbers and
// booleans as their source text.
func (d *decoder) scalar(at *token.Token, node ast.Node, tag, path, want string) (string, bool) {
	switch n := node.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.LiteralNode:
		return n.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	d.problemAt(at, path, "expected %s, got %s", want, describe(node, tag))
	return "", false
}

// textPosOf returns where the characters of a scalar's value are.
func textPosOf(node ast.Node) (textPos, bool) {
	switch n := node.(type) {
	case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		tk := n.GetToken()
		if tk == nil || tk.Position == nil {
			return textPos{}, false
		}
		raw := strings.TrimSpace(tk.Origin)
		tp := textPos{line: tk.Position.Line, column: tk.Position.Column}
		if tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType {
			tp.column++
			if len(raw) >= 2 {
				raw = raw[1 : len(raw)-1]
			}
		}
		// Escapes (\" or '') and folded lines shift the characters that
		// follow them.
		tp.exact = raw == tk.Value && !strings.Contains(raw, "\n")
		return tp, true
	case *ast.LiteralNode:
		if n.Start == nil || n.Start.Position == nil || n.Value == nil || n.Value.Token == nil {
			return textPos{}, false
		}
		// The content starts on the line after the header ("|", ">-"); its
		// indentation is what the first non-blank source line has more
		// than the same line in the value.
		origin, value := n.Value.Token.Origin, n.Value.Token.Value
		indent, blank := 0, 0
		for _, line := range strings.Split(origin, "\n") {
			if strings.TrimSpace(line) != "" {
				indent = len(line) - len(strings.TrimLeft(line, " "))
				break
			}
			blank++
		}
		for _, line := range strings.Split(value, "\n") {
			if strings.TrimSpace(line) != "" {
				indent -= len(line) - len(strings.TrimLeft(line, " "))
				break
			}
		}
		literal := strings.HasPrefix(n.Start.Value, "|")
		tp := textPos{line: n.Start.Position.Line + 1, column: indent + 1, block: literal, exact: literal}
		if !literal {
			// A folded scalar joins its lines: point at its first content line.
			tp.line += blank
		}
		return tp, true
	}
	return textPos{}, false
}

// daysPrefix matches a duration that starts with a whole number of days.
var daysPrefix = regexp.MustCompile(`^([+-]?)([0-9]+)d`)

// parseDuration parses a Go duration string ("90s", "1h30m") that may start
// with a whole number of days of 24 hours ("30d", "1d12h").
func parseDuration(s string) (time.Duration, error) {
	m := daysPrefix.FindStringSubmatch(s)
	if m == nil {
		return time.ParseDuration(s)
	}
	days, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil || days > math.MaxInt64/int64(24*time.Hour) {
		return 0, fmt.Errorf("duration %q out of range", s)
	}
	d := time.Duration(days) * 24 * time.Hour
	if rest := s[len(m[0]):]; rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 || rest[0] == '+' || r > math.MaxInt64-d {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d += r
	}
	if m[1] == "-" {
		d = -d
	}
	return d, nil
}

// keyText returns the text of a scalar mapping key.
func keyText(n ast.Node) (string, bool) {
	switch k := n.(type) {
	case *ast.StringNode:
		return k.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode, *ast.InfinityNode, *ast.NanNode:
		return k.GetToken().Value, true
	}
	return "", false
}

// describe names the kind of a YAML value, to which the standard tag
// applies, for messages.
func describe(n ast.Node, tag string) string {
	if tag == string(token.StringTag) {
		if s, ok := n.(ast.ScalarNode); ok {
			return fmt.Sprintf("string %q", s.GetToken().Value)
		}
	}
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("string %q", v.Value)
	case *ast.LiteralNode:
		return "a block string"
	case *ast.IntegerNode:
		return "integer " + v.Token.Value
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "number " + v.GetToken().Value
	case *ast.BoolNode:
		return "boolean " + v.Token.Value
	case *ast.NullNode:
		return "null"
	}
	return n.Type().String()
}

// nodeToken returns the token at which a node starts, for its position.
func nodeToken(n ast.Node) *token.Token {
	if n == nil {
		return nil
	}
	switch v := n.(type) {
	case *ast.MappingNode:
		// A block mapping's token is its first ':'; its first key is where it starts.
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return nodeToken(v.Values[0])
		}
	case *ast.MappingValueNode:
		return nodeToken(v.Key)
	case *ast.MappingKeyNode:
		return v.Start
	}
	return n.GetToken()
}

func posOf(n ast.Node) position {
	tk := nodeToken(n)
	if tk == nil || tk.Position == nil {
		return position{}
	}
	return position{line: tk.Position.Line, column: tk.Position.Column}
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// join appends a struct field name to a field path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldKey formats a map key as a path element: .KEY, or ["KEY"] when the
// key holds characters that would make the path ambiguous.
func fieldKey(key string) string {
	if plainKey.MatchString(key) {
		return "." + key
	}
	return fmt.Sprintf("[%q]", key)
}

// suggest returns the name in names closest to s, if it is close enough to
// be a likely typo.
func suggest(s string, names []string) string {
	s = strings.ToLower(s)
	limit := 1
	if len(s) > 5 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, n := range names {
		if dist := editDistance(s, strings.ToLower(n)); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of
// adjacent bytes count one each.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// parseYAML parses data into a go-yaml AST. A panic in the parser, which
// would be a bug in it, is returned as an error: a bad file must not bring
// the server down.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("parser failure: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

// syntaxProblem turns a go-yaml parse error into a Problem.
func syntaxProblem(file string, err error) Problem {
	p := Problem{File: file, Message: err.Error()}
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		p.Message = yerr.GetMessage()
		if tk := yerr.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Column = tk.Position.Line, tk.Position.Column
		}
	}
	p.Message = "invalid YAML: " + p.Message
	return p
}

// invalidUTF8 returns the position of the first byte of data that is not
// valid UTF-8.
func invalidUTF8(data []byte) (line, col int, found bool) {
	if utf8.Valid(data) {
		return 0, 0, false
	}
	line, col = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size == 1 {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		data = data[size:]
	}
	return line, col, true
}
