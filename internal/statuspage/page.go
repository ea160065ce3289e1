package statuspage

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"
)

// The frame every page shares: the head with the style sheet, a header,
// the live part, a footer and, on the live pages, the refresh script.

//go:embed assets/style.css
var styleCSS string

//go:embed assets/live.js
var liveJS string

// csp is the pages' Content-Security-Policy: nothing but the page's own
// style sheet and script (by hash), and fetches of the page itself. Text
// that reached the page unescaped could not run.
var csp = "default-src 'none'; style-src '" + hashOf(styleCSS) + "'; script-src '" + hashOf(liveJS) +
	"'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

// frame is what the shared template needs.
type frame struct {
	Title  string
	Live   template.HTML // the part the script refreshes
	Footer template.HTML
	Script bool // the page refreshes itself
	Now    time.Time
}

var frameTmpl = template.Must(template.New("frame").Funcs(template.FuncMap{
	"css": func() template.CSS { return template.CSS(styleCSS) },
	"js":  func() template.JS { return template.JS(liveJS) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="icon" href="data:,">
<style>{{css}}</style>
</head>
<body>
<header class="top"><h1>{{.Title}}</h1><span class="live" id="updated">{{if .Script}}live, updated {{.Now.Local.Format "15:04:05"}}{{else}}written {{.Now.Local.Format "2006-01-02 15:04:05 MST"}}{{end}}</span></header>
<main id="live">{{.Live}}</main>
<footer>{{.Footer}}</footer>
{{if .Script}}<script>{{js}}</script>{{end}}
</body>
</html>
`))

// render writes the whole page.
func render(f frame) ([]byte, error) {
	var b bytes.Buffer
	err := frameTmpl.Execute(&b, f)
	return b.Bytes(), err
}

// live serves a page whose live part is made by part on every request:
// GET / is the whole page, GET /?part=live the live part alone, which the
// page's script fetches every two seconds. Anything but GET and HEAD is
// refused; the pages change nothing.
func live(title string, footer template.HTML, part func(now time.Time) (template.HTML, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the status page is read-only: use GET", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/" {
			http.Error(w, "not found: the status page is /, the metrics /metrics", http.StatusNotFound)
			return
		}
		now := time.Now()
		body, err := part(now)
		if err != nil {
			http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		// The script shows when the part was made, in the server's zone
		// as every time on the page.
		body = template.HTML(`<span hidden data-rendered="`+clock(now)+`"></span>`) + body
		out := []byte(body)
		if r.URL.Query().Get("part") != "live" {
			if out, err = render(frame{Title: title, Live: body, Footer: footer, Script: true, Now: now}); err != nil {
				http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(out) // a client gone away is no error of ours
	})
}

// execute runs a template into HTML for the live part.
func execute(t *template.Template, data any) (template.HTML, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}
