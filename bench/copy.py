"""Cross-registry copy of a multi-layer image: deployctl's copy vs ``crane copy``; cold, warm, and memory.

* cold: the target repository is new (every blob moves); a fresh repository per run for both tools.
* warm: every blob is already in the target; the same digest is copied to a new tag (HEADs + a manifest).
* memory: deployctl's copy in a child process, peak RSS read from ``wait4``, for the same total size
  split into small and large layers: streaming keeps it flat in the layer size (crane's alongside).

Bytes are measured through counting TCP proxies in front of both registries, in one extra run each.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench import labs
from bench.measure import Sample, loadavg, run_measured, say, timed
from bench.proxy import CountingProxy, Traffic
from deployctl.adapters import registry
from deployctl.runner import ProcessRunner
from deployctl.sandbox import image_push

MiB = 2**20
SOURCE = "bench/src"
# (layers, layer size): the timed image, then the same total in larger layers for the memory run
IMAGE = (8, 25 * MiB)
BIG_LAYERS = (2, 100 * MiB)
SMOKE_IMAGE = (4, 256 * 1024)
SMOKE_BIG_LAYERS = (1, MiB)
TARGET_COLD = 1.0  # issue 20: no slower than crane cold, with every blob's digest still verified
TARGET_WARM_SECONDS = 1.0

# The child process of the memory measurement: nothing but deployctl's copy.
CHILD = """
import sys
from deployctl.adapters import registry
src_host, src_repo, dst_host, dst_repo, digest, tag = sys.argv[1:]
ep = lambda host, repo: registry.Endpoint(host, repo, oci=registry.OciRegistry(host))
report = registry.promote_image(ep(src_host, src_repo), ep(dst_host, dst_repo), digest, tag)
assert report.mode == "copy" and report.bytes_copied > 0, report
print(report.bytes_copied)
"""
FLOOR = "import concurrent.futures, urllib3, deployctl.adapters.registry"


@dataclass
class Subject:
    name: str
    times: list[float] = field(default_factory=list)
    traffic: Traffic = field(default_factory=lambda: Traffic(0, 0))
    extra: dict[str, object] = field(default_factory=dict)


def _endpoint(host: str, repository: str) -> registry.Endpoint:
    return registry.Endpoint(host, repository, oci=registry.OciRegistry(host))


def _label(shape: tuple[int, int]) -> str:
    layers, size = shape
    return f"{layers}x{_size(size)}"


def _size(size: int) -> str:
    return f"{size // MiB} MB" if size >= MiB else f"{size // 1024} KB"


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    shape, big = (SMOKE_IMAGE, SMOKE_BIG_LAYERS) if smoke else (IMAGE, BIG_LAYERS)
    total = _size(shape[0] * shape[1])
    repos = (f"bench/t{n}" for n in itertools.count())
    runner = ProcessRunner()
    with labs.started(["registry"], registries=2) as lab:
        src, dst = lab.registry_hosts
        env = labs.tool_env(lab)
        say(f"copy: pushing a {total} image ({_label(shape)}) and the same in {_label(big)}")
        image = image_push.push_image(src, SOURCE, "build-1", layers=shape[0], layer_size=shape[1], seed=1)
        image_big = image_push.push_image(src, SOURCE, "build-2", layers=big[0], layer_size=big[1], seed=2)
        digest = image.digest

        def ours(src_host: str, dst_host: str, repository: str, tag: str) -> registry.TransferReport:
            report = registry.promote_image(_endpoint(src_host, SOURCE), _endpoint(dst_host, repository), digest, tag)
            if report.mode != "copy":
                raise AssertionError(f"expected a copy, got {report.mode}")
            return report

        def crane(src_host: str, dst_host: str, repository: str, tag: str) -> None:
            runner.run(
                ["crane", "copy", "--insecure", f"{src_host}/{SOURCE}@{digest}", f"{dst_host}/{repository}:{tag}"],
                env=env,
                timeout=900,
            )

        cold = {"deployctl": Subject(f"deployctl copy {total} cold"), "crane": Subject(f"crane copy {total} cold")}
        warm = {"deployctl": Subject(f"deployctl copy {total} warm"), "crane": Subject(f"crane copy {total} warm")}
        tools: dict[str, Callable[[str, str, str, str], object]] = {"deployctl": ours, "crane": crane}
        warm_repo = {name: next(repos) for name in tools}
        for name, copy in tools.items():  # warm-up (page cache, code loaded); leaves the warm targets full
            copy(src, dst, warm_repo[name], "release-0.0.0")
        tags = (f"release-1.0.{n}" for n in itertools.count())
        say(f"copy: cold x{repeat}, interleaved")
        loads = [loadavg()]
        for _ in range(repeat):
            for name, copy in tools.items():
                cold[name].times.append(timed(functools.partial(copy, src, dst, next(repos), "release-1.0.0")))
        say(f"copy: warm x{repeat}, interleaved")
        for _ in range(repeat):
            for name, copy in tools.items():
                warm[name].times.append(timed(functools.partial(copy, src, dst, warm_repo[name], next(tags))))
        loads.append(loadavg())
        for subjects in (cold, warm):
            subjects["deployctl"].extra["load"] = f"{min(loads):.1f}-{max(loads):.1f}"

        say("copy: one cold and one warm run of each through counting proxies")
        for name, copy in tools.items():
            repository = next(repos)
            for subjects, tag in ((cold, "release-1.0.0"), (warm, "release-1.0.1")):
                with CountingProxy(src) as from_proxy, CountingProxy(dst) as to_proxy:
                    report = copy(from_proxy.host, to_proxy.host, repository, tag)
                    subjects[name].traffic = Traffic(up=to_proxy.traffic().up, down=from_proxy.traffic().down)
                if isinstance(report, registry.TransferReport):
                    subjects[name].extra.update(
                        blobs_copied=report.blobs_copied,
                        blobs_present=report.blobs_present,
                        blob_bytes_copied=report.bytes_copied,
                    )

        samples = _timing_samples(cold, warm, shape[0] * shape[1])
        samples += _memory_samples(src, dst, [(shape, image.digest), (big, image_big.digest)], repos, env)
    return samples


def _median(times: list[float]) -> float:
    return sorted(times)[len(times) // 2]


def _timing_samples(cold: dict[str, Subject], warm: dict[str, Subject], size: int) -> list[Sample]:
    samples = []
    for kind, subjects in (("cold", cold), ("warm", warm)):
        ratio = _median(subjects["deployctl"].times) / _median(subjects["crane"].times)
        target = f"<= {TARGET_COLD}x crane" if kind == "cold" else f"< {TARGET_WARM_SECONDS:.0f}s, 0 blob bytes"
        for name, subject in subjects.items():
            extra: dict[str, object] = {
                "image_bytes": size,
                "bytes_to_target": subject.traffic.up,
                "bytes_from_source": subject.traffic.down,
                **subject.extra,
            }
            if name == "deployctl":
                pairs = zip(subjects["deployctl"].times, subjects["crane"].times, strict=True)
                paired = _median([ours / theirs for ours, theirs in pairs])  # run n against run n (interleaved)
                extra.update(ratio_vs_crane=ratio, paired_ratio=paired, target=target)
            samples.append(Sample("copy", subject.name, tuple(subject.times), extra))
    return samples


def _memory_samples(
    src: str, dst: str, shapes: list[tuple[tuple[int, int], str]], repos: Iterator[str], env: dict[str, str]
) -> list[Sample]:
    """Peak RSS of one copy in a child process, per layer size; the interpreter + imports as the floor."""
    say("copy: peak memory of deployctl's and crane's copy in child processes")
    floor = run_measured([sys.executable, "-c", FLOOR], env=env)
    crane = shutil.which("crane", path=env["PATH"]) or "crane"
    samples: list[Sample] = []
    first: float | None = None
    for shape, digest in shapes:
        label = _label(shape)
        ours = run_measured(
            [sys.executable, "-c", CHILD, src, SOURCE, dst, next(repos), digest, "release-1.0.0"], env=env
        )
        theirs = run_measured(
            [crane, "copy", "--insecure", f"{src}/{SOURCE}@{digest}", f"{dst}/{next(repos)}:release-1.0.0"], env=env
        )
        for run in (ours, theirs):
            if run.exit_code != 0:
                raise RuntimeError(f"memory run failed (exit {run.exit_code}):\n{run.output[-2000:]}")
        extra: dict[str, object] = {
            "peak_rss_mib": ours.peak_rss_mib,
            "python_floor_mib": floor.peak_rss_mib,
            "above_floor_mib": ours.peak_rss_mib - floor.peak_rss_mib,
        }
        if first is None:
            first = ours.peak_rss_mib
        else:
            extra.update(ratio_to_small_layers=ours.peak_rss_mib / first, target="flat in layer size")
        samples.append(Sample("copy", f"deployctl copy peak RSS, {label}", (ours.seconds,), extra))
        samples.append(
            Sample("copy", f"crane copy peak RSS, {label}", (theirs.seconds,), {"peak_rss_mib": theirs.peak_rss_mib})
        )
    return samples
