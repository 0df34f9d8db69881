package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/ferry-dev/ferry/internal/promotion"
	"github.com/ferry-dev/ferry/internal/traceid"
)

// page is what the layout renders around a page's content.
type page struct {
	Title string
	// Nav names the navigation entry to mark as current.
	Nav string
	// Watch says which promotion changes refresh the page: "*" for any, a
	// promotion ID, or "" for none.
	Watch string
	// Follow is the ID of a running promotion whose step output the page
	// streams, if any.
	Follow string
	Data   any

	Visitor *visitor
}

// pageNames are the templates, each parsed with the layout.
var pageNames = []string{"signin", "error", "overview", "promotion", "inbox", "executive", "oncall"}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page; with ?partial=1 it writes only the page's main
// content, which the page's script swaps in when something changed.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, v *visitor, status int, name string, p page) {
	p.Visitor = v
	tmpl := "layout.html"
	if r.URL.Query().Get("partial") == "1" {
		tmpl = "main"
	}
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		d.log.Error("render page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; the server log has the cause", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorData is what the error page shows.
type errorData struct {
	Status  int
	Text    string
	Message string
}

// fail shows err as an error page with its status.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, v *visitor, err error) {
	status, msg := statusOf(err)
	if status >= 500 {
		d.log.Error("dashboard request", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if v == nil {
		v = &visitor{}
	}
	d.render(w, r, v, status, "error", page{Title: http.StatusText(status),
		Data: errorData{Status: status, Text: http.StatusText(status), Message: msg}})
}

// redirect answers a form submission with a redirect to a page.
func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// look is how a state is shown: an icon and a word, never colour alone.
type look struct {
	Icon  string
	Label string
	Class string
}

// stateLook returns how a promotion, step or gate state is shown.
func stateLook(state string) look {
	label := strings.ReplaceAll(state, "_", " ")
	switch state {
	case "succeeded", "pass", "successful", "approve", "approved":
		return look{"✓", label, "ok"}
	case "failed", "rollback_failed", "rejected", "fail", "reject", "error":
		return look{"✗", label, "bad"}
	case "rolled_back", "rolling_back":
		return look{"↺", label, "warn"}
	case "aborted", "interrupted":
		return look{"■", label, "muted"}
	case "superseded":
		return look{"⤳", label, "muted"}
	case "queued", "pending", "waiting":
		return look{"◷", label, "muted"}
	case "gating", "awaiting_approval", "paused", "inconclusive":
		return look{"‖", label, "wait"}
	case "deploying", "verifying", "running", "watching":
		return look{"▶", label, "run"}
	case "":
		return look{"○", "nothing yet", "muted"}
	}
	return look{"•", label, "muted"}
}

// traceID returns the trace ID of a promotion, derived from its ID as the
// engine's spans carry it (package traceid).
func traceID(id string) string { return traceid.String(id) }

// shortID returns the first 8 characters of an ID.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// shortDigest shortens "sha256:HEX" to its first 12 hex digits.
func shortDigest(d string) string {
	algo, hexs, ok := strings.Cut(d, ":")
	if !ok || len(hexs) <= 12 {
		return d
	}
	return algo + ":" + hexs[:12] + "…"
}

func formatTime(t any) string {
	switch t := t.(type) {
	case time.Time:
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	case *time.Time:
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	}
	return "—"
}

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// formatDuration rounds a duration for people: "1h05m", "3m20s", "850ms".
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%.1fd", d.Hours()/24)
}

var funcs = template.FuncMap{
	"look":        func(v any) look { return stateLook(fmt.Sprint(v)) },
	"shortID":     shortID,
	"shortDigest": shortDigest,
	"time":        formatTime,
	"iso":         isoTime,
	"duration":    formatDuration,
	"traceID":     traceID,
	"join":        strings.Join,
	"terminal":    func(s promotion.State) bool { return s.Terminal() },
	"str":         func(v any) string { return fmt.Sprint(v) },
	"percent": func(f *float64) string {
		if f == nil {
			return "no data"
		}
		return fmt.Sprintf("%.0f%%", *f*100)
	},
	"durp": func(d *time.Duration) string {
		if d == nil {
			return "no data"
		}
		return formatDuration(*d)
	},
	"add":    func(a, b int) int { return a + b },
	"labels": labelList,
	"json":   func(raw json.RawMessage) string { return string(raw) },
}
