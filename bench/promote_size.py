"""Promotion within one registry: deployctl's retag vs the pull/tag/push a pipeline would otherwise do.

deployctl moves the release tag with the manifest bytes only (``registry.promote_image``, mode
``oci-retag``): GET the manifest by digest, PUT the same bytes under the tag. The naive pipeline
pulls the whole image (``crane pull --format oci``, digests kept) and pushes it back under the new
tag (``crane push``: its blobs are HEADed and found, as ``docker push`` finds "Layer already exists").

Bytes are measured, not assumed: one extra run of each subject goes through a counting TCP proxy.
"""

from __future__ import annotations

import functools
import itertools
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from bench import labs
from bench.measure import Sample, say, scratch_dir, timed
from bench.proxy import CountingProxy, Traffic
from deployctl.adapters import registry
from deployctl.runner import ProcessRunner
from deployctl.sandbox import image_push

LAYERS = 4
SIZES = (("5 MB", 5 * 2**20 // LAYERS), ("500 MB", 500 * 2**20 // LAYERS))
SMOKE_SIZES = (("64 KB", 64 * 2**10 // LAYERS), ("1 MB", 2**20 // LAYERS))
REPOSITORY = "bench/api"


@dataclass
class Subject:
    name: str
    times: list[float]
    traffic: Traffic


def _endpoint(host: str) -> registry.Endpoint:
    return registry.Endpoint(host, REPOSITORY, oci=registry.OciRegistry(host))


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    tags = (f"release-1.0.{n}" for n in itertools.count())
    sizes = SMOKE_SIZES if smoke else SIZES
    with labs.started(["registry"]) as lab:
        host = lab.registry_hosts[0]
        env = labs.tool_env(lab)
        runner = ProcessRunner()
        work = scratch_dir("pull")

        def retag(target: str, digest: str) -> None:
            report = registry.promote_image(_endpoint(target), _endpoint(target), digest, next(tags))
            if report.mode != "oci-retag":
                raise AssertionError(f"expected a same-registry retag, got {report.mode}")

        def naive(target: str, digest: str) -> None:
            layout = work / "layout"
            shutil.rmtree(layout, ignore_errors=True)
            source = f"{target}/{REPOSITORY}@{digest}"
            runner.run(["crane", "pull", "--insecure", "--format", "oci", source, str(layout)], env=env, timeout=900)
            runner.run(
                ["crane", "push", "--insecure", str(layout), f"{target}/{REPOSITORY}:{next(tags)}"],
                env=env,
                timeout=900,
            )
            shutil.rmtree(layout, ignore_errors=True)

        try:
            digests = {}
            for seed, (label, layer_size) in enumerate(sizes):
                say(f"promote_size: pushing a {label} image ({LAYERS} layers)")
                digests[label] = image_push.push_image(
                    host, REPOSITORY, f"build-{seed}", layer_size=layer_size, layers=LAYERS, seed=seed
                ).digest
            subjects = {
                (label, kind): Subject(
                    f"deployctl retag {label}" if kind == "deployctl" else f"crane pull+push {label} (naive)",
                    [],
                    Traffic(0, 0),
                )
                for label, _ in sizes
                for kind in ("deployctl", "naive")
            }
            actions: dict[str, Callable[[str, str], None]] = {"deployctl": retag, "naive": naive}
            for (label, kind), subject in subjects.items():
                actions[kind](host, digests[label])  # warm-up: page cache, code loaded
                # One more run through the counting proxy (not timed: the relay costs time).
                with CountingProxy(host) as proxy:
                    actions[kind](proxy.host, digests[label])
                    subject.traffic = proxy.traffic()
            say(f"promote_size: x{repeat}, every subject in turn")
            for _ in range(repeat):
                for (label, kind), subject in subjects.items():
                    subject.times.append(timed(functools.partial(actions[kind], host, digests[label])))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    samples: list[Sample] = []
    for label, layer_size in sizes:
        samples += _samples(layer_size * LAYERS, subjects[label, "deployctl"], subjects[label, "naive"])
    _compare_sizes(samples)
    return samples


def _samples(size: int, ours: Subject, naive: Subject) -> list[Sample]:
    median_ours = sorted(ours.times)[len(ours.times) // 2]
    median_naive = sorted(naive.times)[len(naive.times) // 2]
    return [
        Sample(
            "promote_size",
            ours.name,
            tuple(ours.times),
            {
                "image_bytes": size,
                "bytes_sent": ours.traffic.up,
                "bytes_received": ours.traffic.down,
                "speedup_vs_naive": median_naive / median_ours,
                "target": "bytes independent of size",
            },
        ),
        Sample(
            "promote_size",
            naive.name,
            tuple(naive.times),
            {"image_bytes": size, "bytes_sent": naive.traffic.up, "bytes_received": naive.traffic.down},
        ),
    ]


def _compare_sizes(samples: list[Sample]) -> None:
    """The large image's retag vs the small one's: equal within noise is the target."""
    ours = [s for s in samples if s.subject.startswith("deployctl")]
    if len(ours) == 2:
        small, large = ours
        large.extra["ratio_to_small"] = large.median / small.median
        large.extra["bytes_ratio_to_small"] = (large.extra["bytes_sent"] + large.extra["bytes_received"]) / max(
            1, small.extra["bytes_sent"] + small.extra["bytes_received"]
        )
