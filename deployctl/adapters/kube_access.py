"""How helm and the API reach one cluster: its kubeconfig as configured, or, on EKS, a private kubeconfig whose
user is an exec credential (``deployctl eks-token ENV [--cluster NAME]``), so helm and the Python client mint a
fresh token whenever theirs expires; the file holds no secret."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from deployctl.adapters.aws import AwsSession
from deployctl.adapters.helm_argv import Kube
from deployctl.config import Cluster, LoadedConfig
from deployctl.core.errors import UsageError


@contextmanager
def kube_for(
    config: LoadedConfig,
    env_name: str,
    cluster: Cluster,
    *,
    name: str | None,
    region: str,
    aws_in: Callable[[str], AwsSession],
) -> Iterator[Kube]:
    """The kubeconfig and context of ``cluster`` (``name``: one of the environment's several, in ``region``) for the
    block; an EKS kubeconfig is a temp file removed after it."""
    from deployctl.adapters import eks

    key = f"environments.{env_name}." + (f"clusters.{name}" if name else "cluster")
    if cluster.kubeconfig is not None:
        path = config.resolve(cluster.kubeconfig)
        if not path.is_file():
            raise UsageError(
                f"kubeconfig {path} ({key}.kubeconfig) does not exist",
                "fix the path in the configuration, or create the cluster first",
            )
        yield Kube(path, cluster.context)
        return
    eks_name = str(cluster.eks)
    endpoint, ca_data = eks.describe(aws_in(region), eks_name)
    command, args = eks.token_command(env_name, config.path)
    args += ["--cluster", name] if name else []
    document = eks.kubeconfig(name=eks_name, endpoint=endpoint, ca_data=ca_data, command=command, args=args)
    fd, temp = tempfile.mkstemp(prefix="deployctl-kubeconfig-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        yield Kube(Path(temp), eks_name)
    finally:
        Path(temp).unlink(missing_ok=True)
