from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from deployctl.adapters.docker import build_argv, pushed_digest
from deployctl.adapters.registry import TagMutability
from deployctl.app.build import build, plan_tags
from deployctl.config import LoadedConfig, load
from deployctl.core.errors import CommandFailedError, OperationError, PolicyError
from deployctl.redact import Redactor
from deployctl.runner import CommandResult, ProcessRunner

META = Path("out/meta.json")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"tags": ["r/api:abc", "r/api:latest"], "push": True},
            [
                "docker",
                "buildx",
                "build",
                "--tag",
                "r/api:abc",
                "--tag",
                "r/api:latest",
                "--label",
                "org.opencontainers.image.revision=abc",
                "--provenance=mode=max",
                "--metadata-file",
                "out/meta.json",
                "--push",
                "ctx",
            ],
        ),
        (
            {
                "tags": ["r/api:abc"],
                "push": False,
                "platforms": ["linux/amd64", "linux/arm64"],
                "dockerfile": Path("D"),
            },
            [
                "docker",
                "buildx",
                "build",
                "--tag",
                "r/api:abc",
                "--label",
                "org.opencontainers.image.revision=abc",
                "--provenance=mode=max",
                "--metadata-file",
                "out/meta.json",
                "--platform",
                "linux/amd64,linux/arm64",
                "--file",
                "D",
                "--load",
                "ctx",
            ],
        ),
    ],
)
def test_build_argv(kwargs: dict[str, object], expected: list[str]) -> None:
    assert build_argv(context=Path("ctx"), revision="abc", metadata_file=META, **kwargs) == expected  # type: ignore[arg-type]


def test_pushed_digest_reads_buildx_metadata(tmp_path: Path) -> None:
    meta = tmp_path / "m.json"
    meta.write_text(json.dumps({"containerimage.digest": "sha256:" + "b" * 64}))
    assert pushed_digest(meta) == "sha256:" + "b" * 64
    meta.write_text("{}")
    with pytest.raises(OperationError, match="did not report a pushed digest"):
        pushed_digest(meta)


# ---- build: which tags one build pushes -------------------------------------------------------

IMG = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api"
SHA = "c" * 40
ONLY_SHA = (f"{IMG}:{SHA}",)
WITH_LATEST = (f"{IMG}:{SHA}", f"{IMG}:latest")
MUTABLE = TagMutability("MUTABLE")
IMMUTABLE = TagMutability("IMMUTABLE")
LATEST_EXCLUDED = TagMutability("IMMUTABLE_WITH_EXCLUSION", ("latest",))


@pytest.mark.parametrize(
    ("push", "latest", "ecr", "mutability", "expected"),
    [
        # pushing to ECR: latest only where it may move
        (True, None, True, MUTABLE, WITH_LATEST),
        (True, None, True, IMMUTABLE, ONLY_SHA),
        (True, None, True, LATEST_EXCLUDED, WITH_LATEST),
        (True, True, True, MUTABLE, WITH_LATEST),
        (True, True, True, LATEST_EXCLUDED, WITH_LATEST),
        (True, False, True, MUTABLE, ONLY_SHA),
        (True, False, True, None, ONLY_SHA),  # --no-latest: the repository is not even asked
        # pushing elsewhere: deployctl cannot see the tag rules, so latest only when asked
        (True, None, False, None, ONLY_SHA),
        (True, True, False, None, WITH_LATEST),
        (True, False, False, None, ONLY_SHA),
        # loading locally: nothing reaches a registry
        (False, None, True, None, ONLY_SHA),
        (False, True, True, None, WITH_LATEST),
        (False, False, False, None, ONLY_SHA),
    ],
)
def test_build_tag_plan(
    push: bool, latest: bool | None, ecr: bool, mutability: TagMutability | None, expected: tuple[str, ...]
) -> None:
    plan = plan_tags(IMG, SHA, push=push, latest=latest, ecr=ecr, mutability=mutability)
    assert plan.tags == expected
    assert plan.reason


def test_asking_for_latest_in_an_immutable_ecr_repository_is_refused() -> None:
    with pytest.raises(PolicyError, match="IMMUTABLE") as caught:
        plan_tags(IMG, SHA, push=True, latest=True, ecr=True, mutability=IMMUTABLE)
    assert caught.value.exit_code == 4


# ---- build: the registry is asked before building (botocore Stubber; docker recorded) ---------


