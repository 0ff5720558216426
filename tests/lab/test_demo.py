"""`make demo` as a test: the whole story against the real tools, plus the JSON contract of the
commands it drives (deploy, promote, status, history, apply, sandbox)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deployctl.sandbox import demo, demo_story

pytestmark = pytest.mark.lab

SCHEMA_KEYS = {"schema", "command", "ok"}
REPO = Path(__file__).resolve().parents[2]
# Where test artifacts are kept (the board's screenshot): $DEPLOYCTL_TEST_ARTIFACTS, else .deployctl/test-artifacts.
ARTIFACTS = Path(os.environ.get("DEPLOYCTL_TEST_ARTIFACTS") or REPO / ".deployctl" / "test-artifacts")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "work"


@pytest.fixture(scope="module")
def story(workdir: Path) -> tuple[demo_story.DemoResult, str]:
    out = io.StringIO()
    result = demo.run(workdir, out=out)
    return result, out.getvalue()


def test_prod_ends_on_the_fix_and_never_ran_the_broken_build(story: tuple[demo_story.DemoResult, str]) -> None:
    result, _ = story
    assert result.prod_digest == result.digests["C"]
    assert result.prod_worker_digest == result.worker_digests["C"], "one tag released both apps"
    assert len(set(result.digests.values())) == 4
    assert any(e["digest"] == result.digests["B"] and e["outcome"] == "failed" for e in result.dev_history)
    assert not any(e["digest"] == result.digests["B"] for e in result.prod_history)
    promoted = [e for e in result.prod_history if e["action"] == "promote" and e["outcome"] == "succeeded"]
    releases = list(dict.fromkeys(e["release"] for e in promoted))
    assert releases[:2] == ["release-0.1.1", "release-0.1.0"]  # newest first
    assert sorted(e["app"] for e in promoted if e["release"] == "release-0.1.1") == [
        "api",
        "worker",
    ], "one tag, both apps"


def test_pods_ready_but_an_http_check_failing_is_caught_in_dev_and_refused_at_promote(
    story: tuple[demo_story.DemoResult, str],
) -> None:
    result, out = story
    failed = result.documents["deploy (failed)"]["error"]["message"]
    assert failed.startswith("verification of api in dev failed: check readyz (http): GET api:http/readyz answered 500")
    assert "D's pods were ready but its HTTP check failed, so release-0.1.2 was refused" in out
    assert "verification failed: readyz (http): GET api:http/readyz answered 500" in result.unverified_refusal
    assert result.documents["promote (failed)"]["error"]["exit_code"] == 4
    assert not any(e["digest"] == result.digests["D"] for e in result.prod_history)
    deployed = result.documents["deploy"]["apps"][0]
    assert deployed["verification"]["outcome"] == "passed", "C passed its helm test and HTTP check"
    promoted = result.documents["promote"]
    assert promoted["outcome"] == "succeeded"


def test_plan_joins_terraform_and_the_helm_diff(story: tuple[demo_story.DemoResult, str]) -> None:
    result, _ = story
    plan = result.documents["plan"]
    assert plan["terraform"]["summary"]["add"] == 0  # dev was just applied
    assert plan["helm"] is not None, plan["helm_error"]
    assert [a["app"] for a in plan["helm"]["apps"]] == ["api", "worker"]
    assert all(a["installed"] for a in plan["helm"]["apps"])
    assert plan["changes"] is False  # deployed from the same values and digest: no drift


def test_broken_rollout_is_detected_in_seconds(story: tuple[demo_story.DemoResult, str]) -> None:
    result, _ = story
    assert result.broken_detected_seconds is not None
    assert result.broken_detected_seconds < 30  # helm --wait would sit for minutes


def test_story_is_narrated_with_timings(story: tuple[demo_story.DemoResult, str]) -> None:
    _, text = story
    for line in (
        "deployctl apply dev --auto-approve",
        "deployctl deploy dev (commit B)",
        "FAILED fast",
        "rolled forward",
    ):
        assert line in text
    assert "$ deployctl history prod" in text


@pytest.mark.parametrize(
    ("command", "keys"),
    [
        ("deploy", {"env", "apps", "skipped"}),
        ("promote", {"dry_run", "outcome", "plan", "steps", "transfers"}),
        ("status", {"env", "apps"}),
        ("plan", {"env", "changes", "terraform", "helm", "helm_error"}),
        ("history", {"env", "entries"}),
        ("apply", {"env", "applied", "summary", "resource_changes"}),
        ("sandbox up", {"running", "healthy", "moto_url", "registries", "kubeconfig", "components"}),
        ("sandbox env", {"env"}),
    ],
)
def test_json_contract(story: tuple[demo_story.DemoResult, str], command: str, keys: set[str]) -> None:
    result, _ = story
    document = result.documents[command]
    assert document["schema"] == "deployctl/v1"
    assert SCHEMA_KEYS | keys <= set(document)
    if command == "deploy":  # one object per app
        app_keys = {"app", "release", "namespace", "image", "git_sha", "revision", "outcome", "duration_seconds"}
        assert all(app_keys <= set(app) for app in document["apps"])


def test_demo_cleans_up_its_clone_and_sandbox(story: tuple[demo_story.DemoResult, str], workdir: Path) -> None:
    result, _ = story
    assert result.steps  # the story ran
    # clone, origin and sandbox state removed (the sandbox was stopped first); the release board is kept
    assert result.board is not None
    assert sorted(workdir.iterdir()) == [result.board]


class Dom(HTMLParser):
    """The elements of a page as (tag, attributes, text content), in document order."""

    VOID = frozenset({"meta", "link", "br", "img", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[tuple[str, dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element: tuple[str, dict[str, str], list[str]] = (tag, {k: v or "" for k, v in attrs}, [])
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, _, text in self._open:
            text.append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict[str, str], str]]:
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            (a, " ".join("".join(t).split()))
            for name, a, t in self.elements
            if name == tag and all(a.get(k) == v for k, v in wanted.items())
        ]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's chromium, headless, with a new empty profile (installed by `make setup`, as the lab's tools)."""
    binary = shutil.which("chromium")
    assert binary is not None, "chromium is not installed: `make setup` installs it (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="deployctl-chromium-") as profile:
        return subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def test_the_board_of_the_demos_end_state_in_a_real_browser(
    story: tuple[demo_story.DemoResult, str], workdir: Path
) -> None:
    result, printed = story
    page = result.board
    assert page is not None and page.parent == workdir and f"release board of the end state: {page}" in printed
    dom = Dom()
    dom.feed(chromium("--dump-dom", page.as_uri()).stdout)  # the DOM Chromium built from the page

    [(prod, prod_text)] = dom.find("td", data_env="prod", data_app="api")
    assert prod["data-release"] == "release-0.1.1"
    assert prod["data-digest"] == result.digests["C"]
    assert prod["data-state"] == "healthy"
    assert "release-0.1.1" in prod_text and result.digests["C"][:19] in prod_text
    [(worker, _)] = dom.find("td", data_env="prod", data_app="worker")
    assert (worker["data-release"], worker["data-digest"]) == ("release-0.1.1", result.worker_digests["C"])
    failures = dom.find("li", data_env="dev", data_outcome="failed", data_digest=result.digests["B"])
    assert len(failures) == 1, "dev's timeline shows B's failure"
    attrs, text = failures[0]
    assert attrs["class"] == "event failed" and "FAILED" in text and "deploy api" in text
    assert not dom.find("li", data_env="prod", data_digest=result.digests["B"]), "B never reached prod"
    assert {tag for tag, _, _ in dom.elements}.isdisjoint({"script", "link", "img", "iframe"})

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "board-demo.png"
    shot.unlink(missing_ok=True)
    chromium("--window-size=1280,1040", f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, "a screenshot with content, kept as an artifact"
    shutil.copy(page, ARTIFACTS / "board-demo.html")
