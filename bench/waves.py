"""Several clusters (issue 19): ``deployctl promote`` into prod in 2 clusters in 2 waves vs prod in 1 cluster, and
what the lab with two control planes costs (resident memory, warm start).

One lab: moto, three registries, two control planes (``cluster2``). The configuration has dev (one cluster) and two
promotion targets from it: ``prod`` (one cluster) and ``fleet`` (two clusters, wave 1 then wave 2, the second with
its own registry). Per repetition: a new commit and image, ``deploy dev`` (untimed: the evidence), a release tag,
then ``promote --to prod`` and ``promote --to fleet`` as a pipeline runs them (the console script, a child process),
their order alternating. Two waves verify one after the other: the floor is 2x one cluster's verification (target
<= 2.2x). Memory: every process of the lab (all members of its process groups), after the promotions (pods and
releases in both clusters). Warm start: ``Lab.start`` of moto + registries + both control planes with the tools
already built (the first start of the run included).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import labs
from bench.measure import Sample, say, scratch_dir
from deployctl.runner import ProcessRunner
from deployctl.sandbox import image_push, tools
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.procfs import rss_bytes

TARGET_RATIO = 2.2
TARGET_RSS_GIB = 3.0
TARGET_START_SECONDS = 25.0
COMPONENTS = ("moto", "registry", "cluster", "cluster2")
ROOT = Path(__file__).resolve().parents[1]
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
VALUES = 'api:\n  image:\n    tag: ""\n    digest: ""\n  replicaCount: 2\n  autoscaling:\n    enabled: false\n'


def config(prefix: str) -> str:
    def env(name: str, extra: str) -> str:
        backend = f'{{ bucket = "{prefix}-tfstate", key = "{name}/terraform.tfstate", region = "us-east-1" }}'
        return (
            f'[tool.deployctl.environments.{name}]\naws = {{ region = "us-east-1" }}\n'
            f'terraform = {{ root = "tf", backend = {backend} }}\nnamespace = "{prefix}"\n'
            f'values = "values-{name}.yaml"\n{extra}\n'
        )

    clusters = (
        '[tool.deployctl.environments.fleet.clusters.use1]\neks = "api-fleet-use1"\nwave = 1\n\n'
        '[tool.deployctl.environments.fleet.clusters.euw1]\neks = "api-fleet-euw1"\nregion = "eu-west-1"\n'
        'image_registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"\nwave = 2\n'
    )
    return (
        f'[tool.deployctl.apps.api]\nchart = "{ROOT / "charts" / "api"}"\nrelease = "api"\n'
        f'image = {{ registry = "{ECR}", repository = "{prefix}/api" }}\n\n'
        + env("dev", 'cluster = { eks = "api-dev" }')
        + env(
            "prod",
            f'cluster = {{ eks = "api-prod" }}\npromote_from = "dev"\npromote_soak_minutes = 0\n'
            f'image_registry = "{ECR}"',
        )
        + env("fleet", f'promote_from = "dev"\npromote_soak_minutes = 0\nimage_registry = "{ECR}"')
        + clusters
    )


def run(repeat: int, smoke: bool = False) -> list[Sample]:  # noqa: ARG001 - one size only; smoke is repeat 1
    starts: list[float] = []
    state = scratch_dir("waves-lab")
    lab = Lab(state_dir=state, tools=tools.ensure(progress=say), registries=3)
    started = time.perf_counter()
    lab.start(COMPONENTS, progress=say)
    starts.append(time.perf_counter() - started)
    try:
        one, two, rss = _promotions(lab, repeat)
    finally:
        lab.stop()
        shutil.rmtree(state, ignore_errors=True)
    for n in range(1, min(repeat, 3)):  # a few more warm starts (each ~12 s), each stopped at once
        state = scratch_dir("waves-lab")
        again = Lab(state_dir=state, tools=tools.ensure(progress=say), registries=3)
        say(f"waves: warm start {n + 1}")
        started = time.perf_counter()
        again.start(COMPONENTS, progress=say)
        starts.append(time.perf_counter() - started)
        again.stop()
        shutil.rmtree(state, ignore_errors=True)
    ratio = Sample("w", "", two).median / Sample("w", "", one).median
    return [
        Sample("waves", "promote to 1 cluster", one),
        Sample(
            "waves",
            "promote to 2 clusters in 2 waves",
            two,
            {"ratio_to_one_cluster": ratio, "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO},
        ),
        Sample(
            "waves",
            "lab warm start, 2 control planes",
            tuple(starts),
            {
                "target_seconds": TARGET_START_SECONDS,
                "start_met": max(starts) <= TARGET_START_SECONDS,
                "rss_gib": round(rss / 2**30, 2),  # after the promotions: releases and pods in both clusters
                "target_rss_gib": TARGET_RSS_GIB,
                "rss_met": rss / 2**30 <= TARGET_RSS_GIB,
            },
        ),
    ]


def _promotions(lab: Lab, repeat: int) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    prefix = f"b{int(time.time())}"
    repo = scratch_dir("waves-repo")
    try:
        (repo / "pyproject.toml").write_text(config(prefix))
        for name in ("dev", "prod", "fleet"):
            (repo / f"values-{name}.yaml").write_text(VALUES)
        sandbox = repo / ".deployctl" / "sandbox" / "state.json"
        sandbox.parent.mkdir(parents=True)
        sandbox.write_text(json.dumps(lab.state()))
        env = {
            **labs.tool_env(lab),
            "DEPLOYCTL_SANDBOX": str(sandbox),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
            **{f"GIT_{who}_NAME": "bench" for who in ("AUTHOR", "COMMITTER")},
            **{f"GIT_{who}_EMAIL": "bench@example.invalid" for who in ("AUTHOR", "COMMITTER")},
        }
        runner = ProcessRunner()
        deployctl = str(Path(sys.executable).with_name("deployctl"))

        def git(*args: str) -> str:
            return runner.run(["git", "-C", str(repo), *args], env=env).stdout.strip()

        def call(*args: str) -> float:
            begun = time.perf_counter()
            runner.run([deployctl, "-o", "json", *args], cwd=repo, env=env, timeout=600)
            return time.perf_counter() - begun

        git("init", "-q", "-b", "main")
        git("add", ".")
        git("commit", "-q", "-m", "init")
        one: list[float] = []
        two: list[float] = []
        for n in range(repeat + 1):  # the first round warms up (namespaces, first releases): not counted
            git("commit", "-q", "--allow-empty", "-m", f"change {n}")
            sha = git("rev-parse", "HEAD")
            image_push.push_image(lab.registry_hosts[0], f"{prefix}/api", sha, seed=700 + n)
            call("deploy", "dev")
            tag = f"release-1.{n}.0"
            git("tag", "-a", tag, "-m", tag)
            say(f"waves: promote {tag} to prod (1 cluster) and to fleet (2 clusters, 2 waves) ({n}/{repeat})")
            order = ("prod", "fleet") if n % 2 else ("fleet", "prod")
            times = {target: call("promote", tag, "--to", target) for target in order}
            if n:
                one.append(times["prod"])
                two.append(times["fleet"])
        rss = rss_bytes(lab)
        say(f"waves: lab resident memory {rss / 2**30:.2f} GiB ({len(lab.services)} services)")
        return tuple(one), tuple(two), rss
    except subprocess.CalledProcessError as exc:  # pragma: no cover - a broken setup is a bench failure
        raise RuntimeError(f"waves benchmark setup failed: {exc}") from exc
    finally:
        shutil.rmtree(repo, ignore_errors=True)
