"""The release board: its content (deployctl/board/model.py) and drawing (board_render.py) table-tested, and the
use case (app/board.py) on fake contexts: real deploys into dev's ledger, prod's promotions, one environment
unreachable. The page in a real browser: tests/lab/test_demo.py."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm import Release
from deployctl.app.board import board
from deployctl.app.context import Contexts
from deployctl.app.deploy import deploy
from deployctl.board import model as board_model
from deployctl.board import render as board_render
from deployctl.board import render_md
from deployctl.board.model import Live
from deployctl.config import load
from deployctl.core.errors import OperationError
from deployctl.ledger.entry import Entry, Outcome, Override
from deployctl.rollout.states import Health, Verdict
from deployctl.runner import ProcessRunner
from tests import values_files
from tests.unit.fakes import Events, FakeContext, FakeS3

ROOT = Path(__file__).resolve().parents[2]
A, B, C = ("sha256:" + x * 64 for x in "abc")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def entry(app: str, action: str, outcome: Outcome, digest: str | None, minutes_ago: int, **more: Any) -> Entry:
    time = (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="microseconds")
    verdict = {"succeeded": "healthy", "failed": "failed"}.get(outcome)
    return Entry(env=more.pop("env", "dev"), app=app, action=action, outcome=outcome, digest=digest, time=time,
                 verdict=verdict, actor="alice", ci_run_id=more.pop("ci", None), **more)  # fmt: skip


HEALTHY = Health(True, (), "1/1 pods ready")
SICK = Health(False, ("deployment api: rollout failed: CrashLoopBackOff",))


@pytest.mark.parametrize(
    ("live", "entries", "pinned", "expected"),
    [
        (  # dev: runs C, deployed by CI; the values file pins nothing
            Live(True, 3, "deployed", C, "c" * 40, HEALTHY),
            [
                entry("api", "deploy", "failed", B, 5),
                entry("api", "deploy", "succeeded", C, 9, release="api@3", ci="77"),
            ],
            None,
            {"state": "healthy", "release": "api@3", "digest": C, "deployed_by": "CI run 77", "drift": "unpinned"},
        ),
        (  # prod: the promotion of the digest that runs names its release; the values file agrees
            Live(True, 2, "deployed", C, None, HEALTHY),
            [
                entry("api", "promote", "succeeded", C, 1, release="release-0.1.1", commit="c" * 40),
                entry("api", "promote", "succeeded", A, 50, release="release-0.1.0"),
            ],  # fmt: skip
            C,
            {
                "state": "healthy",
                "release": "release-0.1.1",
                "commit": "c" * 40,
                "deployed_by": "alice",
                "drift": "matches",
            },
        ),
        (  # the values file was edited by hand: drift
            Live(True, 2, "deployed", C, None, HEALTHY),
            [entry("api", "promote", "succeeded", C, 1, release="release-0.1.1")],
            A,
            {"drift": "differs", "drift_detail": f"the values file pins {A}"},
        ),
        (  # a rollout that failed: unhealthy, with why; no successful rollout of what the spec names
            Live(True, 4, "deployed", B, None, SICK),
            [entry("api", "deploy", "failed", B, 1)],
            None,
            {"state": "unhealthy", "release": "revision 4", "verdict": SICK.summary, "deployed_at": None},
        ),
        (Live(False), [], None, {"state": "absent", "verdict": "not installed", "drift": "unknown"}),
        (  # unreachable: the ledger still says what was rolled out last
            None,
            [entry("api", "deploy", "succeeded", C, 9, release="api@3")],
            None,
            {"state": "unreachable", "digest": C, "release": "api@3", "verdict": "cluster unreachable: refused"},
        ),
    ],
)
def test_cell(live: Live | None, entries: list[Entry], pinned: str | None, expected: dict[str, Any]) -> None:
    problem = "cluster unreachable: refused" if live is None else ""
    found = board_model.cell("dev", "api", live, entries, pinned, problem=problem, subjects={"c" * 40: "fix it"})
    assert {k: getattr(found, k) for k in expected} == expected
    if found.commit == "c" * 40:
        assert found.subject == "fix it"


def test_timeline_shows_outcomes_not_completed_intents_newest_first() -> None:
    intent = entry("api", "deploy", "started", C, 3)
    running = entry("api", "deploy", "started", A, 1)
    entries = [
        running,  # no outcome yet
        entry("api", "deploy", "succeeded", C, 2, intent=intent.id),
        intent,
        entry("*", "override", "succeeded", None, 4, overrides=(Override("--override-freeze", "hotfix"),)),
        entry("api", "deploy", "failed", B, 5),
        entry("api", "recover", "succeeded", None, 6),
        entry("api", "build", "succeeded", A, 7),  # not a rollout
    ]
    found = board_model.timeline("dev", entries, limit=10)
    assert [(e.action, e.outcome, e.digest) for e in found] == [
        ("deploy", "in-progress", A),
        ("deploy", "succeeded", C),
        ("override", "succeeded", None),
        ("deploy", "failed", B),
        ("recover", "succeeded", None),
    ]
    assert [e.failed for e in found] == [False, False, False, True, False]
    assert found[2].overrides == ("--override-freeze: hotfix",)
    assert len(board_model.timeline("dev", entries, limit=2)) == 2


@pytest.mark.parametrize(
    ("tags", "entries", "expected"),
    [
        (["release-0.1.0", "release-0.1.1"], [entry("api", "promote", "succeeded", C, 1, release="release-0.1.1")], []),
        (
            ["release-0.1.0", "release-0.2.0", "release-0.10.0", "release-x", "v1.0.0"],
            [entry("api", "promote", "succeeded", A, 1, release="release-0.1.0")],
            ["release-0.10.0", "release-0.2.0"],  # newest first, by version not by name
        ),
        (["release-1.0.0"], [], ["release-1.0.0"]),
    ],
)
def test_releases_waiting(tags: list[str], entries: list[Entry], expected: list[str]) -> None:
    found = board_model.waiting_releases("prod", tags, entries, "release-<semver>")
    assert [w.what for w in found] == expected


def test_a_release_whose_promotion_failed_still_waits_and_says_so() -> None:
    tried = entry("api", "promote", "failed", B, 3, release="release-0.2.0", message="rollout failed: boom\nmore")
    entries = [tried, entry("api", "promote", "succeeded", A, 9, release="release-0.1.0")]
    (found,) = board_model.waiting_releases("prod", ["release-0.2.0"], entries, "release-<semver>")
    assert (
        found.detail == "tagged, not promoted to prod (last attempt failed at 2026-11-22T11:57: rollout failed: boom)"
    )


@pytest.mark.parametrize(
    ("source", "target", "soak", "expected"),
    [
        ([entry("api", "deploy", "succeeded", C, 30)], [], 0, ["api"]),
        ([entry("api", "deploy", "succeeded", C, 30)], [entry("api", "promote", "succeeded", C, 5)], 0, []),
        ([entry("api", "deploy", "failed", C, 1), entry("api", "deploy", "succeeded", C, 30)], [], 0, []),
        ([entry("api", "deploy", "failed", B, 1)], [], 0, []),  # nothing healthy
    ],
)
def test_digests_waiting(source: list[Entry], target: list[Entry], soak: int, expected: list[str]) -> None:
    found = board_model.waiting_digests(
        "prod", "dev", board_model.by_app(source), board_model.by_app(target), ["api"], now=NOW, soak=timedelta(soak)
    )
    assert [w.app for w in found] == expected


def test_a_digest_still_soaking_says_how_long_it_ran() -> None:
    source = board_model.by_app([entry("api", "deploy", "succeeded", C, 30, commit="c" * 40)])
    (found,) = board_model.waiting_digests("prod", "dev", source, {}, ["api"], now=NOW, soak=timedelta(hours=1))
    assert found.detail == (
        "healthy in dev since 2026-11-22T11:30 (commit cccccccccccc), not yet in prod; soaking: 30 min of 60 min"
    )


def sample_board(message: str = "crash <script>alert(1)</script> | pipe") -> board_model.Board:
    dev = board_model.timeline("dev", [entry("api", "deploy", "failed", B, 1, message=message)], 10)
    cells = {
        ("dev", "api"): board_model.cell("dev", "api", Live(True, 3, "deployed", C, None, HEALTHY), [], None),
        ("prod", "api"): board_model.cell("prod", "api", None, [], None, problem="cluster unreachable: <refused>"),
    }
    columns = (
        board_model.Column("dev", None, "open", False, dev),
        board_model.Column("prod", "dev", "frozen by 'weekend'", True, (), problem="cluster unreachable: <refused>"),
    )
    waiting = (board_model.Waiting("prod", "release", "release-0.2.0", None, "tagged, not promoted to prod"),)
    return board_model.Board(NOW.isoformat(), ("api",), columns, cells, waiting)


class Page(HTMLParser):
    """Elements with their attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_html_is_self_contained_and_escapes_every_value() -> None:
    html = board_render.html(sample_board())
    page = parse(html)
    tags = {tag for tag, _ in page.elements}
    assert "script" not in tags and "link" not in tags and "img" not in tags  # no script, no external asset
    assert not re.search(r"(src|href)=", html)
    assert "svg" in tags and "style" in tags
    assert "crash <script>alert(1)</script> | pipe" in "".join(page.text)  # shown as text, not markup
    cell = next(a for t, a in page.elements if a.get("data-env") == "dev" and a.get("data-app") == "api")
    assert (cell["data-state"], cell["data-digest"], cell["data-release"]) == ("healthy", C, "revision 3")
    failed = next(a for t, a in page.elements if t == "li" and a.get("data-outcome") == "failed")
    assert (failed["class"], failed["data-digest"]) == ("event failed", B)
    assert "cluster unreachable: <refused>" in "".join(page.text)
    assert "release-0.2.0" in "".join(page.text)


