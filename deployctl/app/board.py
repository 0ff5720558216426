"""``deployctl board``: the release board, one page of what runs where, what happened lately, what waits.

Per deployable environment, read at once (no lock: the board only reads): the ledger (newest ``history``
entries), the values file, and each app's live release judged by the one definition of healthy (as
``status`` does). An environment that cannot be read is shown with why; the others still render. Then the
release tags from git and the commit subjects, and ``board_model``/``board_render`` make the page: HTML
(self-contained) written to a file, or Markdown (CI job summaries).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deployctl.adapters import git
from deployctl.app.context import Contexts, EnvContext
from deployctl.app.steps import verification
from deployctl.board import model as board_model
from deployctl.board import render as board_render
from deployctl.board import render_md
from deployctl.config import App, deploy_order
from deployctl.core.errors import DeployctlError, UsageError
from deployctl.ledger.audit import LedgerProblem
from deployctl.ledger.entry import Entry
from deployctl.release import chartvalues, windows
from deployctl.rollout.cluster import ClusterClient

HISTORY = 500  # ledger entries read per environment
FIELD = "\x1f"


@dataclass(frozen=True)
class BoardResult:
    board: board_model.Board
    path: Path | None  # where the page was written; None: Markdown printed
    markdown: str = ""
    command: str = "board"

    def data(self) -> Mapping[str, Any]:
        return {"path": str(self.path) if self.path else None, **self.board.data()}

    def text(self) -> Sequence[str]:
        if self.path is None:
            return self.markdown.rstrip("\n").splitlines()
        lines = [f"board written: {self.path}"]
        for column in self.board.columns:
            cells = [self.board.cell(column.env, app) for app in self.board.apps]
            healthy = sum(c.state == "healthy" for c in cells)
            failed = sum(e.failed for e in column.timeline)
            state = f"{healthy}/{len(cells)} apps healthy, {failed} failed of the last {len(column.timeline)} rollouts"
            lines.append(f"  {column.env}: {column.problem or state}; {column.freeze}")
        lines += [f"  waiting: {w.env} {w.app + ' ' if w.app else ''}{w.what[:19]}" for w in self.board.waiting]
        return lines


@dataclass
class _Facts:
    """What was read of one environment (each part may have failed: ``problems``, part -> why)."""

    entries: list[Entry] = field(default_factory=list)
    live: dict[str, board_model.Live] | None = None
    # several clusters: each one's live releases (None: unreadable, ``problems["cluster NAME"]`` says why)
    clusters: dict[str, dict[str, board_model.Live] | None] = field(default_factory=dict)
    pinned: dict[str, str | None] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # history | values file | cluster -> why
    ledger_problems: tuple[LedgerProblem, ...] = ()  # a deleted, rewritten or corrupt entry, a skewed clock

    def problem(self) -> str:
        """Every problem once: parts that failed for the same reason (one unreachable AWS) are named together."""
        by_reason: dict[str, list[str]] = {}
        for part, why in self.problems.items():
            by_reason.setdefault(why, []).append(part)
        return "; ".join(f"{' and '.join(parts)} unreadable: {why}" for why, parts in by_reason.items())


def board(
    contexts: Contexts,
    *,
    envs: Sequence[str] = (),
    limit: int = 10,
    out: Path | None = None,
    markdown: bool = False,
    history: int = HISTORY,
    now: datetime | None = None,
) -> BoardResult:
    """Read every environment (in parallel), then render. ``out`` None: HTML to ``<state_dir>/board.html``, or
    with ``markdown`` the Markdown returned for printing."""
    config = contexts.config
    settings = config.settings
    names = list(envs) or [name for name, env in settings.environments.items() if env.deployable]
    for name in names:
        contexts[name].require_deployable()
    if not names:
        raise UsageError("no deployable environment to show", "add an environment with a cluster")
    apps = tuple(deploy_order(settings.apps))
    now = now or datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="board") as pool:
        facts = dict(zip(names, pool.map(lambda n: _read(contexts[n], apps, history), names), strict=True))
    notes = [f"the ledger of {name}: {p.describe()}" for name, f in facts.items() for p in f.ledger_problems]
    commits = {
        c
        for f in facts.values()
        for e in f.entries
        if (c := e.commit) is not None and e.action in ("deploy", "promote")
    }
    commits |= {lv.git_sha for f in facts.values() for lv in (f.live or {}).values() if lv.git_sha}
    subjects = _subjects(contexts, commits, notes)
    grouped = {name: board_model.by_app(f.entries) for name, f in facts.items()}
    cells = {
        (key, app): board_model.cell(
            key,
            app,
            None if live is None else live.get(app),
            [e for e in grouped[name].get(app, []) if e.cluster == cluster],
            facts[name].pinned.get(app),
            problem=f"cluster unreachable: {facts[name].problems.get(part, '?')}" if live is None else "",
            subjects=subjects,
        )
        for name in names
        for key, cluster, live, part in _columns(name, facts[name])
        for app in apps
    }
    columns = tuple(
        _column(contexts[name], facts[name], limit, now, key, cluster)
        for name in names
        for key, cluster, _, _ in _columns(name, facts[name])
    )
    waiting = _waiting(contexts, names, facts, grouped, apps, now, notes)
    found = board_model.Board(now.isoformat(), apps, columns, cells, tuple(waiting), tuple(notes))
    if markdown and out is None:
        return BoardResult(found, None, render_md.markdown(found))
    path = out or config.state_dir / "board.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_md.markdown(found) if markdown else board_render.html(found), encoding="utf-8")
    return BoardResult(found, path)


def _read(ctx: EnvContext, apps: Sequence[str], history: int) -> _Facts:
    found = _Facts()
    if ctx.env.terraform is not None:  # the ledger lives in the state bucket
        try:
            read = ctx.read_ledger(limit=history)
            found.entries, found.ledger_problems = read.entries, read.problems
        except DeployctlError as exc:
            found.problems["history"] = exc.message.splitlines()[0]
    configured = ctx.config.settings.apps
    try:
        document = ctx.values.mapping()  # parsed once (values.section parses the file per call)
        for app in apps:
            section = document.get(app) if isinstance(document.get(app), Mapping) else None
            if section is None and len(configured) == 1:
                section = document  # one app may keep the whole file as its values (as values.section_path)
            found.pinned[app] = chartvalues.pinned(configured[app], section or {}).get("digest")
    except DeployctlError as exc:
        found.problems["values file"] = exc.message.splitlines()[0]
    for target in ctx.targets() if ctx.several else ():
        try:
            with ctx.cluster(target) as cluster:
                found.clusters[str(target.name)] = _live(cluster, apps, configured, found.pinned)
        except DeployctlError as exc:
            found.clusters[str(target.name)] = None
            found.problems[f"cluster {target.name}"] = exc.message.splitlines()[0]
    if ctx.several:
        return found
    try:
        with ctx.cluster() as cluster:
            found.live = _live(cluster, apps, configured, found.pinned)
    except DeployctlError as exc:
        found.problems["cluster"] = exc.message.splitlines()[0]
    return found


def _columns(name: str, facts: _Facts) -> list[tuple[str, str | None, dict[str, board_model.Live] | None, str]]:
    """An environment's columns: (key, cluster, live releases, the problem's part); several clusters: one each,
    keyed ``ENV/CLUSTER``."""
    if not facts.clusters:
        return [(name, None, facts.live, "cluster")]
    return [(f"{name}/{c}", c, live, f"cluster {c}") for c, live in facts.clusters.items()]


def _live(
    cluster: ClusterClient, apps: Sequence[str], configured: Mapping[str, App], pinned: Mapping[str, str | None]
) -> dict[str, board_model.Live]:
    """Each app's release in ``cluster``, judged by the one definition of healthy."""
    live = {}
    for app in apps:
        found = cluster.live(configured[app].release)
        if found is None:
            live[app] = board_model.Live(installed=False)
            continue
        release, workloads = found.release, found.workloads
        first = workloads[0] if workloads else None
        health = found.health(pinned.get(app) or None)
        live[app] = board_model.Live(
            installed=True,
            revision=release.revision,
            helm_status=release.status,
            digest=first.health.desired_digest if first else None,
            git_sha=first.git_sha if first else None,
            health=health,
        )
    return live


