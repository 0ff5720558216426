"""Whether a rollout would change a release (``unchanged``): helm's merge of values files, and what makes a new
revision, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from deployctl.rollout import unchanged

DEPLOYMENT = "kind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 1\n"
HOOK_JOB = "kind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-upgrade\n"

# (case, values files in order, what helm is given)
MERGES: list[tuple[str, list[Any], dict[str, Any]]] = [
    ("nothing", [], {}),
    ("an empty file", [None, {}], {}),
    ("a later file wins", [{"a": 1}, {"a": 2}], {"a": 2}),
    ("mappings merge key by key", [{"image": {"repository": "r", "tag": ""}}, {"image": {"tag": "v1", "digest": "d"}}],
     {"image": {"repository": "r", "tag": "v1", "digest": "d"}}),
    ("a list is replaced, not merged", [{"args": [1, 2]}, {"args": [3]}], {"args": [3]}),
    ("a scalar replaces a mapping", [{"image": {"tag": "x"}}, {"image": "r@d"}], {"image": "r@d"}),
    ("the first file is not changed", [{"a": {"b": 1}}, {"a": {"c": 2}}], {"a": {"b": 1, "c": 2}}),
]  # fmt: skip


@pytest.mark.parametrize(("case", "files", "merged"), MERGES, ids=[m[0] for m in MERGES])
def test_values_files_merge_as_helm_merges_them(case: str, files: list[Any], merged: dict[str, Any]) -> None:
    before = repr(files)
    assert unchanged.merged(files) == merged, case
    assert repr(files) == before, "the inputs are not modified"


SAME: dict[str, Any] = {
    "status": "deployed",
    "chart": "api-0.1.0",
    "planned_chart": "api-0.1.0",
    "values": {"image": {"digest": "d"}, "replicaCount": 1},
    "planned_values": {"replicaCount": 1.0, "image": {"digest": "d"}},
    "manifest": DEPLOYMENT,
    "planned_manifest": f"---\n# Source: api/templates/job.yaml\n{HOOK_JOB}---\n# Source: api/templates/d.yaml\n{DEPLOYMENT}",
    "drifted": [],
}

# (case, what differs from SAME, why a new revision, or None: unchanged)
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("the same release: hooks and layout do not count", {}, None),
    ("failed", {"status": "failed"}, "the release is failed"),
    ("pending", {"status": "pending-upgrade"}, "the release is pending-upgrade"),
    ("another chart version", {"planned_chart": "api-0.2.0"}, "the chart changes (api-0.1.0 -> api-0.2.0)"),
    ("a value changes", {"planned_values": {"replicaCount": 2, "image": {"digest": "d"}}}, "the values change"),
    ("a value added", {"planned_values": {**SAME["planned_values"], "build": {"gitSha": "abc"}}}, "the values change"),
    ("the git sha dropped", {"values": {**SAME["values"], "build": {"gitSha": "abc"}}}, "the values change"),
    ("a template edited without a version bump", {"planned_manifest": DEPLOYMENT.replace("1", "2")}, "the chart renders other objects"),
    ("scaled by hand", {"drifted": ["Deployment/api"]}, "live objects differ from the chart (Deployment/api): a new revision restores them"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "changes", "why"), CASES, ids=[c[0] for c in CASES])
def test_what_makes_a_new_revision(case: str, changes: dict[str, Any], why: str | None) -> None:
    given = {**SAME, **changes}
    read: list[str] = []

    def values() -> Any:
        read.append("values")
        return given["values"]

    def manifest() -> str:
        read.append("manifest")
        return str(given["manifest"])

    def drifted() -> list[str]:
        read.append("live")
        return list(given["drifted"])

    found = unchanged.difference(
        status=given["status"],
        chart=given["chart"],
        planned_chart=given["planned_chart"],
        values=values,
        planned_values=given["planned_values"],
        manifest=manifest,
        planned_manifest=given["planned_manifest"],
        drifted=drifted,
    )
    assert found == why, case
    if why is not None and ("release is" in why or "chart changes" in why):
        assert read == [], "the release's values, manifest and live objects are read only when they decide"
    if why is None:
        assert read == ["values", "manifest", "live"]
