"""``[tool.deployctl]`` in pyproject.toml -> frozen, validated models.

Unknown keys are rejected with a suggestion; every problem is reported at once
with the file, the dotted key path, the rule and the fix. This module imports no
other deployctl module: it raises ``ConfigProblemsError``, which the caller turns into
``errors.ConfigError`` (exit 2).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIG_ENV_VAR = "DEPLOYCTL_CONFIG"
TABLE = ("tool", "deployctl")

_NAME = r"^[a-z][a-z0-9-]{0,39}$"
Name = Annotated[str, Field(pattern=_NAME)]


class ConfigProblemsError(Exception):
    """Every problem found in one configuration file (rendered by ``ConfigError``)."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.hint = hint  # None: the keys listed are the fix


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(_Strict):
    """S3 backend for terraform state; locking by S3 lockfile (conditional write)."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    key: str = Field(min_length=1, pattern=r"^[^/].*\.tfstate$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    use_lockfile: bool = True


class Terraform(_Strict):
    root: Path
    backend: Backend
    # The environment's variables file (e.g. terraform/envs/dev.tfvars), passed as -var-file: one
    # root serves every environment, and the environments differ only by this file.
    var_file: Path | None = None
    vars: dict[str, str | int | bool] = {}
    plan_max_age_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)


class Aws(_Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    account_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    profile: str | None = None
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    # Where the AWS API lives when it is not AWS (the sandbox's moto server).
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")


class Cluster(_Strict):
    """Either an EKS cluster name (kubeconfig derived from AWS) or an explicit kubeconfig + context."""

    eks: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
    kubeconfig: Path | None = None
    context: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Cluster:
        if (self.eks is None) == (self.kubeconfig is None):
            raise ValueError("set exactly one of 'eks' (cluster name) or 'kubeconfig' (with optional 'context')")
        if self.context is not None and self.kubeconfig is None:
            raise ValueError("'context' needs 'kubeconfig'")
        return self


class ClusterSpec(Cluster):
    """One of an environment's several clusters (``clusters.NAME``): its access, region, registry and wave."""

    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")  # None: the environment's
    # The cluster's own registry (a per-region ECR): promote copies the image there and the cluster pulls from it.
    image_registry: str | None = Field(default=None, pattern=r"^[a-z0-9.-]+(:\d+)?$")
    wave: int = Field(default=1, ge=1, le=99)  # waves roll out in order, the clusters of one wave in parallel


_HM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_DAY, _DATE = rf"(mon|tue|wed|thu|fri|sat|sun) {_HM}", rf"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}(T{_HM})?"


class Freeze(_Strict):  # change windows: promote, deploy and apply are refused inside one (exit 4) unless overridden
    timezone: ZoneInfo = ZoneInfo("UTC")
    weekly: dict[Name, Annotated[str, Field(pattern=f"^{_DAY} - {_DAY}$")]] = {}  # "fri 16:00 - mon 08:00"
    dated: dict[Name, Annotated[str, Field(pattern=f"^{_DATE} - {_DATE}: .+")]] = {}  # "START - END: reason"
    holidays: list[date] = []  # whole days in ``timezone``


class Notify(_Strict):  # a webhook; its URL (a secret) is read from the environment variable ``url_env``
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    format: Literal["slack", "json"] = "json"
    events: (
        list[
            Literal[
                "promote-succeeded",
                "promote-failed",
                "promote-refused",
                "deploy-failed",
                "lock-taken-over",
                "freeze-overridden",
            ]
        ]
        | None
    ) = None  # None: every event


class Environment(_Strict):
    terraform: Terraform | None = None
    aws: Aws
    cluster: Cluster | None = None
    clusters: dict[Name, ClusterSpec] = {}  # several clusters rolled out wave by wave (instead of ``cluster``)
    # How long a wave must have run healthy before the next wave starts (its releases are verified again then).
    wave_soak_minutes: float = Field(default=0, ge=0, le=24 * 60)
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    values: Path | None = None
    # Promotion target: which environment it promotes from, and the release tag form.
    promote_from: str | None = None
    release_tag_pattern: str = "release-<semver>"
    allow_prerelease: bool = False
    # How long a digest must have run healthy in promote_from (from its ledger) before it may come here.
    promote_soak_minutes: float = Field(default=0, ge=0, le=30 * 24 * 60)
    # Where this environment pulls images when it is not the apps' registry (e.g. the prod account's
    # ECR): same repository names; promote copies the image into it (missing blobs, then the manifest).
    image_registry: str | None = Field(default=None, pattern=r"^[a-z0-9.-]+(:\d+)?$")
    # Protected environments only change through a reviewed, saved plan.
    protected: bool = False
    lock_timeout_seconds: int = Field(default=300, ge=0, le=3600)
    rollout_timeout_seconds: int = Field(default=600, ge=1, le=24 * 3600)  # a broken pod fails it at once
    freeze: Freeze = Freeze()
    notify: list[Notify] = []

    @model_validator(mode="after")
    def _deployable_or_terraform_only(self) -> Environment:
        if self.cluster is not None and self.clusters:
            raise ValueError("set 'cluster' (one) or 'clusters' (several, with waves), not both")
        if self.deployable and (self.namespace is None or self.values is None):
            raise ValueError("an environment with a 'cluster' also needs 'namespace' and 'values'")
        if not self.deployable and self.terraform is None:
            raise ValueError("an environment needs 'terraform', 'cluster', or both")
        if "<semver>" not in self.release_tag_pattern:
            raise ValueError("release_tag_pattern must contain '<semver>', e.g. 'release-<semver>'")
        return self

    @property
    def deployable(self) -> bool:
        return self.cluster is not None or bool(self.clusters)


