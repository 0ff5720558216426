"""helm argv builders (pure, table-tested) and a thin adapter over the runner.

Helm 3 and 4 are both supported; the major version is detected once per run
(``helm version --template {{.Version}}``) and the argv is built for it. The
differences we rely on were checked against both binaries' ``upgrade --help``
(helm 3.19.0, helm 4.3.1):

* ``--wait``: a bool in helm 3; a strategy in helm 4 (``watcher``/``hookOnly``/``legacy``,
  default ``hookOnly`` when omitted). deployctl never passes it: it watches the rollout
  itself and fails fast, where ``--wait`` sits until its timeout.
* helm 4 applies server-side by default (``--server-side auto``): a field someone changed
  by hand (``kubectl scale``) then conflicts with helm's apply. A deploy restores what the
  chart says, so helm 4 gets ``--force-conflicts`` (helm 3's three-way merge already does that).
* ``--atomic`` (helm 3) became ``--rollback-on-failure`` (helm 4): not used, no automatic rollback.
* ``--disable-openapi-validation`` (both): checking the objects against the cluster's OpenAPI schema client-side
  was 60% of an upgrade's CPU (issue 29) and the API server checks them anyway: a field its schema lacks fails
  helm 4's server-side apply, and only warns otherwise, with or without the check.

Machine output only (``-o json``); never screen-scraped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.adapters.helm_argv import (
    HELM,
    Kube,
    get_values_argv,
    history_argv,
    parse_major,
    status_argv,
    template_argv,
    test_argv,
    upgrade_argv,
    version_argv,
)
from deployctl.core.errors import CommandFailedError, DeployctlError, OperationError, UsageError
from deployctl.runner import Runner

log = logging.getLogger(__name__)

PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")
NOT_FOUND = "release: not found"  # helm's storage error for a release without any revision (helm 3 and 4)


def not_found(stderr: str) -> bool:
    """Whether helm failed because the release has no revision ("Error: release: not found", exit 1). Any other
    failure (cluster unreachable, denied) is an error: a changed message fails loudly, never reads as absent."""
    return NOT_FOUND in stderr


# Helm's own message for a release stuck in a pending state (fallback detection only; the primary
# check reads the release's status (`Helm.release`) before upgrading). Tested in tests/unit/test_helm_args.py.
IN_PROGRESS_MARKER = "another operation (install/upgrade/rollback) is in progress"


@dataclass(frozen=True)
class Release:
    """A release as ``helm history``/``helm status`` report it."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str = ""
    app_version: str = ""
    updated: str = ""
    manifest: str = ""  # the rendered objects (only from upgrade/status JSON)
    hooks: tuple[tuple[str, str, str], ...] = ()  # (kind, name, phase of its last run): upgrade/status JSON only
    tests: tuple[tuple[str, str, str, str], ...] = ()  # ``helm test`` hooks, apart (+ delete policies): run on demand

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES


@dataclass(frozen=True)
class Revision:
    """One revision of a release in helm's history."""

    revision: int
    status: str
    chart: str = ""
    description: str = ""
    updated: str = ""
    app_version: str = ""


# --------------------------------------------------------------------------- argv builders (pure)


# --------------------------------------------------------------------------- parsers, pure


def parse_history(text: str) -> list[Revision]:
    """``helm history -o json`` as revisions."""
    rows = json.loads(text or "[]") or []
    return [
        Revision(
            revision=int(row["revision"]),
            status=str(row.get("status", "")),
            chart=str(row.get("chart", "")),
            description=str(row.get("description", "")),
            updated=str(row.get("updated", "")),
            app_version=str(row.get("app_version", "")),
        )
        for row in rows
    ]


def parse_release_json(text: str) -> Release:
    """The release document printed by ``helm upgrade -o json`` / ``helm status -o json``. helm 4 prints
    ``Pulled: ...``/``Digest: ...`` lines before it when it pulled an OCI chart: the document starts at ``{``."""
    start = text.find("{")
    doc: dict[str, Any] = json.loads(text[start:] if start >= 0 else text)
    info = doc.get("info", {}) or {}
    hooks = [_hook(h) for h in doc.get("hooks") or () if isinstance(h, dict)]
    chart_meta = (doc.get("chart", {}) or {}).get("metadata", {}) or {}
    return Release(
        name=str(doc.get("name", "")),
        namespace=str(doc.get("namespace", "")),
        revision=int(doc.get("version", 0)),
        status=str(info.get("status", "")),
        chart=f"{chart_meta.get('name', '')}-{chart_meta.get('version', '')}".strip("-"),
        app_version=str(chart_meta.get("appVersion", "")),
        updated=str(info.get("last_deployed", "")),
        manifest=str(doc.get("manifest", "")),
        hooks=tuple((kind, name, phase) for test, kind, name, phase, _ in hooks if not test),
        tests=tuple((kind, name, phase, policies) for test, kind, name, phase, policies in hooks if test),
    )


def _hook(hook: dict[str, Any]) -> tuple[bool, str, str, str, str]:
    events = [str(e) for e in hook.get("events") or ()]
    test = bool(events) and all(e in ("test", "test-success") for e in events)  # test-success: helm 2's, accepted
    phase = str((hook.get("last_run") or {}).get("phase") or "")
    policies = ",".join(str(p) for p in hook.get("delete_policies") or ())
    return test, str(hook.get("kind", "")), str(hook.get("name", "")), phase, policies


