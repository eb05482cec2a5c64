#!/usr/bin/env python3
"""Extracts the schemas Merge Guard's fake GitHub and client are checked against.

Usage (outside the repository):
    npm install --prefix /tmp/oa @octokit/openapi
    python3 testdata/github/extract.py \
        /tmp/oa/node_modules/@octokit/openapi/generated/api.github.com.json \
        > testdata/github/openapi-extract.json

Keeps only validation keywords (type, nullable, required, properties, items,
enum, anyOf, oneOf, allOf, format, $ref, additionalProperties, maxLength,
minLength, maxItems, minItems) of the selected operations and of the
component schemas they reference.
"""
import json
import sys

OPS = [
    ("post", "/repos/{owner}/{repo}/check-runs", "201", True),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}", "200", True),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "200", False),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "200", False),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", "200", False),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files", "200", False),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}", "200", False),
    ("get", "/repos/{owner}/{repo}/pulls", "200", False),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "200", False),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments", "201", True),
    ("post", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", "201", True),
    ("get", "/orgs/{org}/teams/{team_slug}", "200", False),
    ("get", "/orgs/{org}/teams/{team_slug}/memberships/{username}", "200", False),
    ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission", "200", False),
]
KEEP = {"type", "nullable", "required", "properties", "items", "enum", "anyOf",
        "oneOf", "allOf", "format", "$ref", "additionalProperties",
        # GitHub's limits: a check run's output.summary and text at most
        # 65535 characters, at most 3 actions, an action's label at most 20…
        "maxLength", "minLength", "maxItems", "minItems"}


def prune(node, refs):
    if isinstance(node, list):
        return [prune(n, refs) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "additionalProperties":
            out[k] = prune(v, refs) if isinstance(v, dict) else v
        elif k == "properties":
            out[k] = {name: prune(s, refs) for name, s in v.items()}
        elif k == "$ref":
            refs.add(v.rsplit("/", 1)[1])
            out[k] = v
        elif k in KEEP:
            out[k] = prune(v, refs)
    return out


def main():
    spec = json.load(open(sys.argv[1]))
    comps = spec["components"]["schemas"]
    refs = set()
    ops = {}
    for method, path, status, with_request in OPS:
        op = spec["paths"][path][method]
        entry = {"response": prune(op["responses"][status]["content"]["application/json"]["schema"], refs)}
        if with_request:
            entry["request"] = prune(op["requestBody"]["content"]["application/json"]["schema"], refs)
        ops[method.upper() + " " + path] = entry
    schemas = {}
    todo = sorted(refs)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        more = set()
        schemas[name] = prune(comps[name], more)
        todo.extend(sorted(more - set(schemas)))
    json.dump({"source": "@octokit/openapi " + spec["info"]["version"] + " api.github.com.json",
               "operations": ops, "schemas": dict(sorted(schemas.items()))},
              sys.stdout, indent=1, sort_keys=True)
    print()


main()