def test_markdown_grid_timeline_and_waiting() -> None:
    text = render_md.markdown(sample_board())
    lines = text.splitlines()
    assert "| app | dev | prod (frozen) |" in lines
    row = next(line for line in lines if line.startswith("| api |"))
    assert row.count(" | ") == 2, "pipes in values are escaped: one cell per environment"
    assert "✅ revision 3 `sha256:cccccccccccc`" in row and "⚠️" in row
    failure = next(line for line in lines if "FAILED" in line)
    assert "crash &lt;script&gt;alert(1)&lt;/script&gt; \\| pipe" in failure
    assert "- **prod**: `release-0.2.0` tagged, not promoted to prod" in lines


# ------------------------------------------------------------------------------------------- the use case

CONFIG = f"""
[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "registry.example:5000", repository = "api" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {{ bucket = "acme-tfstate", key = "dev/terraform.tfstate", region = "us-east-1" }} }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {{ bucket = "acme-tfstate", key = "prod/terraform.tfstate", region = "us-east-1" }} }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
freeze = {{ dated = {{ launch = "2026-11-22 - 2026-11-23: launch" }} }}
"""


def world(tmp_path: Path) -> tuple[Contexts, FakeContext, FakeContext, str]:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    identity = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True,
                             env={**identity, "PATH": "/usr/bin:/bin"})  # fmt: skip
        return run.stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "app: the fix")
    git("tag", "release-0.1.0")
    git("tag", "release-0.2.0")
    sha = git("rev-parse", "HEAD")
    config, runner, s3 = load(tmp_path / "pyproject.toml"), ProcessRunner(), FakeS3()
    contexts = Contexts(config, runner, Events())
    dev = FakeContext(config, "dev", runner, s3=s3, digests={"b" * 40: B, sha: C})
    prod = FakeContext(config, "prod", runner, s3=s3)
    contexts._built.update(dev=dev, prod=prod)
    return contexts, dev, prod, sha


