"""Where a configuration's environments point when they run against the lab: moto, its registries, its control
planes (one per cluster in turn), its metrics API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployctl.sandbox import metrics_server

if TYPE_CHECKING:
    from deployctl.sandbox.lab import Lab


def overrides(lab: Lab, config: Any) -> dict[str, Any]:
    """The nested override for ``deployctl.config.load(path, overrides)`` that points every environment of
    ``config`` (a ``DeployctlConfig``) at ``lab``."""
    environments: dict[str, Any] = {}
    for name, env in config.environments.items():
        over: dict[str, Any] = {
            "aws": {"endpoint_url": lab.moto_url if "moto" in lab.services else None, "role_arn": None}
        }
        hosts = lab.registry_hosts
        if getattr(env, "image_registry", None) and hosts:
            # An environment with its own registry (another account) gets the second registry, so the
            # cross-registry copy is rehearsed too.
            over["image_registry"] = hosts[min(1, len(hosts) - 1)]
        if env.deployable and "kube-apiserver" in lab.services:
            over["namespace"] = f"{name}-{env.namespace}"
        if getattr(env, "metrics", None) and metrics_server.NAME in lab.services:
            over["metrics"] = {"url": lab.services[metrics_server.NAME].endpoint, "token_env": None}
        if env.cluster is not None and "kube-apiserver" in lab.services:
            over["cluster"] = {"kubeconfig": str(lab.kubeconfig), "eks": None, "context": lab.context}
        clusters = sorted(getattr(env, "clusters", {}).items(), key=lambda item: (item[1].wave, item[0]))
        for index, (cluster, spec) in enumerate(clusters if lab.control_planes else ()):
            # several clusters: each on a control plane in turn; a cluster with its own registry on the
            # registries after the first (registry-1, registry-2 ...), so the copy to each is rehearsed
            kubeconfig = lab.kubeconfigs[index % len(lab.kubeconfigs)]
            access: dict[str, Any] = {"kubeconfig": str(kubeconfig), "eks": None, "context": lab.context}
            if spec.image_registry and hosts:
                access["image_registry"] = hosts[min(1 + index, len(hosts) - 1)]
            over.setdefault("clusters", {})[cluster] = access
        environments[name] = over
    overrides: dict[str, Any] = {"environments": environments}
    if lab.registry_hosts:
        overrides["apps"] = {app: {"image": {"registry": lab.registry_hosts[0]}} for app in config.apps}
    return overrides