@dataclass
class DockerRecorder:
    """Runs git for real; records docker's argv instead of running it (there is no docker engine here)
    and writes the metadata buildx would, or fails like a push refused by the registry."""

    digest: str = "sha256:" + "d" * 64
    fail: bool = False
    redactor: Redactor = field(default_factory=Redactor)
    docker: list[list[str]] = field(default_factory=list)

    def run(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        argv = list(argv)
        if argv[0] != "docker":
            return ProcessRunner().run(argv, **kwargs)
        self.docker.append(argv)
        if self.fail:
            raise CommandFailedError(argv, 1, "ERROR: failed to push: TAG_INVALID")
        meta = Path(argv[argv.index("--metadata-file") + 1])
        meta.write_text(json.dumps({"containerimage.digest": self.digest}))
        return CommandResult(argv, 0, "", "", 0.1)


@pytest.fixture
def project(tmp_path: Path) -> LoadedConfig:
    (tmp_path / "pyproject.toml").write_text(
        f"""
[tool.deployctl]
state_dir = ".state"
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = {{ registry = "{IMG.split("/")[0]}", repository = "api" }}
[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
cluster = {{ eks = "api-dev" }}
namespace = "api"
values = "values-dev.yaml"
"""
    )
    for argv in (
        ["init", "-q"],
        ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", *argv], cwd=tmp_path, check=True, capture_output=True)
    return load(tmp_path / "pyproject.toml")


def _ecr(stub_for: Callable[[Stubber], None]) -> Any:
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    stub_for(stubber)
    stubber.activate()
    return client


def _repository(stub: Stubber, mutability: str) -> None:
    stub.add_response(
        "describe_repositories",
        {"repositories": [{"repositoryName": "api", "imageTagMutability": mutability}]},
        {"repositoryNames": ["api"], "registryId": "123456789012"},
    )


def _commit_tag(stub: Stubber, digest: str | None) -> None:
    if digest is None:
        stub.add_client_error("describe_images", "ImageNotFoundException", "no such tag")
    else:
        stub.add_response("describe_images", {"imageDetails": [{"imageDigest": digest}]})


def test_build_to_an_immutable_repository_pushes_only_the_sha(project: LoadedConfig) -> None:
    def stubs(stub: Stubber) -> None:
        _repository(stub, "IMMUTABLE")
        _commit_tag(stub, None)

    runner = DockerRecorder()
    result = build(project, runner, app_name=None, context=project.root, push=True, ecr_client=_ecr(stubs))
    (argv,) = runner.docker
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"] == [f"{IMG}:{result.commit}"]
    assert "--push" in argv
    assert result.digest == runner.digest
    assert any("IMMUTABLE" in note for note in result.notes)


def test_build_to_a_mutable_repository_moves_latest(project: LoadedConfig) -> None:
    def stubs(stub: Stubber) -> None:
        _repository(stub, "MUTABLE")
        _commit_tag(stub, None)

    runner = DockerRecorder()
    result = build(project, runner, app_name="api", context=project.root, push=True, ecr_client=_ecr(stubs))
    assert result.tags == (f"{IMG}:{result.commit}", f"{IMG}:latest")


def test_a_commit_already_built_is_not_built_again(project: LoadedConfig) -> None:
    existing = "sha256:" + "e" * 64

    def stubs(stub: Stubber) -> None:
        _repository(stub, "IMMUTABLE")
        _commit_tag(stub, existing)

    runner = DockerRecorder()
    result = build(project, runner, app_name=None, context=project.root, push=True, ecr_client=_ecr(stubs))
    assert runner.docker == []
    assert (result.digest, result.pushed) == (existing, False)


def test_a_push_that_lost_the_race_for_the_sha_tag_is_refused_naming_the_winner(project: LoadedConfig) -> None:
    winner = "sha256:" + "f" * 64

    def stubs(stub: Stubber) -> None:
        _repository(stub, "IMMUTABLE")
        _commit_tag(stub, None)  # before building: free
        _commit_tag(stub, winner)  # after the failed push: another run's image

    with pytest.raises(PolicyError, match=f"pushed by another run.*{winner}") as caught:
        build(
            project, DockerRecorder(fail=True), app_name=None, context=project.root, push=True, ecr_client=_ecr(stubs)
        )
    assert caught.value.exit_code == 4


def test_a_push_that_failed_for_another_reason_stays_that_failure(project: LoadedConfig) -> None:
    def stubs(stub: Stubber) -> None:
        _repository(stub, "IMMUTABLE")
        _commit_tag(stub, None)
        _commit_tag(stub, None)

    with pytest.raises(CommandFailedError):
        build(
            project, DockerRecorder(fail=True), app_name=None, context=project.root, push=True, ecr_client=_ecr(stubs)
        )
