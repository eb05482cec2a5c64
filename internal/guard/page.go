package guard

import (
	"cmp"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/mergeguard/guard/internal/audit"
	"github.com/mergeguard/guard/internal/pr"
)

var pageTmpl = template.Must(template.New("decision").Funcs(template.FuncMap{
	"short": short,
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>merge-guard: {{.Outcome}} for {{if .Group}}a merge group of {{.Repo}}{{else}}{{.Repo}}#{{.Number}}{{end}}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
.o{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600}.allow{background:#dafbe1}.escalate{background:#fff8c5}.block,.error{background:#ffebe9}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}code{font-size:90%}</style></head>
<body>
<h1>merge-guard <span class="o {{.Outcome}}" id="outcome">{{.Outcome}}</span></h1>
{{if .Group}}<p id="group">Merge group <code>{{.Group}}</code> of {{.Repo}} at <code>{{short .HeadSHA}}</code>, with {{range $i, $n := .PRs}}{{if $i}}, {{end}}<a href="https://github.com/{{$.Repo}}/pull/{{$n}}">#{{$n}}</a>{{else}}no pull request the guard could find{{end}}; decided {{time .Time}} (decision <code>{{.ID}}</code>, policy revision <code>{{.Revision}}</code>).</p>
{{else}}<p><a href="https://github.com/{{.Repo}}/pull/{{.Number}}">{{.Repo}}#{{.Number}}</a> at <code>{{short .HeadSHA}}</code>, decided {{time .Time}} (decision <code>{{.ID}}</code>, policy revision <code>{{.Revision}}</code>).</p>{{end}}
{{if .Need}}<h2>What a human must do</h2><p id="need">{{.Need}}</p><p id="who"><strong>Who may:</strong> {{.Who}}</p>{{end}}
<h2>Rules</h2>
<table id="reasons"><tr><th>rule</th><th>outcome</th><th>message</th></tr>
{{range .Reasons}}<tr><td><code>{{.Rule}}</code></td><td>{{.Outcome}}</td><td>{{.Message}}{{range .Matches}}<br><code>{{.File}}:{{.Line}}: {{.Text}}</code>{{end}}</td></tr>
{{else}}<tr><td colspan="3">No rule applies.</td></tr>{{end}}
</table>
{{if not .Group}}<h2>History of this pull request</h2>
<table id="history"><tr><th>time</th><th>kind</th><th>SHA</th><th>actor</th><th>outcome</th><th>rules</th><th>reason</th></tr>
{{range .History}}<tr><td>{{time .Time}}</td><td>{{.Kind}}</td><td><code>{{short .HeadSHA}}</code></td><td>{{.Actor}}</td><td>{{.Outcome}}</td><td>{{join .Rules}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

// DecisionPage serves GET /decisions/{id}: the page behind a check run's
// Details link. A missing, wrong or expired signature is a 404, the same as
// an unknown decision, so ids cannot be probed.
func (g *Guard) DecisionPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		id := r.PathValue("id")
		q := r.URL.Query()
		rec, err := g.o.Store.Record(r.Context(), id)
		if err != nil || rec.Kind != "decision" ||
			!VerifyLink(g.o.LinkSecret, id, rec.Repository, q.Get("exp"), q.Get("sig"), g.o.Now()) {
			http.NotFound(w, r)
			return
		}
		var details struct {
			Result     pr.Decision `json:"result"`
			MergeGroup string      `json:"merge_group"` // a merge group's decision (PullRequest 0)
			PRs        []int       `json:"pull_requests"`
		}
		_ = json.Unmarshal(rec.Details, &details)
		var history []audit.Record
		if rec.PullRequest != 0 {
			if history, err = g.o.Store.PRHistory(r.Context(), rec.Repository, rec.PullRequest, 50); err != nil {
				http.Error(w, "could not read the history", http.StatusInternalServerError)
				return
			}
		}
		cfg := g.o.Config()
		owner, name, _ := strings.Cut(rec.Repository, "/")
		repo := pr.Repository{Owner: owner, Name: name, FullName: rec.Repository}
		data := map[string]any{
			"Outcome": rec.Outcome, "Repo": rec.Repository, "Number": rec.PullRequest, "HeadSHA": rec.HeadSHA,
			"Time": rec.Time, "ID": rec.ID, "Revision": rec.PolicyRevision, "Reasons": details.Result.Reasons,
			"History": history, "Who": whoMay(cfg, repo), "Group": "", "PRs": details.PRs,
		}
		if rec.PullRequest == 0 {
			data["Group"] = cmp.Or(strings.TrimPrefix(details.MergeGroup, "refs/heads/"), short(rec.HeadSHA))
		}
		switch pr.Outcome(rec.Outcome) {
		case pr.Escalate:
			data["Need"] = "An approving review on " + short(rec.HeadSHA) + " from a human who neither wrote nor committed to this pull request, or the comment /guard approve <reason> on it."
			if rec.PullRequest == 0 {
				data["Need"] = "Each pull request held above needs an approving review on its head from a human who neither wrote nor committed to it, or the comment /guard approve <reason> on it; then re-queue it."
			}
		case pr.Block:
			data["Need"] = "Wait for the freeze to end, or comment /guard override <reason> on the pull request to merge anyway."
		case pr.Error:
			data["Need"] = "The guard could not decide. Re-run the check; if it keeps failing, look at the guard's logs."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pageTmpl.Execute(w, data); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
			return
		}
	})
}
