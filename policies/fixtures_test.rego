# Fixtures shared by the policy tests: a minimal but complete input document
# (version 1) for an agent's PR on a Tuesday afternoon, and builders that vary
# it. Nothing here is named test_*, so none of it runs as a test.
package guard

head := "1111111111111111111111111111111111111111"

older := "0000000000000000000000000000000000000000"

bot := {"login": "coder[bot]", "type": "Bot", "agent": true}

agent_user := {"login": "ci-agent", "type": "User", "agent": true}

alice := {"login": "alice", "type": "User", "agent": false}

bob := {"login": "bob", "type": "User", "agent": false}

carol := {"login": "carol", "type": "User", "agent": false}

web_flow := {"login": "web-flow", "type": "User", "agent": false}

person(account) := {"name": account.login, "email": sprintf("%s@example.com", [account.login]), "account": account, "date": "2026-03-03T14:00:00Z"}

commit_by(author, committer) := {"sha": head, "message": "change", "author": person(author), "committer": person(committer)}

agent_input := {
	"version": 1,
	"event": {"name": "pull_request", "action": "synchronize", "sender": bot},
	"repository": {"owner": "acme", "name": "shop", "full_name": "acme/shop", "default_branch": "main", "private": true},
	"pull_request": {
		"number": 7,
		"title": "Bump deps",
		"state": "open",
		"draft": false,
		"merged": false,
		"author": bot,
		"head_sha": head,
		"head_ref": "bump",
		"head_repo": "acme/shop",
		"base_ref": "main",
		"base_sha": "2222222222222222222222222222222222222222",
		"labels": [],
		"auto_merge": null,
		"created_at": "2026-03-03T13:00:00Z",
		"updated_at": "2026-03-03T14:00:00Z",
	},
	"agent_pr": true,
	"agent_reasons": ["author @coder[bot] is an agent"],
	"commits": [commit_by(bot, web_flow)],
	"reviews": [],
	"files": [go_mod],
	"overrides": [],
	"time": {
		"now": "2026-03-03T19:00:00Z",
		"local": "2026-03-03T14:00:00-05:00",
		"timezone": "America/New_York",
		"weekday": "tue",
		"business_hours": true,
		"holiday": false,
		"freezes": [],
	},
	"quarantine_files": [],
	"marked_files": [],
}

# human_input is a PR by alice that no agent touched.
human_input := object.union(agent_input, {
	"pull_request": {"author": alice},
	"agent_pr": false,
	"agent_reasons": [],
	"commits": [commit_by(alice, alice)],
	"event": {"sender": alice},
})

with_changes(base, changes) := object.union(base, changes)

review(account, state, sha, at) := {
	"id": 100,
	"user": account,
	"state": state,
	"commit_id": sha,
	"submitted_at": at,
	"approver": true,
}

approved_by(account) := review(account, "APPROVED", head, "2026-03-03T15:00:00Z")

approve_override(sha) := {"kind": "approve", "actor": "carol", "reason": "looked at it", "head_sha": sha, "base_ref": "main", "rules": [], "freezes": [], "at": "2026-03-03T15:00:00Z"}

freeze_override(sha, base, freezes) := {"kind": "override", "actor": "carol", "reason": "hotfix", "head_sha": sha, "base_ref": base, "rules": ["merge_freeze", "incident_freeze"], "freezes": freezes, "at": "2026-03-03T15:00:00Z"}

# off_hours_input is agent_input on a Saturday afternoon.
off_hours_input := with_changes(agent_input, {"time": {
	"now": "2026-03-07T19:00:00Z",
	"local": "2026-03-07T14:00:00-05:00",
	"weekday": "sat",
	"business_hours": false,
}})

# go_mod is a changed file that is neither a test nor a quarantine list: as
# internal/quarantine annotates it, its added lines are dropped.
go_mod := {"filename": "go.mod", "status": "modified", "additions": 1, "deletions": 1, "added_lines": [], "test": false, "quarantine_list": false, "markers": []}

# with_marker(base, filename, kind, text) is base whose changes are go.mod and
# filename, a test file (a quarantine list when kind is "quarantine-list")
# whose added line 42, text, carries a marker of that kind; marked_files
# lists it.
with_marker(base, filename, kind, text) := with_changes(base, {"marked_files": [1], "files": [
	go_mod,
	{
		"filename": filename, "status": "modified", "additions": 2, "deletions": 0,
		"test": kind != "quarantine-list", "quarantine_list": kind == "quarantine-list",
		"added_lines": [{"number": 41, "text": "    // nothing to see here"}, {"number": 42, "text": text}],
		"markers": [{"line": 42, "text": text, "kind": kind}],
	},
]})

weekly_freeze := {"name": "friday-deploys", "kind": "weekly", "applies_to": "agents", "from": "2026-03-06T16:00:00-05:00", "until": "2026-03-09T08:00:00-04:00"}

window_freeze := {"name": "year-end", "kind": "window", "applies_to": "everyone", "from": "2026-12-20T00:00:00-05:00", "until": "2027-01-04T09:00:00-05:00"}

incident := {"name": "incident", "kind": "incident", "applies_to": "agents", "reason": "payments down", "by": "dave", "from": "2026-03-03T18:00:00Z"}

with_freezes(base, freezes) := with_changes(base, {"time": {"freezes": freezes}})

rules_of(d) := {r.rule | some r in d.reasons}

reasons_of(d, rule) := [r | some r in d.reasons; r.rule == rule]

only_reason(d, rule) := r if {
	rs := reasons_of(d, rule)
	count(rs) == 1
	r := rs[0]
}