class Image(_Strict):
    registry: str = Field(pattern=r"^[a-z0-9.-]+(:\d+)?$")
    repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")

    @property
    def ref(self) -> str:
        return f"{self.registry}/{self.repository}"


# How an app's image reaches its chart's values: chart value key (dotted) -> template. The placeholders are
# the image's parts; a key whose placeholders are not all known for an image (no tag, no commit) is left out.
IMAGE_PLACEHOLDERS = ("registry", "repository", "digest", "tag", "git_sha")
DEFAULT_IMAGE_VALUES = {
    "image.repository": "{registry}/{repository}",
    "image.digest": "{digest}",
    "image.tag": "{tag}",
    "build.gitSha": "{git_sha}",
}
_PLACEHOLDER = re.compile(r"{([^{}]*)}")
_VALUE_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class App(_Strict):
    # A local chart directory, or an OCI chart reference (oci://REGISTRY/PATH) pulled by helm at chart_version.
    chart: str = Field(min_length=1)
    chart_version: str | None = Field(default=None, pattern=r"^[0-9A-Za-z.+-]+$")
    release: Name
    image: Image
    image_values: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMAGE_VALUES))
    # Apps deployed before this one (promote and deploy roll out in this order).
    needs: list[Name] = []
    # A commit may not rebuild this app: then it keeps the digest it runs (the plan says so).
    optional: bool = False

    @model_validator(mode="after")
    def _chart_and_mapping(self) -> App:
        if self.chart.startswith("oci://") and self.chart_version is None:
            raise ValueError("an OCI chart (chart = 'oci://...') needs chart_version (a pinned version)")
        problems = []
        for key, template in self.image_values.items():
            if not _VALUE_KEY.match(key):
                problems.append(f"image_values.{key}: not a dotted values key (e.g. image.digest)")
            unknown = [p for p in _PLACEHOLDER.findall(template) if p not in IMAGE_PLACEHOLDERS]
            if unknown:
                problems.append(
                    f"image_values.{key}: unknown placeholder {{{unknown[0]}}} (known: "
                    + ", ".join(f"{{{p}}}" for p in IMAGE_PLACEHOLDERS)
                    + ")"
                )
        if not any("{digest}" in t for t in self.image_values.values()):
            problems.append("image_values: no key takes {digest}: the image could not be pinned by digest")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def local_chart(self) -> bool:
        return not self.chart.startswith("oci://")


