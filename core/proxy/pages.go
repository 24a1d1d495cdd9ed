package proxy

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"

	"github.com/coralcdn/coral/core/coralurl"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5;color:#222}
input[type=text]{width:100%;padding:.4em;font-size:1em;box-sizing:border-box}button{margin-top:.5em;padding:.4em 1em;font-size:1em}
.err{color:#a00}code{background:#f3f3f3;padding:0 .2em}small{color:#777}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Form}}<p>Coral is a peer-to-peer content distribution network run by volunteers.
Type a web address to get its <em>Coralized</em> form: the same page, served by Coral's caching proxies.</p>
<form method="get" action="/"><label for="url">Web address</label>
<input type="text" id="url" name="url" value="{{.URL}}" placeholder="http://example.com/page.html" autofocus>
<button type="submit">Coralize</button></form>
{{if .Err}}<p class="err">{{.Err}}</p>{{end}}
{{if .Link}}<p>Coralized: <a href="{{.Link}}">{{.Link}}</a></p>{{end}}
<p><small>Names have the form <code>host.{{.Zone}}</code>, <code>host.port.{{.Zone}}</code>,
and <code>host[.port].https.{{.Zone}}</code> for HTTPS origins.</small></p>
{{else}}<p>{{.Text}}</p>{{end}}
<hr><small>Coral node {{.Token}}</small>
</body></html>
`))

type pageData struct {
	Title, Text, Zone, Token string
	Form                     bool
	URL, Link, Err           string
}

func (p *Proxy) writePage(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	d.Zone, d.Token = p.zone, p.token
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, d); err != nil {
		p.log.Error("page template", "err", err)
		http.Error(w, d.Title, status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Via", p.via())
	if tr := TraceFrom(r.Context()); tr != nil {
		tr.setResult("ERROR " + strconv.Itoa(status))
		if wantsTrace(r.Header) {
			h.Set(TraceHeader, tr.header())
		}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// errorPage answers with a short HTML explanation.
func (p *Proxy) errorPage(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	p.writePage(w, r, status, pageData{Title: title, Text: text})
}

// failurePage explains why the origin could not be used; fromNegative marks
// answers given from the negative cache without trying the origin.
func (p *Proxy) failurePage(w http.ResponseWriter, r *http.Request, f originFailure, fromNegative bool) {
	p.stats.errors.Add(1)
	text := f.text
	if fromNegative {
		text += " Coral tried recently and will not try again for a short while."
		w.Header().Set("Retry-After", strconv.Itoa(int(p.opts.NegativeTTL.Seconds())))
	}
	p.errorPage(w, r, f.status, f.title, text)
}

// serveFront is the page at the bare zone: it Coralizes a URL the visitor
// types (GET /?url=...).
func (p *Proxy) serveFront(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		p.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page only answers GET.")
		return
	}
	if r.URL.Path != "/" {
		p.errorPage(w, r, http.StatusNotFound, "Not found",
			"Coral serves Coralized names such as http://example.com."+p.zone+"/; this address is not one.")
		return
	}
	d := pageData{Title: "Coral", Form: true}
	status := http.StatusOK
	if raw := r.URL.Query().Get("url"); raw != "" {
		d.URL = raw
		_, port := coralurl.StripPort(r.Host)
		u, err := coralurl.CoralizeURL(raw, p.zone, port)
		if err != nil {
			d.Err = "Cannot Coralize that address: " + err.Error()
			status = http.StatusBadRequest
		} else {
			d.Link = u.String()
		}
	}
	p.writePage(w, r, status, d)
}
