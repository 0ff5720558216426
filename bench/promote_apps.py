"""Promoting a release of 1 app vs 3 apps (issue 14: target 3 apps <= 1.5x one app).

Two checkouts in one lab, each a git repository whose configuration points at the lab: one with one app, one
with three (each its own release of charts/api, its own image). Each round commits, builds every app's image,
deploys dev (untimed: the evidence), tags a release and times `deployctl promote` (retag every image, record the
values, roll every app out in prod and verify it), alternating the two checkouts so load hits both alike.
"""

from __future__ import annotations

import time

from bench import labs
from bench.measure import Sample, say
from deployctl.sandbox import image_push

PROD_SECTION = (
    '  image:\n    tag: ""\n    digest: ""\n  replicaCount: 1\n  autoscaling:\n    enabled: false\n'
    "  podDisruptionBudget:\n    enabled: false\n"
)


def _configure(checkout: labs.Checkout, apps: list[str], bucket: str) -> None:
    """``apps`` (each a release of charts/api) in place of the repository's own, and an own state bucket."""
    root = checkout.root
    kept, skipping = [], False
    for line in (root / "pyproject.toml").read_text().splitlines():
        if line.startswith("["):
            skipping = line.startswith("[tool.deployctl.apps.")
        if not skipping:
            kept.append(line)
    text = "\n".join(kept).replace("acme-api-tfstate", bucket) + "\n"
    blocks = "".join(
        f'\n[tool.deployctl.apps.{app}]\nchart = "charts/api"\nrelease = "{app}"\n'
        f'image = {{ registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", repository = "{app}" }}\n'
        for app in apps
    )
    text = text.replace("\n[tool.deployctl.environments.shared]", blocks + "\n[tool.deployctl.environments.shared]")
    (root / "pyproject.toml").write_text(text)
    (root / "values-dev.yaml").write_text("".join(f"{app}:\n  replicaCount: 1\n" for app in apps))
    (root / "values-prod.yaml").write_text("".join(f"{app}:\n{PROD_SECTION}" for app in apps))
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "init"]):
        checkout.run(["git", *args])
    checkout.run(["git", "remote", "add", "origin", str(root)])  # the tag gate asks origin; here it is itself


def _round(checkout: labs.Checkout, lab_registry: str, apps: list[str], number: int) -> float:
    checkout.run(["git", "commit", "-q", "--allow-empty", "-m", f"round {number}"])
    sha = checkout.run(["git", "rev-parse", "HEAD"]).stdout.strip()
    for seed, app in enumerate(apps):
        image_push.push_image(lab_registry, app, sha, seed=number * 10 + seed, layer_size=64 * 1024)
    checkout.deployctl("deploy", "dev")
    tag = f"release-1.{number}.0"
    checkout.run(["git", "tag", "-a", tag, "-m", tag])
    started = time.perf_counter()
    checkout.deployctl("promote", tag)
    return time.perf_counter() - started


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    rounds = 1 if smoke else repeat
    solo, trio = ["solo"], ["trio-a", "trio-b", "trio-c"]
    with labs.started(["moto", "registry", "cluster"]) as lab:
        host = lab.registry_hosts[0]
        with labs.checkout(lab) as one, labs.checkout(lab) as three:
            _configure(one, solo, "bench-solo-tfstate")
            _configure(three, trio, "bench-trio-tfstate")
            for checkout in (one, three):  # the buckets of the configurations as rewritten
                checkout.deployctl("sandbox", "env")
            times: dict[str, list[float]] = {"1 app": [], "3 apps": []}
            for number in range(1, rounds + 1):
                for name, checkout, apps in (("1 app", one, solo), ("3 apps", three, trio)):
                    say(f"promote_apps: round {number}/{rounds}, {name}")
                    times[name].append(_round(checkout, host, apps, number))
    one_app, three_apps = (Sample("promote_apps", f"promote {k}", tuple(v)) for k, v in times.items())
    ratio = three_apps.median / one_app.median if one_app.median else float("nan")
    return [one_app, Sample("promote_apps", "promote 3 apps", three_apps.times, {"vs 1 app": ratio, "target": 1.5})]
