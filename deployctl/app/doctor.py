"""``deployctl doctor``: which tools are installed, their versions, and whether each environment is reachable.

Its exit code is the one any other command would give for the same cause (README "Exit codes"): 2 when a tool is
missing or older than its minimum (a command needing it would stop there), else 1 when an environment's endpoint is
unreachable, else 0. Any BAD line makes ``ok`` false.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from deployctl.config import LoadedConfig
from deployctl.core.errors import DeployctlError, ExitCode
from deployctl.runner import Runner


@dataclass(frozen=True)
class ToolCheck:
    name: str
    found: bool
    version: str | None
    minimum: str
    ok: bool
    note: str = ""


@dataclass(frozen=True)
class EnvCheck:
    name: str
    endpoint: str
    reachable: bool
    note: str = ""


@dataclass(frozen=True)
class DoctorResult:
    tools: tuple[ToolCheck, ...]
    environments: tuple[EnvCheck, ...]
    command: str = "doctor"

    @property
    def healthy(self) -> bool:
        return self.exit_code is ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        if not all(t.ok for t in self.tools):
            return ExitCode.USAGE  # what a command needing the tool exits with (ToolNotFoundError)
        if not all(e.reachable for e in self.environments):
            return ExitCode.FAILED  # an endpoint unreachable: the operation would fail
        return ExitCode.OK

    def data(self) -> Mapping[str, Any]:
        return {
            "healthy": self.healthy,
            "tools": [asdict(t) for t in self.tools],
            "environments": [asdict(e) for e in self.environments],
        }

    def text(self) -> Sequence[str]:
        lines = ["tools:"]
        for t in self.tools:
            mark = "ok " if t.ok else "BAD"
            found = t.version if t.found else "not found"
            note = f" {t.note}" if t.note else ""
            lines.append(f"  {mark} {t.name:<10} {found or '?':<12} (minimum {t.minimum}){note}")
        if self.environments:
            lines.append("environments:")
            for e in self.environments:
                mark = "ok " if e.reachable else "BAD"
                lines.append(f"  {mark} {e.name:<10} {e.endpoint}{' ' + e.note if e.note else ''}")
        return lines


# (tool, argv, minimum version, how to read the version, note)
_TOOLS: tuple[tuple[str, list[str], tuple[int, ...], str], ...] = (
    ("terraform", ["terraform", "version", "-json"], (1, 10), "S3 lockfile locking needs >= 1.10"),
    ("helm", ["helm", "version", "--template", "{{.Version}}"], (3, 14), "helm 3 (>= 3.14) or helm 4"),
    ("kubectl", ["kubectl", "version", "--client", "-o", "json"], (1, 28), ""),
)
_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(tool: str, output: str) -> str | None:
    """The version a tool printed (JSON for terraform/kubectl, text for helm)."""
    text = output.strip()
    if tool == "terraform":
        text = str(json.loads(text).get("terraform_version", ""))
    elif tool == "kubectl":
        text = str(json.loads(text).get("clientVersion", {}).get("gitVersion", ""))
    match = _VERSION_RE.search(text)
    return match.group(0).lstrip("v") if match else None


def _meets(version: str, minimum: tuple[int, ...]) -> bool:
    parts = tuple(int(p) for p in version.split("-")[0].split(".")[: len(minimum)])
    return parts >= minimum


def check_tools(runner: Runner) -> tuple[ToolCheck, ...]:
    checks = []
    for name, argv, minimum, note in _TOOLS:
        wanted = ".".join(map(str, minimum))
        try:
            result = runner.run(argv, timeout=20)
            version = parse_version(name, result.stdout)
        except (DeployctlError, ValueError):
            checks.append(ToolCheck(name, False, None, wanted, False, "install it, then re-run `deployctl doctor`"))
            continue
        ok = version is not None and _meets(version, minimum)
        checks.append(ToolCheck(name, True, version, wanted, ok, "" if ok else note))
    return tuple(checks)


def check_environments(config: LoadedConfig, names: Sequence[str] | None = None) -> tuple[EnvCheck, ...]:
    """Whether each environment's AWS API endpoint accepts a TCP connection.

    A TCP check (no credentials, no boto3) keeps doctor fast and offline-safe; the
    credentials themselves are exercised by the first real command.
    """
    checks = []
    for name, env in config.settings.environments.items():
        if names and name not in names:
            continue
        endpoint = env.aws.endpoint_url or f"https://sts.{env.aws.region}.amazonaws.com"
        reachable, note = _tcp_reachable(endpoint)
        checks.append(EnvCheck(name, endpoint, reachable, note))
    return tuple(checks)


def _tcp_reachable(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True, ""
    except OSError as exc:
        return False, f"unreachable: {exc.strerror or exc}"


def doctor(runner: Runner, config: LoadedConfig | None) -> DoctorResult:
    tools = check_tools(runner)
    environments = check_environments(config) if config is not None else ()
    return DoctorResult(tools=tools, environments=environments)