def is_in_progress_error(stderr: str) -> bool:
    """helm refused because another operation on the release is in progress (a pending release)."""
    return IN_PROGRESS_MARKER in stderr


# --------------------------------------------------------------------------- adapter


@dataclass(frozen=True)
class Helm:
    """One helm binary, its major version, and the cluster it talks to."""

    runner: Runner
    kube: Kube
    major: int
    binary: str = HELM
    env: Mapping[str, str] | None = None

    @classmethod
    def detect(cls, runner: Runner, kube: Kube, *, binary: str = HELM, env: Mapping[str, str] | None = None) -> Helm:
        result = runner.run(version_argv(binary), env=env, timeout=30)
        major = parse_major(result.stdout)
        log.debug("helm major version %d (%s)", major, result.stdout.strip())
        return cls(runner=runner, kube=kube, major=major, binary=binary, env=env)

    def release(self, release: str, namespace: str) -> Release | None:
        """The newest revision of ``release`` in any status, None when it was never installed. Read from its own
        history, not ``helm list --filter``: helm lists by decoding every release's every revision in the namespace
        before it filters (issue 29, bench/helm_lookup.py: 239 ms vs 91 ms at 15 apps x 10 revisions, growing with
        every app)."""
        argv = history_argv(release=release, namespace=namespace, kube=self.kube, binary=self.binary, max_revisions=1)
        hint = "check that the cluster is reachable (`deployctl doctor`) and the kubeconfig/context"
        try:
            result = self.runner.run(argv, env=self.env, timeout=60, hint=hint)
        except CommandFailedError as exc:
            if not_found(exc.stderr_tail):
                return None
            raise
        newest = max(parse_history(result.stdout), key=lambda r: r.revision, default=None)
        if newest is None or newest.status == "uninstalled":  # the history an uninstall kept: not installed
            return None
        return Release(
            name=release,
            namespace=namespace,
            revision=newest.revision,
            status=newest.status,
            chart=newest.chart,
            app_version=newest.app_version,
            updated=newest.updated,
        )

    def status(self, release: str, namespace: str) -> Release:
        """The current revision with its rendered manifest."""
        result = self.runner.run(
            status_argv(release=release, namespace=namespace, kube=self.kube, binary=self.binary),
            env=self.env,
            timeout=60,
        )
        return parse_release_json(result.stdout)

    def history(self, release: str, namespace: str) -> list[Revision]:
        result = self.runner.run(
            history_argv(release=release, namespace=namespace, kube=self.kube, binary=self.binary),
            env=self.env,
            timeout=60,
        )
        return parse_history(result.stdout)

    def test(self, release: str, namespace: str, timeout: float) -> str:
        argv = test_argv(release=release, namespace=namespace, kube=self.kube, timeout=timeout, binary=self.binary)
        return self.runner.run(argv, env=self.env, timeout=timeout + 30).stdout

    def values(self, release: str, namespace: str) -> dict[str, Any]:
        result = self.runner.run(
            get_values_argv(release=release, namespace=namespace, kube=self.kube, binary=self.binary),
            env=self.env,
            timeout=60,
        )
        values = json.loads(result.stdout or "{}")
        return values if isinstance(values, dict) else {}

    def template(
        self,
        *,
        release: str,
        chart: str | Path,
        namespace: str,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        version: str | None = None,
    ) -> str:
        argv = template_argv(
            release=release,
            chart=chart,
            namespace=namespace,
            values_files=values_files,
            set_string=set_string,
            binary=self.binary,
            version=version,
        )
        try:
            return self.runner.run(argv, env=self.env, timeout=120).stdout
        except CommandFailedError as exc:
            raise chart_error(exc) from None

    def upgrade(
        self,
        *,
        release: str,
        chart: str | Path,
        namespace: str,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        description: str | None = None,
        timeout: float = 300,
        version: str | None = None,
    ) -> Release:
        argv = upgrade_argv(
            major=self.major,
            release=release,
            chart=chart,
            namespace=namespace,
            kube=self.kube,
            values_files=values_files,
            set_string=set_string,
            binary=self.binary,
            description=description,
            version=version,
        )
        try:
            # not streamed: stdout is the release JSON (tens of kB), not progress
            result = self.runner.run(argv, env=self.env, timeout=timeout)
        except CommandFailedError as exc:
            raise chart_error(exc) from None
        return parse_release_json(result.stdout)


def chart_error(exc: CommandFailedError) -> DeployctlError:
    """Turn a failed helm run into the error the user needs: bad values/chart are a usage error (exit 2)."""
    tail = exc.stderr_tail
    if "values don't meet the specifications of the schema" in tail or "execution error at" in tail:
        # Schema violations and `fail` in templates: nothing was changed, the input is wrong.
        return UsageError(
            "the chart rejected the values:\n" + tail,
            "fix the values file (see charts/README.md: Values), then re-run; nothing was changed",
        )
    if is_in_progress_error(tail):
        return OperationError(
            "helm reports another operation in progress on the release:\n" + tail,
            "another deploy may be running outside deployctl; if not, re-run `deployctl deploy` (it recovers "
            "releases left pending by a killed run)",
        )
    return exc
