"""Every workload kind the rollout judges, one module each: Deployment, StatefulSet (partitions, OnDelete), DaemonSet,
Job and a bare Pod. Each module holds its state (read from its API object), which of its pods are the new revision's,
its verdict, and its ``KIND`` (``common.Kind``): ``KINDS`` registers them. Adding a kind is one module here (and its
line below), plus its tests; ``tracking``, ``live`` and the watch read nothing but ``KINDS``.

A verdict takes the workload's state, the pods of its new revision and a ``signals.Context``, and says progressing,
complete or failed. A failure signal of a new pod (``signals``) or of the controller wins over the counts; complete
is what ``kubectl rollout status`` waits for, with kstatus' and kubedog's rules for StatefulSet partitions and
OnDelete.
"""

from __future__ import annotations

from deployctl.rollout.kinds import daemonset, deployment, job, pod, statefulset
from deployctl.rollout.kinds.common import Kind

KINDS: dict[str, Kind] = {k.name: k for k in (deployment.KIND, statefulset.KIND, daemonset.KIND, job.KIND, pod.KIND)}


def lists(kinds: set[str] | tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """The list calls of ``kinds`` (registered ones) and of the kinds their pods are found through."""
    found: dict[str, tuple[str, str]] = {}
    for name in kinds:
        kind = KINDS.get(name)
        if kind is not None:
            found |= {kind.name: kind.list_call, **kind.via}
    return found