class DeployctlConfig(_Strict):
    environments: dict[Name, Environment]
    apps: dict[Name, App] = {}
    state_dir: Path = Path(".deployctl")
    main_branch: str = "main"
    # The branch whose pushes plan and apply the terraform-only environments (ECR, state buckets).
    shared_branch: str = "shared-terraform"
    # A new project.version in pyproject.toml on main, once dev is deployed, creates its release tag (ci steps).
    release_on_version_bump: bool = False

    @model_validator(mode="after")
    def _references(self) -> DeployctlConfig:
        problems = []
        for name, env in self.environments.items():
            if env.promote_from is not None and env.promote_from not in self.environments:
                known = ", ".join(sorted(self.environments))
                problems.append(
                    f"environments.{name}.promote_from: unknown environment {env.promote_from!r} (known: {known})"
                )
            if env.promote_from == name:
                problems.append(f"environments.{name}.promote_from: an environment cannot promote from itself")
            if env.deployable and not self.apps:
                problems.append(f"environments.{name}: has a cluster but no [tool.deployctl.apps] are declared")
        for name, app in self.apps.items():
            unknown = [n for n in app.needs if n not in self.apps]
            if unknown:
                known = ", ".join(sorted(self.apps))
                problems.append(f"apps.{name}.needs: unknown app {unknown[0]!r} (known: {known})")
        cycle = _needs_cycle({name: app.needs for name, app in self.apps.items()})
        if cycle:
            problems.append(f"apps: needs form a cycle: {' -> '.join(cycle)} (an app cannot wait for itself)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _needs_cycle(needs: Mapping[str, list[str]]) -> list[str]:
    """A cycle in ``needs`` (as a path that returns to its start), or [] when there is none."""
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in needs.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if state.get(nxt) is None:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for start in sorted(needs):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return []


def deploy_order(apps: Mapping[str, App], only: list[str] | None = None) -> list[str]:
    """App names in the order they roll out: every app after the apps it ``needs`` (then by name)."""
    wanted = set(only if only is not None else apps)
    order: list[str] = []

    def add(name: str) -> None:
        if name in order:
            return
        for dependency in sorted(apps[name].needs):
            if dependency in wanted:
                add(dependency)
        order.append(name)

    for name in sorted(wanted):
        add(name)
    return order


class LoadedConfig(BaseModel):
    """The validated configuration plus where it came from (paths resolve against ``root``)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    settings: DeployctlConfig

    @property
    def root(self) -> Path:
        return self.path.parent

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.root / path

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.settings.state_dir)


def find_config(start: Path, explicit: str | None = None) -> Path:
    """The file to load: ``--config``, else ``$DEPLOYCTL_CONFIG``, else the nearest pyproject.toml upward
    that has a ``[tool.deployctl]`` table."""
    chosen = explicit or os.environ.get(CONFIG_ENV_VAR)
    if chosen:
        path, given = Path(chosen), "--config" if explicit else f"${CONFIG_ENV_VAR}"
        if not path.is_file():
            fix = f"pass --config the path of a pyproject.toml with [tool.deployctl], or unset {CONFIG_ENV_VAR}"
            raise ConfigProblemsError([f"{path.absolute()}: configuration file not found (from {given})"], fix)
        return path.resolve()
    for directory in (start.resolve(), *start.resolve().parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and _has_table(candidate):
            return candidate
    raise ConfigProblemsError(
        [f"no pyproject.toml with a [tool.deployctl] table in {start.resolve()} or any parent directory"],
        "run deployctl in your repository, pass --config PATH, or add [tool.deployctl] (README: Configuration)",
    )


def _has_table(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError:
        return False
    except tomllib.TOMLDecodeError:
        return "tool.deployctl" in text  # ours, with a syntax error: load() reports its line and column
    return isinstance(data.get("tool"), dict) and "deployctl" in data["tool"]


def load(path: Path, overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Parse and validate ``path``; ``overrides`` (a nested mapping) is merged over the table first
    (the sandbox uses this to point environments at local services)."""
    label = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigProblemsError([f"{path}: cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:  # "Expected ... (at line 3, column 5)": the position first
        at = re.search(r" \(at line (\d+), column (\d+)\)$", str(exc))
        where, what = (f"{path}:{at[1]}:{at[2]}", str(exc)[: at.start()]) if at else (str(path), str(exc))
        raise ConfigProblemsError([f"{where}: invalid TOML: {what}"], f"fix the syntax there ({path.name})") from None
    table: Any = data
    for key in TABLE:
        table = table.get(key) if isinstance(table, dict) else None
    if not isinstance(table, dict):
        raise ConfigProblemsError([f"{path}: no [tool.deployctl] table"], "add one (README: Configuration)")
    if overrides:
        table = _merge(table, overrides)
    try:
        settings = DeployctlConfig.model_validate(table)
    except ValidationError as exc:
        raise ConfigProblemsError([_describe(label, error) for error in exc.errors()]) from None
    return LoadedConfig(path=path, settings=settings)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(label: str, error: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    where = ".".join([*TABLE, *loc]) if loc else ".".join(TABLE)
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
        return f"{label}: {where}: unknown key ({fix})"
    if kind == "missing":
        return f"{label}: {where}: required key is missing (add it)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        message = f"{error.get('input')!r} does not match the expected form {pattern}"
    return f"{label}: {where}: {message}"


def _known_keys(loc: list[str]) -> list[str]:
    """The field names of the model at ``loc`` (dict keys such as environment names are skipped)."""
    model: Any = DeployctlConfig
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            break
        # a part that is not a field is a dict key (an environment or app name): stay on the value model
        if part in fields:
            model = _model_of(fields[part].annotation)
    fields = getattr(model, "model_fields", {})
    return list(fields)


def _model_of(annotation: Any) -> Any:
    """Find the BaseModel inside ``X | None`` or ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
