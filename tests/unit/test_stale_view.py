"""A watch's view that still shows a workload's spec from before helm's change (the previous digest, rolled out and
complete) never makes the new revision "complete" (a make test run recorded a good fix failed this way)."""

from __future__ import annotations

from deployctl.rollout.signals import VerdictContext
from deployctl.rollout.tracking import ManifestWorkload, release_verdict

OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64


def deployment(digest: str) -> dict[str, object]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "api", "uid": "u1", "generation": 3, "annotations": {}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "api", "image": f"r/api@{digest}"}]}}},
        "status": {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                   "readyReplicas": 1},
    }  # fmt: skip


def test_a_view_of_the_previous_spec_is_not_this_revisions_rollout() -> None:
    view = {"Deployment": {"api": deployment(OLD)}, "ReplicaSet": {}, "Pod": {}}
    target = ManifestWorkload("Deployment", "api", NEW)
    verdict = release_verdict([target], view, VerdictContext())
    assert verdict.state == "progressing" and f"waiting for Deployment/api to show {NEW}" in verdict.message
    assert release_verdict([ManifestWorkload("Deployment", "api", OLD)], view, VerdictContext()).state == "complete"
