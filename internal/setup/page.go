package setup

import "html/template"

const pageHead = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<title>Merge Guard setup</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}
code{background:#f3f3f3;padding:0 .2em}button{font-size:1.1em;padding:.5em 1.2em}</style>
</head><body>
`

var pageTmpl = template.Must(template.New("page").Parse(pageHead + `<h1>Create the {{.Name}} GitHub App</h1>
<p>The button sends Merge Guard's app manifest to <a href="{{.Web}}">{{.Web}}</a>, which creates a private GitHub App
owned by {{if .Org}}the organization <b>{{.Org}}</b>{{else}}your personal account{{end}}.
You may change its name there (names are unique across GitHub).</p>
<ul>
<li>Webhook: <code>{{.Hook}}</code></li>
<li>Permissions: {{range $i, $p := .Permissions}}{{if $i}}, {{end}}<code>{{$p}}</code>{{end}}</li>
<li>Events: {{range $i, $e := .Events}}{{if $i}}, {{end}}<code>{{$e}}</code>{{end}}</li>
</ul>
<form action="{{.Action}}" method="post">
<input type="hidden" name="manifest" value="{{.Manifest}}">
<button type="submit">Create GitHub App</button>
</form>
<p>GitHub then sends you back here, and guard setup writes the app's credentials to <code>{{.Path}}</code>.</p>
</body></html>
`))

var doneTmpl = template.Must(template.New("done").Parse(pageHead + `<h1>{{.Name}} is created</h1>
<p>Its credentials are in <code>{{.Path}}</code> (mode 0600). Next, install the app on your organization:</p>
<p><a href="{{.Install}}">{{.Install}}</a></p>
<p>The remaining steps are in your terminal. You can close this page.</p>
</body></html>
`))

var messageTmpl = template.Must(template.New("message").Parse(pageHead + `<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
</body></html>
`))
