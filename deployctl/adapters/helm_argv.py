"""helm's command lines, pure and table-tested: helm 3 and 4, the token never on a command line (the kubeconfig's
exec credential)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployctl.core.errors import OperationError, UsageError

HELM = "helm"


_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Kube:
    """How helm reaches the cluster: a kubeconfig file and optionally a context in it."""

    kubeconfig: Path
    context: str | None = None

    def flags(self) -> list[str]:
        flags = ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            flags += ["--kube-context", self.context]
        return flags


def version_argv(binary: str = HELM) -> list[str]:
    """``helm version``'s command line: the version alone (``parse_major`` reads it)."""
    return [binary, "version", "--template", "{{.Version}}"]


def parse_major(text: str) -> int:
    """helm's major version (3 or 4) from ``helm version``'s output; an OperationError for another."""
    match = _VERSION_RE.search(text)
    if match is None:
        raise OperationError(f"cannot read the helm version from {text.strip()!r}", "install helm 3.14+ or helm 4")
    major = int(match.group(1))
    if major not in (3, 4):
        raise OperationError(f"helm {match.group(0)} is not supported", "install helm 3.14+ or helm 4")
    return major


def _set_string_flags(values: Mapping[str, str]) -> list[str]:
    # --set-string, never --set: an all-digit short sha would become a number and fail the schema.
    flags: list[str] = []
    for key, value in values.items():
        if "," in value or "\\" in value:
            raise UsageError(f"value for {key} contains ',' or '\\', which helm --set-string cannot carry: {value!r}")
        flags += ["--set-string", f"{key}={value}"]
    return flags


def _chart_flags(chart: str | Path, version: str | None) -> list[str]:
    """``--version`` for a chart pulled from a registry; ``--plain-http`` for one on this machine (the
    sandbox's registry speaks HTTP, as deployctl's own registry client does for loopback hosts)."""
    flags = ["--version", version] if version else []
    host = str(chart).removeprefix("oci://").split("/", 1)[0].rsplit(":", 1)[0]
    if str(chart).startswith("oci://") and host in ("127.0.0.1", "localhost", "[::1]"):
        flags.append("--plain-http")
    return flags


def _values_flags(values_files: Sequence[Path]) -> list[str]:
    flags: list[str] = []
    for path in values_files:
        flags += ["-f", str(path)]
    return flags


def upgrade_argv(
    *,
    major: int,
    release: str,
    chart: str | Path,
    namespace: str,
    kube: Kube,
    values_files: Sequence[Path] = (),
    set_string: Mapping[str, str] | None = None,
    binary: str = HELM,
    description: str | None = None,
    version: str | None = None,
) -> list[str]:
    """``helm upgrade --install`` without any wait: deployctl watches the rollout itself. ``chart`` is a
    directory or an ``oci://`` reference, pulled at ``version``."""
    argv = [binary, "upgrade", release, str(chart), "--install", "--namespace", namespace, "--create-namespace"]
    argv += _chart_flags(chart, version)
    argv += _values_flags(values_files)
    argv += _set_string_flags(set_string or {})
    if description:
        argv += ["--description", description]
    argv += ["--disable-openapi-validation"]  # see ``deployctl.adapters.helm``'s docstring
    if major >= 4:
        argv += ["--force-conflicts"]
    argv += ["--output", "json", *kube.flags()]
    return argv


def template_argv(
    *,
    release: str,
    chart: str | Path,
    namespace: str,
    values_files: Sequence[Path] = (),
    set_string: Mapping[str, str] | None = None,
    binary: str = HELM,
    version: str | None = None,
) -> list[str]:
    """``helm template``: the chart rendered with the same values a deploy would use (an ``oci://`` chart is
    pulled at ``version``)."""
    argv = [binary, "template", release, str(chart), "--namespace", namespace]
    argv += _chart_flags(chart, version)
    argv += _values_flags(values_files)
    argv += _set_string_flags(set_string or {})
    return argv


def status_argv(*, release: str, namespace: str, kube: Kube, binary: str = HELM) -> list[str]:
    """``helm status`` of a release as JSON."""
    return [binary, "status", release, "--namespace", namespace, "--output", "json", *kube.flags()]


def test_argv(*, release: str, namespace: str, kube: Kube, timeout: float, binary: str = HELM) -> list[str]:
    """``helm test`` (helm 3 and 4 alike); no ``--logs``: deployctl reads a failed test's logs (``diagnosis``)."""
    return [binary, "test", release, "--namespace", namespace, "--timeout", f"{max(1, int(timeout))}s", *kube.flags()]


def history_argv(*, release: str, namespace: str, kube: Kube, binary: str = HELM, max_revisions: int = 20) -> list[str]:
    """``helm history`` of a release as JSON, its newest ``max_revisions``."""
    return [binary, "history", release, "--namespace", namespace, "--max", str(max_revisions),
            "--output", "json", *kube.flags()]  # fmt: skip


def get_values_argv(*, release: str, namespace: str, kube: Kube, binary: str = HELM) -> list[str]:
    """The user-supplied values of the live release (``-f`` files and ``--set`` merged)."""
    return [binary, "get", "values", release, "--namespace", namespace, "--output", "json", *kube.flags()]
