package web

import (
	"fmt"
	"strings"

	"github.com/ferry-dev/ferry/internal/view"
)

// levels places each environment one column right of its furthest
// upstream environment (the longest path from a root of the `after` DAG).
func levels(envs []view.Environment) map[string]int {
	after := map[string][]string{}
	for _, e := range envs {
		after[e.Name] = e.After
	}
	out := map[string]int{}
	var visit func(name string, depth int) int
	visit = func(name string, depth int) int {
		if l, ok := out[name]; ok {
			return l
		}
		if depth > len(envs) { // a cycle: validation refuses them, stay safe
			return 0
		}
		l := 0
		for _, up := range after[name] {
			if _, known := after[up]; known {
				l = max(l, visit(up, depth+1)+1)
			}
		}
		out[name] = l
		return l
	}
	for _, e := range envs {
		visit(e.Name, 0)
	}
	return out
}

// columns groups environments by level, keeping the pipeline's order within one.
func columns(envs []view.Environment) [][]view.Environment {
	lv := levels(envs)
	n := 0
	for _, l := range lv {
		n = max(n, l+1)
	}
	cols := make([][]view.Environment, n)
	for _, e := range envs {
		cols[lv[e.Name]] = append(cols[lv[e.Name]], e)
	}
	return cols
}

// shown is the promotion an environment's state is taken from: the one
// holding it, else the last that ended.
func shown(e view.Environment) *view.PromotionRef {
	if e.Active != nil {
		return e.Active
	}
	return e.Last
}

// Graph geometry.
const (
	nodeW   = 170.0
	nodeH   = 58.0
	colGap  = 60.0
	rowGap  = 18.0
	graphPd = 8.0
)

// dagSVG draws a pipeline's environments as a graph: a box per environment
// with its state (icon and word) and release, an arrow per `after` edge.
// Each box links to the environment's card below it. Environments in hidden
// show their name only.
func dagSVG(pipelineName string, envs []view.Environment, hidden map[string]bool) chartSVG {
	cols := columns(envs)
	pos := map[string][2]float64{}
	rows := 0
	for c, col := range cols {
		rows = max(rows, len(col))
		for r, e := range col {
			pos[e.Name] = [2]float64{graphPd + float64(c)*(nodeW+colGap), graphPd + float64(r)*(nodeH+rowGap)}
		}
	}
	w := graphPd*2 + float64(len(cols))*nodeW + float64(max(len(cols)-1, 0))*colGap
	h := graphPd*2 + float64(rows)*nodeH + float64(max(rows-1, 0))*rowGap
	arrow := "arrow-" + pipelineName
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="dag" width="%d" height="%d" viewBox="0 0 %s %s" role="group" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		int(w), int(h), px(w), px(h), esc("Environments of "+pipelineName+" and their order"))
	fmt.Fprintf(&b, `<defs><marker id="%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" class="arrowhead"/></marker></defs>`, esc(arrow))
	for _, e := range envs {
		to := pos[e.Name]
		for _, up := range e.After {
			from, ok := pos[up]
			if !ok {
				continue
			}
			x1, y1 := from[0]+nodeW, from[1]+nodeH/2
			x2, y2 := to[0]-2, to[1]+nodeH/2
			mid := (x1 + x2) / 2
			fmt.Fprintf(&b, `<path class="edge" d="M%s %sC%s %s %s %s %s %s" marker-end="url(#%s)"><title>%s</title></path>`,
				px(x1), px(y1), px(mid), px(y1), px(mid), px(y2), px(x2), px(y2), esc(arrow), esc(e.Name+" comes after "+up))
		}
	}
	for _, e := range envs {
		p := pos[e.Name]
		ref := shown(e)
		state := ""
		if ref != nil {
			state = string(ref.State)
		}
		lk := stateLook(state)
		current := "nothing deployed"
		if e.Current != nil {
			current = "runs " + e.Current.Version
		}
		if hidden[e.Name] {
			lk, current = look{"–", "not visible to you", "muted"}, ""
		}
		label := fmt.Sprintf("%s: %s, %s", e.Name, current, lk.Label)
		if current == "" {
			label = e.Name + ": " + lk.Label
		}
		if len(e.Queued) > 0 {
			label += fmt.Sprintf(", %d queued", len(e.Queued))
		}
		fmt.Fprintf(&b, `<a href="#%s" aria-label="%s"><g class="node %s">`, esc(envAnchor(pipelineName, e.Name)), esc(label), lk.Class)
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" rx="8"/>`, px(p[0]), px(p[1]), px(nodeW), px(nodeH))
		fmt.Fprintf(&b, `<text class="name" x="%s" y="%s">%s</text>`, px(p[0]+10), px(p[1]+20), esc(e.Name))
		fmt.Fprintf(&b, `<text class="sub" x="%s" y="%s">%s %s</text>`, px(p[0]+10), px(p[1]+38), lk.Icon, esc(lk.Label))
		fmt.Fprintf(&b, `<text class="sub" x="%s" y="%s">%s</text>`, px(p[0]+10), px(p[1]+52), esc(truncate(current, 24)))
		b.WriteString(`</g></a>`)
	}
	b.WriteString(`</svg>`)
	return chartSVG(b.String())
}

// envAnchor is the HTML id of an environment's card.
func envAnchor(pipelineName, env string) string { return "env-" + pipelineName + "-" + env }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
