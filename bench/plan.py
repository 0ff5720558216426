"""A no-change ``deployctl plan dev`` vs what a user runs by hand: ``terraform plan`` then ``helm template``.

After ``deployctl apply shared`` and ``deployctl apply dev`` into the lab's moto and a deploy of an
image into the lab's cluster (all untimed), nothing is left to change: deployctl plans terraform and
diffs the chart against the live release (overlapped). By hand, both sides
plan the same initialised root: the raw ``terraform plan`` uses deployctl's data directory
(``.deployctl/terraform/dev``, providers installed) and the same variables, so the comparison is
deployctl's own cost (config, fingerprint, ``plan -out``, plan metadata) on top of the tools.
Runs are interleaved.
"""

from __future__ import annotations

import json
import time

from bench import labs
from bench.measure import Sample, say
from deployctl.errors import DeployctlError
from deployctl.sandbox import images

TARGET_RATIO = 1.1
MAX_REPEAT = 3  # terraform plan takes ~25-40 s here
PLAN_CODES = (0, 3)  # no changes | changes (deployctl's --detailed-exitcode contract)


def run(repeat: int, smoke: bool = False) -> list[Sample]:  # noqa: ARG001 - one size only; smoke is repeat 1
    ours_name, raw_name = "deployctl plan dev (no change)", "terraform plan + helm template"
    repeat = min(repeat, MAX_REPEAT)
    with labs.started(["moto", "registry", "cluster"]) as lab, labs.checkout(lab) as repo:
        host = lab.registry_hosts[0]
        digest = images.push_image(host, "api", "v1", seed=7).digest
        try:
            say("plan: deployctl deploy dev (untimed setup: the live release the helm diff compares with)")
            repo.deployctl("deploy", "dev", "--digest", digest)
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
        helm = [
            "helm", "template", "api", str(repo.root / "charts" / "api"), "--namespace", "dev-api",
            "-f", str(repo.root / "values-dev.yaml"),
            "--set-string", f"image.repository={host}/api", "--set-string", f"image.digest={digest}",
        ]  # fmt: skip
        ours: list[float] = []
        raw: list[float] = []
        raw_codes: set[int] = set()
        for n in range(repeat):
            say(f"plan: deployctl plan dev, then terraform plan + helm template ({n + 1}/{repeat})")
            started = time.perf_counter()
            repo.deployctl("plan", "dev", "--detailed-exitcode", ok_codes=PLAN_CODES)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            planned = repo.runner.run(terraform, env=raw_env, ok_codes=(0, 2), timeout=900)
            repo.runner.run(helm, env=raw_env, timeout=120)
            raw.append(time.perf_counter() - started)
            raw_codes.add(planned.exit_code)
    ratio = sorted(ours)[len(ours) // 2] / sorted(raw)[len(raw) // 2]
    drift = ", ".join(sorted(changes)) or "none"
    return [
        Sample(
            "plan",
            ours_name,
            tuple(ours),
            {"ratio_vs_raw": ratio, "target": f"<= {TARGET_RATIO}x", "tf_changes": drift, "helm_changed": helm_changed},
        ),
        Sample("plan", raw_name, tuple(raw), {"terraform_exit": "/".join(map(str, sorted(raw_codes)))}),
    ]