def _column(
    ctx: EnvContext, facts: _Facts, limit: int, now: datetime, key: str, cluster: str | None
) -> board_model.Column:
    try:
        freeze = windows.state(ctx.env.freeze, now)
        text, frozen = freeze.describe(), freeze.frozen
    except windows.WindowError as exc:
        text, frozen = f"change windows invalid: environments.{ctx.name}.{exc}", False
    # a cluster's column: its own rollouts and what concerned the whole environment (overrides, failed transfers)
    entries = [e for e in facts.entries if cluster is None or e.cluster in (cluster, None)]
    return board_model.Column(
        env=key,
        promote_from=ctx.env.promote_from,
        freeze=text,
        frozen=frozen,
        timeline=board_model.timeline(key, entries, limit),
        problem=facts.problem(),
    )


def _waiting(
    contexts: Contexts,
    names: Sequence[str],
    facts: Mapping[str, _Facts],
    grouped: Mapping[str, Mapping[str, list[Entry]]],
    apps: Sequence[str],
    now: datetime,
    notes: list[str],
) -> list[board_model.Waiting]:
    """Per promotion target shown: release tags newer than what it runs, and digests its source verified."""
    found: list[board_model.Waiting] = []
    for name in names:
        env = contexts[name].env
        if env.promote_from is None:
            continue
        source = env.promote_from
        if source not in grouped:  # not shown, but its ledger says what is verified there
            grouped = {**grouped, source: board_model.by_app(_read(contexts[source], (), HISTORY).entries)}
        pattern = env.release_tag_pattern
        try:
            tags = git.tags(contexts.runner, contexts.config.root, pattern.partition("<semver>")[0])
        except DeployctlError as exc:
            tags = []
            notes.append(f"release tags unknown: {exc.message.splitlines()[0]}")
        found += board_model.waiting_releases(name, tags, facts[name].entries, pattern)
        soak = timedelta(minutes=env.promote_soak_minutes)
        checked = [a for a in apps if verification.configured(contexts.config.settings, source, a)]
        found += board_model.waiting_digests(
            name, source, grouped[source], grouped[name], apps, now=now, soak=soak, checks=checked
        )
    return found


def _subjects(contexts: Contexts, commits: set[str], notes: list[str]) -> dict[str, str]:
    """Each commit's subject, in one git process (commits this clone does not have are left out)."""
    wanted = sorted(c for c in commits if git.SHA_RE.match(c))
    if not wanted:
        return {}
    argv = ["git", "-C", str(contexts.config.root), "log", "--no-walk=unsorted", "--ignore-missing"]
    try:
        result = contexts.runner.run([*argv, f"--format=%H{FIELD}%s", *wanted], timeout=git.TIMEOUT)
    except DeployctlError as exc:
        notes.append(f"commit subjects unknown: {exc.message.splitlines()[0]}")
        return {}
    return dict(line.split(FIELD, 1) for line in result.stdout.splitlines() if FIELD in line)