def test_board_of_two_environments(tmp_path: Path) -> None:
    contexts, dev, prod, sha = world(tmp_path)
    dev.fake_cluster.verdict = Verdict("failed", "CrashLoopBackOff", reason="CrashLoopBackOff")
    with pytest.raises(OperationError):
        deploy(dev, image_tag="b" * 40)  # B crashes
    dev.fake_cluster.verdict = Verdict("complete", "1 of 1 updated and available")
    deploy(dev, image_tag=sha)  # C
    prod.record(entry("api", "promote", "succeeded", C, 0, env="prod", release="release-0.1.0", commit=sha))
    prod.fake_cluster.releases["api"] = Release("api", "api", 1, "deployed")
    prod.fake_cluster.desired["api"] = prod.fake_cluster.serving["api"] = C

    result = board(contexts, now=NOW, out=tmp_path / "board.html")

    found = result.board
    assert (found.cell("prod", "api").release, found.cell("prod", "api").digest) == ("release-0.1.0", C)
    assert found.cell("dev", "api").subject == "app: the fix"  # from git, in one process
    assert found.cell("dev", "api").state == "healthy"
    dev_column, prod_column = found.columns
    assert [(e.outcome, e.digest) for e in dev_column.timeline] == [("succeeded", C), ("failed", B)]
    assert prod_column.frozen and "launch" in prod_column.freeze
    assert [w.what for w in found.waiting] == ["release-0.2.0"]  # C runs in prod: no digest waits
    page = (tmp_path / "board.html").read_text()
    assert result.path == tmp_path / "board.html" and "release-0.1.0" in page
    assert result.text()[0] == f"board written: {tmp_path / 'board.html'}"
    assert result.data()["environments"][1]["apps"][0]["release"] == "release-0.1.0"
    markdown = board(contexts, now=NOW, markdown=True)
    assert markdown.path is None and markdown.text()[0] == "## Release board"


def test_an_unreachable_environment_is_shown_with_why_and_the_others_render(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts, dev, prod, sha = world(tmp_path)
    deploy(dev, image_tag=sha)

    def unreachable() -> Any:
        raise OperationError("cannot reach the API server of prod (https://10.0.0.1:443): connection refused")

    monkeypatch.setattr(prod, "cluster", unreachable)
    found = board(contexts, now=NOW, out=tmp_path / "b.html").board
    assert found.cell("dev", "api").state == "healthy"
    cell = found.cell("prod", "api")
    assert cell.state == "unreachable"
    assert (
        cell.verdict
        == "cluster unreachable: cannot reach the API server of prod (https://10.0.0.1:443): connection refused"
    )
    assert found.columns[1].problem == (
        "cluster unreadable: cannot reach the API server of prod (https://10.0.0.1:443): connection refused"
    )
    assert [w.app for w in found.waiting if w.kind == "digest"] == ["api"]  # C verified in dev, never in prod
