"""A stand-in for the GitHub REST API endpoints ``ci github-apply`` uses (a fake, the one place the tests use one:
there is no GitHub offline, and the lab has no GitHub emulator).

It keeps state like GitHub does (an environment PUT becomes protection rules in its GET; a ruleset GET adds ids,
links and parameter defaults the PUT left out, and lists rules in its own order) and records every request with
its Authorization header, so the tests check what was sent, and that a second run sends no write at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

REPO = "acme/api"


@dataclass
class Request:
    method: str
    path: str
    body: Any
    authorization: str


@dataclass
class State:
    token: str
    teams: dict[str, int] = field(default_factory=lambda: {"maintainers": 4242})
    users: dict[str, int] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rulesets: dict[int, dict[str, Any]] = field(default_factory=dict)
    oidc: dict[str, Any] = field(default_factory=lambda: {"use_default": True})
    requests: list[Request] = field(default_factory=list)
    fail_on: tuple[str, str, int] | None = None  # (method, path, status): answer that request with an error
    next_id: int = 100

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


def _environment_from_put(state: State, name: str, body: dict[str, Any]) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    if body.get("wait_timer"):
        rules.append({"id": state.new_id(), "type": "wait_timer", "wait_timer": body["wait_timer"]})
    if body.get("reviewers"):
        reviewers = [
            {"type": r["type"], "reviewer": {"id": r["id"], "html_url": "https://x"}} for r in body["reviewers"]
        ]
        rules.append(
            {
                "id": state.new_id(),
                "type": "required_reviewers",
                "prevent_self_review": bool(body.get("prevent_self_review")),
                "reviewers": reviewers,
            }
        )
    policy = body.get("deployment_branch_policy")
    if policy:
        rules.append({"id": state.new_id(), "type": "branch_policy"})
    return {
        "id": state.new_id(),
        "name": name,
        "can_admins_bypass": body.get("can_admins_bypass", True),
        "protection_rules": rules,
        "deployment_branch_policy": policy,
    }


def _ruleset_as_get(ruleset_id: int, body: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for sent in reversed(body.get("rules", [])):  # an order of its own
        rule = json.loads(json.dumps(sent))
        if rule["type"] == "pull_request":
            rule["parameters"].setdefault("allowed_merge_methods", ["merge", "squash", "rebase"])
        rules.append(rule)
    return {
        **body,
        "rules": rules,
        "id": ruleset_id,
        "source_type": "Repository",
        "source": REPO,
        "node_id": f"RRS_{ruleset_id}",
        "current_user_can_bypass": "never",
        "_links": {"self": {"href": f"https://api.github.com/repos/{REPO}/rulesets/{ruleset_id}"}},
    }


class _Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        del format, args

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("GET")

    def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("PUT")

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = urlsplit(self.path).path
        state = self.state
        state.requests.append(Request(method, self.path, body, self.headers.get("Authorization", "")))
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            status, answer = 401, {"message": "Bad credentials"}
        elif state.fail_on and state.fail_on[:2] == (method, path):
            status, answer = state.fail_on[2], {"message": "Validation Failed"}
        else:
            status, answer = self._route(method, [unquote(p) for p in path.strip("/").split("/")], body)
        self._send(status, answer)

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:  # noqa: PLR0912
        state = self.state
        match parts:
            case ["orgs", "acme", "teams", slug] if method == "GET":
                return (200, {"id": state.teams[slug], "slug": slug}) if slug in state.teams else (404, _missing())
            case ["users", login] if method == "GET":
                return (200, {"id": state.users[login], "login": login}) if login in state.users else (404, _missing())
            case ["repos", "acme", "api", "actions", "oidc", "customization", "sub"]:
                if method == "PUT":
                    state.oidc = dict(body)
                    return 201, {}
                return 200, state.oidc
            case ["repos", "acme", "api", "rulesets"]:
                if method == "POST":
                    ruleset_id = state.new_id()
                    state.rulesets[ruleset_id] = _ruleset_as_get(ruleset_id, body)
                    return 201, state.rulesets[ruleset_id]
                listed = [
                    {k: r[k] for k in ("id", "name", "target", "source_type", "enforcement")}
                    for r in state.rulesets.values()
                ]
                return 200, listed
            case ["repos", "acme", "api", "rulesets", ruleset_id]:
                if int(ruleset_id) not in state.rulesets:
                    return 404, _missing()
                if method == "PUT":
                    state.rulesets[int(ruleset_id)] = _ruleset_as_get(int(ruleset_id), body)
                return 200, state.rulesets[int(ruleset_id)]
            case ["repos", "acme", "api", "environments", name]:
                if method == "PUT":
                    state.environments[name] = _environment_from_put(state, name, body)
                    state.policies.setdefault(name, [])
                return (200, state.environments[name]) if name in state.environments else (404, _missing())
            case ["repos", "acme", "api", "environments", name, "deployment-branch-policies"]:
                if name not in state.environments:
                    return 404, _missing()
                if method == "POST":
                    policy = {"id": state.new_id(), "node_id": "x", "name": body["name"], "type": body["type"]}
                    state.policies[name].append(policy)
                    return 200, policy
                policies = state.policies[name]
                return 200, {"total_count": len(policies), "branch_policies": policies}
            case ["repos", "acme", "api", "environments", name, "deployment-branch-policies", policy_id]:
                if method == "DELETE":
                    state.policies[name] = [p for p in state.policies[name] if p["id"] != int(policy_id)]
                    return 204, None
        return 404, _missing()

    def _send(self, status: int, answer: Any) -> None:
        payload = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _missing() -> dict[str, str]:
    return {"message": "Not Found"}


@contextmanager
def fake_github(state: State) -> Iterator[str]:
    """Serves ``state`` on a loopback port; yields the API's base URL."""
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
