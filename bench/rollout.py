"""Time to a failure verdict for an image that crashes: ``deployctl deploy`` vs ``helm upgrade --wait``.

Both install the same chart with the same values into the lab's control plane (kwok nodes), with an
image the lab marks as crashing (CrashLoopBackOff). deployctl watches the rollout and fails at the
first crash loop; ``helm upgrade --install --wait --timeout 5m`` (helm 4, watcher strategy) returns
when the Deployment reports ProgressDeadlineExceeded (``progressDeadlineSeconds``: 120 in the chart)
or at its timeout. helm's side takes minutes, so it runs once; deployctl's runs ``repeat`` times,
each time from a healthy release (a good image is rolled forward, untimed, between runs).
"""

from __future__ import annotations

import json
import time

from bench import labs
from bench.measure import Sample, say, timed
from deployctl.errors import ExitCode
from deployctl.sandbox import images

TARGET_SPEEDUP = 20.0
HELM_NAMESPACE = "bench-helm"
HELM_TIMEOUT = "5m"


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    with labs.started(["moto", "registry", "cluster"]) as lab, labs.checkout(lab) as repo:
        host = lab.registry_hosts[0]
        good = images.push_image(host, "api", "good", seed=101).digest
        crash = images.push_image(host, "api", "crash", seed=102).digest
        lab.mark_image(crash, "crashloop")
        failed = (int(ExitCode.FAILED),)

        say("rollout: deployctl deploy dev (good image, untimed: the release the broken one upgrades)")
        repo.deployctl("deploy", "dev", "--digest", good)
        ours: list[float] = []
        reasons: set[str] = set()
        for n in range(repeat):
            say(f"rollout: deployctl deploy dev --digest <crashing> ({n + 1}/{repeat})")
            started = time.perf_counter()
            result = repo.deployctl("deploy", "dev", "--digest", crash, ok_codes=failed, output_json=True)
            ours.append(time.perf_counter() - started)
            reasons.add(str(json.loads(result.stdout)["error"].get("reason")))
            repo.deployctl("deploy", "dev", "--digest", good)  # roll forward, untimed

        chart = str(repo.root / "charts" / "api")
        helm = [
            "helm", "upgrade", "api", chart, "--install", "--namespace", HELM_NAMESPACE, "--create-namespace",
            "-f", str(repo.root / "values-dev.yaml"), "--set-string", f"image.repository={host}/api",
            "--kubeconfig", str(lab.kubeconfig), "--kube-context", lab.context, "--wait", "--timeout", HELM_TIMEOUT,
        ]  # fmt: skip
        if smoke:
            helm_sample = Sample.skipped("rollout", f"helm upgrade --wait --timeout {HELM_TIMEOUT}", "smoke: minutes")
        else:
            say("rollout: helm upgrade --install --wait (good image, untimed)")
            repo.run([*helm, "--set-string", f"image.digest={good}"])
            say(f"rollout: helm upgrade --install --wait --timeout {HELM_TIMEOUT} <crashing> (once: takes minutes)")
            seconds = timed(lambda: repo.run([*helm, "--set-string", f"image.digest={crash}"], ok_codes=failed))
            helm_sample = Sample(
                "rollout", f"helm upgrade --wait --timeout {HELM_TIMEOUT}", (seconds,), {"runs": "1 (minutes each)"}
            )

    extra: dict[str, object] = {"verdict": "/".join(sorted(reasons))}
    if helm_sample.times:
        extra.update(speedup_vs_helm=helm_sample.median / sorted(ours)[len(ours) // 2])
    extra["target"] = f">= {TARGET_SPEEDUP:.0f}x faster"
    return [Sample("rollout", "deployctl deploy (crashing image)", tuple(ours), extra), helm_sample]
