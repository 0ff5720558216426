"""A no-change ``deployctl plan dev`` vs what a user runs by hand: ``terraform plan`` then ``helm template``.

After ``deployctl apply shared`` and ``deployctl apply dev`` into the lab's moto and a deploy of each app's
image into the lab's cluster (all untimed), nothing is left to change: deployctl plans terraform and
diffs every app's chart against its live release (overlapped). By hand, both sides
plan the same initialised root: the raw ``terraform plan`` uses deployctl's data directory
(``.deployctl/terraform/dev``, providers installed) and the same variables, then ``helm template`` renders
each app's chart with its own values section (extracted untimed) and its image; so the comparison is
deployctl's own cost (start-up, config, fingerprint, ``plan -out``, plan metadata, the diff's reads of the
cluster) on top of the tools. Runs are interleaved. Besides wall times, the CPU seconds of each side's
process tree (terraform and its provider included; the lab's services not) are recorded: a figure the
other work on a shared machine disturbs far less than wall time; and deployctl's own share of it (its process
alone, read from /proc before it is reaped: ``measure.run_split``), the figure its code is judged by.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

import yaml

from bench import labs
from bench.measure import Sample, cpu_seconds, loadavg, say
from deployctl.config import App, load
from deployctl.core.errors import DeployctlError
from deployctl.core.refs import ImageRef
from deployctl.release import chartvalues
from deployctl.sandbox import image_push

TARGET_RATIO = 1.05
TARGET_OWN_CPU = 0.8  # CPU-seconds of deployctl's own process (its terraform and helm children apart)
MAX_REPEAT = 5  # terraform plan takes ~20-40 s here
PLAN_CODES = (0, 3)  # no changes | changes (deployctl's --detailed-exitcode contract)
NAMESPACE = "dev-api"  # the sandbox's namespace for dev (only the rendering's metadata; no cluster is read)


def run(repeat: int, smoke: bool = False) -> list[Sample]:  # noqa: ARG001 - one size only; smoke is repeat 1
    ours_name, raw_name = "deployctl plan dev (no change)", "terraform plan + helm template"
    repeat = min(repeat, MAX_REPEAT)
    with labs.started(["moto", "registry", "cluster"]) as lab, labs.checkout(lab) as repo:
        host = lab.registry_hosts[0]
        apps = load(repo.root / "pyproject.toml").settings.apps
        digests = {name: image_push.push_image(host, name, "v1", seed=7 + n).digest for n, name in enumerate(apps)}
        try:
            for name, digest in digests.items():
                say(f"plan: deployctl deploy dev --app {name} (untimed setup: the live release the diff reads)")
                repo.deployctl("deploy", "dev", "--app", name, "--digest", digest)
            for env_name in ("shared", "dev"):
                say(f"plan: deployctl apply {env_name} --auto-approve (untimed setup)")
                started = time.monotonic()
                repo.deployctl("apply", env_name, "--auto-approve", timeout=1800)
                say(f"plan: applied {env_name} in {labs.elapsed_since(started)}")
            say("plan: warm-up deployctl plan dev")
            first = repo.deployctl("plan", "dev", "--detailed-exitcode", ok_codes=PLAN_CODES, output_json=True)
        except DeployctlError as exc:
            reason = f"deployctl apply/plan is not working yet: {exc.message.splitlines()[0][:160]}"
            say(f"plan: SKIPPED: {reason}")
            return [Sample.skipped("plan", ours_name, reason), Sample.skipped("plan", raw_name, reason)]
        planned_first = json.loads(first.stdout)
        changes = [c["address"] for c in planned_first["terraform"]["resource_changes"]]
        helm_changed = (
            planned_first["helm"]["changed"] if planned_first.get("helm") else planned_first.get("helm_error")
        )
        root = repo.root / "terraform" / "env"
        raw_env = {
            **repo.env,
            "TF_IN_AUTOMATION": "1",
            "TF_DATA_DIR": str(repo.root / ".deployctl" / "terraform" / "dev"),
        }
        raw_env.pop("DEPLOYCTL_SANDBOX", None)
        terraform = [
            "terraform", f"-chdir={root}", "plan", "-input=false", "-detailed-exitcode",
            f"-var-file={root / 'dev.tfvars'}", "-var", "environment=dev", "-var", "region=us-east-1",
            "-var", f"aws_endpoint_url={lab.moto_url}", "-var", "aws_skip_checks=true",
        ]  # fmt: skip
        helm = _helm_templates(repo.root, host, digests, apps)
        for argv in helm:  # the by-hand side must render: a failing template would time nothing
            repo.runner.run(argv, env=raw_env, timeout=120)
        ours: list[float] = []
        raw: list[float] = []
        cpu: dict[str, list[float]] = {"ours": [], "raw": [], "own": []}
        loads: list[float] = []
        raw_codes: set[int] = set()
        for n in range(repeat):
            loads.append(loadavg())
            say(f"plan: deployctl plan dev, then terraform plan + helm template ({n + 1}/{repeat}), load {loads[-1]}")
            split = repo.deployctl_split("plan", "dev", "--detailed-exitcode", ok_codes=PLAN_CODES)
            ours.append(split.seconds)
            cpu["ours"].append(split.own_cpu + split.children_cpu)
            cpu["own"].append(split.own_cpu)
            before, started = cpu_seconds(), time.perf_counter()
            planned = repo.runner.run(terraform, env=raw_env, ok_codes=(0, 2), timeout=900)
            for argv in helm:
                repo.runner.run(argv, env=raw_env, timeout=120)
            raw.append(time.perf_counter() - started)
            cpu["raw"].append(cpu_seconds() - before)
            raw_codes.add(planned.exit_code)
        loads.append(loadavg())
    ratio = statistics.median(ours) / statistics.median(raw)
    drift = ", ".join(sorted(changes)) or "none"
    return [
        Sample(
            "plan",
            ours_name,
            tuple(ours),
            {
                "ratio_vs_raw": ratio,
                "ratio_of_means": statistics.mean(ours) / statistics.mean(raw),
                "cpu_s": statistics.median(cpu["ours"]),
                "cpu_ratio": statistics.median(cpu["ours"]) / statistics.median(cpu["raw"]),
                "own_cpu_s": statistics.median(cpu["own"]),
                "own_cpus": [round(x, 2) for x in cpu["own"]],
                "target": f"<= {TARGET_RATIO}x; own CPU <= {TARGET_OWN_CPU} s: "
                + ("met" if statistics.median(cpu["own"]) <= TARGET_OWN_CPU else "NOT met"),
                "tf_changes": drift,
                "helm_changed": helm_changed,
                "load": f"{min(loads):.1f}-{max(loads):.1f}",
            },
        ),
        Sample(
            "plan",
            raw_name,
            tuple(raw),
            {"cpu_s": statistics.median(cpu["raw"]), "terraform_exit": "/".join(map(str, sorted(raw_codes)))},
        ),
    ]


def _helm_templates(root: Path, host: str, digests: dict[str, str], apps: Mapping[str, App]) -> list[list[str]]:
    """One ``helm template`` per app, as by hand: its chart, its values section in a file, its image pinned."""
    values = yaml.safe_load((root / "values-dev.yaml").read_text(encoding="utf-8")) or {}
    scratch = root / ".deployctl" / "bench-values"
    scratch.mkdir(parents=True, exist_ok=True)
    argvs = []
    for name, app in apps.items():
        section = scratch / f"{name}.yaml"
        section.write_text(yaml.safe_dump(values.get(name) or {}), encoding="utf-8")
        pins = chartvalues.image_values(app, ImageRef(host, name, digest=digests[name]), None)
        chart = root / app.chart
        argv = ["helm", "template", app.release, str(chart), "--namespace", NAMESPACE]
        argv += ["-f", str(section)]
        for key, value in pins.items():
            argv += ["--set-string", f"{key}={value}"]
        argvs.append(argv)
    return argvs
