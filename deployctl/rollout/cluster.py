"""One environment's cluster for one command: helm and the Kubernetes API, in the environment's namespace.

Use cases act on a cluster only through this object, so a test can hand them another one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.adapters.helm import Helm, Release, Revision, not_found
from deployctl.adapters.helm_argv import Kube
from deployctl.adapters.kube.objects import ObjectReader
from deployctl.adapters.kube.release_records import (
    ReleaseRecord,
    delete_hook,
    delete_release_record,
    pending_release_records,
)
from deployctl.background import Background
from deployctl.core.errors import CommandFailedError, OperationError
from deployctl.rollout import watch
from deployctl.rollout.live import LiveRelease, live_release
from deployctl.rollout.states import Verdict
from deployctl.rollout.tracking import targets_in

log = logging.getLogger(__name__)
HOOK_POLL = 0.25


@dataclass(frozen=True)
class ClusterClient:
    kube: Kube
    helm: Helm
    namespace: str

    @property
    def helm_major(self) -> int:
        return self.helm.major

    def release(self, name: str) -> Release | None:
        return self.helm.release(name, self.namespace)

    def history(self, name: str) -> list[Revision]:
        return self.helm.history(name, self.namespace)

    def release_manifest(self, name: str) -> str:
        return self.helm.status(name, self.namespace).manifest

    def release_values(self, name: str) -> dict[str, Any]:
        return self.helm.values(name, self.namespace)

    def template(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        version: str | None = None,
    ) -> str:
        return self.helm.template(
            release=release,
            chart=chart,
            namespace=self.namespace,
            values_files=values_files,
            set_string=set_string,
            version=version,
        )

    def upgrade(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        description: str,
        version: str | None = None,
    ) -> Release:
        """``helm upgrade --install`` while its hook Jobs and Pods are watched: a hook that fails stops helm at
        once (it would wait for the hook until its timeout) and raises OperationError naming the hook, its pod,
        container and reason, with the diagnosis. The release is then left pending (or failed, as helm marks it
        on SIGTERM); the next deploy recovers it under the lock (``app.steps.recovery.recover_pending``)."""
        started = time.time()
        hooks: watch.HookWatch | None = None

        def upgrade() -> Release:
            try:
                return self.helm.upgrade(
                    release=release,
                    chart=chart,
                    namespace=self.namespace,
                    values_files=values_files,
                    set_string=set_string,
                    description=description,
                    version=version,
                )
            finally:
                if hooks is not None:
                    hooks.watch.wake()  # the loop below sees helm is done now, not at its next poll (issue 29)

        task = Background(upgrade, name=f"helm-upgrade-{release}")
        try:
            hooks = watch.HookWatch(self.kube, self.namespace, since=started)
        except BaseException:
            task.cancel("interrupted")
            raise
        failed: Verdict | None = None
        helm_failed = False  # helm gave up on its own before the watch said why
        try:
            while not task.done and failed is None:
                failed = hooks.failure(HOOK_POLL)
            helm_failed = task.error is not None
            if failed is None and helm_failed:
                failed = hooks.failure(HOOK_POLL)  # helm 4 fails a Failed hook Job itself: say which, and why
            if failed is not None:
                task.cancel(f"{failed.resource} failed ({failed.reason})")
        except BaseException:
            task.cancel("interrupted")  # Ctrl-C, SIGTERM: helm must not outlive us
            raise
        finally:
            hooks.stop()
        if failed is not None and (task.cancelled or helm_failed):
            raise OperationError(
                f"helm upgrade of {release} {'failed' if helm_failed else 'stopped'}: {failed.message}",
                f"helm waits for a hook until its timeout. Fix {failed.resource} (its image, command or what it "
                "needs) and roll forward: the next deploy recovers the release helm left",
                details=failed.details(),
            )
        return task.result()

    def test(self, release: str, *, timeout: float) -> Release:
        """``helm test`` while its test hooks (Jobs, Pods) are watched with the rollout's verdicts: a test that crashes
        or cannot pull stops helm at once and raises OperationError naming the hook, with its events and logs (helm
        would wait for it until its timeout). A test that fails by its exit code fails the same way. Returns the
        release as helm recorded the run (each test's phase).

        Removing the test pods is helm's, by each hook's ``helm.sh/hook-delete-policy`` (none given: helm uses
        ``before-hook-creation``): ``hook-succeeded`` and ``hook-failed`` when a run ends, ``before-hook-creation``
        at the next run. A run deployctl stopped never reaches helm's ``hook-failed`` clean-up, so that policy is
        applied here."""
        started = time.time()
        deadline = time.monotonic() + timeout
        task = Background(lambda: self.helm.test(release, self.namespace, timeout), name=f"helm-test-{release}")
        try:
            hooks = watch.HookWatch(self.kube, self.namespace, since=started)
        except BaseException:
            task.cancel("interrupted")
            raise
        failed: Verdict | None = None
        try:
            while not task.done and failed is None and time.monotonic() < deadline:
                failed = hooks.failure(HOOK_POLL)
            if failed is None and task.error is not None:
                failed = hooks.failure(HOOK_POLL)  # helm saw the test fail: say which, and why
            if not task.done:
                task.cancel(
                    f"{failed.resource} failed ({failed.reason})" if failed else f"timed out after {timeout:.0f}s"
                )
        except BaseException:
            task.cancel("interrupted")
            raise
        finally:
            hooks.stop()
        if failed is not None:
            if task.cancelled:
                self._delete_failed_test(failed.resource, hooks)
            raise OperationError(
                f"helm test of {release}: {failed.message}",
                "fix what the test found (or the test) and roll forward",
                details=failed.details(),
            )
        if task.cancelled:
            raise OperationError(f"helm test of {release} did not finish within {timeout:.0f}s")
        task.result()  # helm's own failure (no test hook failed that deployctl saw): its error
        return self.helm.status(release, self.namespace)

    def _delete_failed_test(self, resource: str | None, hooks: watch.HookWatch) -> None:
        """A test hook whose delete policy says ``hook-failed``: deleted as helm would have (its pods with it)."""
        kind, _, name = (resource or "").partition("/")
        obj = (hooks.watch.view.get(kind) or {}).get(name) or {}
        policy = ((obj.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook-delete-policy", "")
        if "hook-failed" in policy:
            delete_hook(self.kube, self.namespace, kind, name)

    def watch_release(self, manifest: str, *, timeout: float, on_progress: Callable[[str], None]) -> Verdict:
        """Watch every workload ``manifest`` (a release's rendered objects) rolls out, all at once, until all
        complete or the first fails; the verdict names the failing resource and carries the diagnosis."""
        return watch.watch_release(
            self.kube, self.namespace, targets_in(manifest), timeout=timeout, on_progress=on_progress
        )

    def live(self, name: str, release: Release | None = None) -> LiveRelease | None:
        """Release ``name`` as it runs now (``live.live_release``); None when it is not installed. ``release``:
        the revision a command just made (``upgrade``'s, with its manifest), else helm's latest is read."""
        current = release or self._latest(name)
        if current is None:
            return None
        if not current.manifest:
            current = self.helm.status(name, self.namespace)  # the manifest and hooks of that revision
        return live_release(self.kube, self.namespace, current)

    def _latest(self, name: str) -> Release | None:
        """helm's latest revision of ``name`` with its manifest and hooks, None when not installed: one ``helm
        status`` (issue 29: it was ``helm list`` then ``helm status``, per app, twice per promotion)."""
        try:
            found = self.helm.status(name, self.namespace)
        except CommandFailedError as exc:
            if not_found(exc.stderr_tail):
                return None
            raise
        return None if found.status == "uninstalled" else found  # the history an uninstall kept: not installed

    def pending_records(self, release: str) -> list[ReleaseRecord]:
        return pending_release_records(self.kube, self.namespace, release)

    def delete_record(self, record: ReleaseRecord) -> None:
        delete_release_record(self.kube, self.namespace, record)

    def reader(self) -> ObjectReader:
        return ObjectReader(self.kube)
