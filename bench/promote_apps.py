"""Promoting a release of 1, 3 and 10 apps (issue 29: 3 apps <= 1.5x one app, 10 apps <= 2.5x one app, CPU per
additional app <= 1.0 CPU-second).

One checkout per size in one lab, each a git repository whose configuration points at the lab, with generated apps
(each its own release of charts/api, its own image, no ``needs``: one level, rolled out together). Each round
commits, builds every app's image, deploys dev (untimed: the evidence), tags a release and times
``deployctl promote`` (retag every image, record the values, roll every app out in prod and verify it): its wall
time and its CPU (user + system of the process and every child it waited for: helm, git; and of the process
alone, ``measure.run_split``), and the CPU the lab's services (API server, etcd, controllers, kwok, registry, moto)
spent meanwhile on the same two cores (``measure.process_group_cpu``). The sizes take turns
round by round (the order rotates), so load hits them alike; with ``--baseline REF`` the baseline's deployctl
promotes beside this tree's in every round.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench import labs
from bench.measure import Sample, loadavg, process_group_cpu, say
from deployctl.sandbox import image_push
from deployctl.sandbox.lab import Lab

SIZES = (1, 3, 10)
TARGETS = {3: 1.5, 10: 2.5}  # wall time vs one app
TARGET_CPU_PER_APP = 1.0  # CPU-seconds per additional app
PROD_SECTION = (
    '  image:\n    tag: ""\n    digest: ""\n  replicaCount: 1\n  autoscaling:\n    enabled: false\n'
    "  podDisruptionBudget:\n    enabled: false\n"
)


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float  # the process and its children (helm, git)
    own_cpu: float  # the process alone
    lab_cpu: float  # the lab's services (cluster, registry, moto) meanwhile, on the same cores
    load: float


def app_names(size: int) -> list[str]:
    return [f"app{size:02d}-{i:02d}" for i in range(size)]


def _configure(checkout: labs.Checkout, apps: list[str], bucket: str) -> None:
    """``apps`` (each a release of charts/api) in place of the repository's own, an own state bucket, and prod
    promoting right after dev (no soak: the benchmark promotes what it just deployed)."""
    root = checkout.root
    kept, skipping = [], False
    for line in (root / "pyproject.toml").read_text().splitlines():
        if line.startswith("["):
            skipping = line.lstrip("[").startswith("tool.deployctl.apps.")  # [[...]]: arrays of tables too
        if not skipping:
            kept.append(line)
        if line == 'promote_from = "dev"':
            kept.append("promote_soak_minutes = 0")
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


def _round(checkout: labs.Checkout, lab: Lab, apps: list[str], number: int, side: labs.Side) -> Run:
    checkout.run(["git", "commit", "-q", "--allow-empty", "-m", f"round {number}"])
    sha = checkout.run(["git", "rev-parse", "HEAD"]).stdout.strip()
    for seed, app in enumerate(apps):
        image_push.push_image(lab.registry_hosts[0], app, sha, seed=number * 100 + seed, layer_size=64 * 1024)
    checkout.deployctl("deploy", "dev", side=side)
    tag = f"release-1.{number}.0"
    checkout.run(["git", "tag", "-a", tag, "-m", tag])
    load = loadavg()
    groups = [service.pid for service in lab.services.values()]
    lab_before = process_group_cpu(groups)
    found = checkout.deployctl_split("promote", tag, side=side)
    lab_cpu = process_group_cpu(groups) - lab_before
    return Run(found.seconds, found.own_cpu + found.children_cpu, found.own_cpu, lab_cpu, load)


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    rounds = 1 if smoke else repeat
    sizes = (1, 3) if smoke else SIZES
    sides = labs.sides()
    runs: dict[tuple[str, int], list[Run]] = {(s.label, n): [] for s in sides for n in sizes}
    with (
        labs.started(["moto", "registry", "cluster"]) as lab,
        labs.checkout(lab) as c1,
        labs.checkout(lab) as c3,
        labs.checkout(lab) as c10,
    ):
        checkouts = dict(zip(SIZES, (c1, c3, c10), strict=True))
        for size in sizes:
            _configure(checkouts[size], app_names(size), f"bench-apps{size}-tfstate")
            checkouts[size].deployctl("sandbox", "env")  # the buckets of the configuration as rewritten
        number = 0
        for n in range(rounds):
            order = list(sizes[n % len(sizes) :] + sizes[: n % len(sizes)])
            for size in order:
                for side in labs.alternate(sides, n + size):
                    number += 1
                    say(f"promote_apps: round {n + 1}/{rounds}, {size} app(s), {side.label}, load {loadavg()}")
                    runs[(side.label, size)].append(_round(checkouts[size], lab, app_names(size), number, side))
    return samples(sides, sizes, runs)


def samples(sides: list[labs.Side], sizes: tuple[int, ...], runs: dict[tuple[str, int], list[Run]]) -> list[Sample]:
    found = []
    for side in sides:
        one = runs[(side.label, 1)]
        wall1, cpu1 = statistics.median(r.seconds for r in one), statistics.median(r.cpu for r in one)
        for size in sizes:
            mine = runs[(side.label, size)]
            wall, cpu = statistics.median(r.seconds for r in mine), statistics.median(r.cpu for r in mine)
            extra: dict[str, object] = {
                "cpu_s": cpu,
                "own_cpu_s": statistics.median(r.own_cpu for r in mine),
                "lab_cpu_s": statistics.median(r.lab_cpu for r in mine),
                "cpus": [round(r.cpu, 2) for r in mine],  # round by round: a history that grows shows here
                "lab_cpus": [round(r.lab_cpu, 2) for r in mine],
                "load": f"{min(r.load for r in mine):.1f}-{max(r.load for r in mine):.1f}",
            }
            if size > 1:
                ratio, per_app = wall / wall1, (cpu - cpu1) / (size - 1)
                extra |= {"vs_1_app": ratio, "cpu_per_added_app": per_app}
                met = ratio <= TARGETS.get(size, float("inf")) and per_app <= TARGET_CPU_PER_APP
                extra["target"] = (
                    f"<= {TARGETS.get(size)}x and <= {TARGET_CPU_PER_APP} CPU-s/app: {'met' if met else 'NOT met'}"
                )
            subject = f"promote {size} app{'s' if size > 1 else ''}" + (f" ({side.label})" if len(sides) > 1 else "")
            found.append(Sample("promote_apps", subject, tuple(r.seconds for r in mine), extra))
    return found
