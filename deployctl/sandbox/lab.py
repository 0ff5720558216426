"""The lab: real local stand-ins on 127.0.0.1, offline, on ports that cannot be taken from under it.

* ``moto``      one moto server for S3/STS/IAM/EC2/EKS/ECR/DynamoDB
* ``registry``  one or more CNCF distribution registries (filesystem storage, delete enabled), each
                behind an ECR front that refuses re-pushed tags of IMMUTABLE repositories
                (``registry_front.py``)
* ``cluster``   etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok
                (``control_plane.py``)
* ``cluster2``  opt-in: a second control plane of its own (services ``cluster2-etcd`` ...), for environments with
                several clusters; only the labs that ask for it pay for it

Every service runs in its own process group with its log in the state directory (``processes.py``).
``stop()`` kills the groups and verifies no process is left and every port is closed. A ``Lab`` can be
saved to and restored from a JSON state (the detached ``deployctl sandbox``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deployctl.sandbox import http_marks, http_standin, lab_overrides, metrics_server
from deployctl.sandbox import tools as tools_module
from deployctl.sandbox.control_plane import CONTEXT, DEFAULT_MARKERS, ControlPlane
from deployctl.sandbox.lab_services import moto_launch, registry_backend_launch, registry_front_launch
from deployctl.sandbox.processes import LabError, Processes, Service

__all__ = ["COMPONENTS", "OPT_IN", "Lab", "LabError"]

COMPONENTS = ("moto", "registry", "cluster", "metrics")
OPT_IN = ("cluster2",)  # started only when asked for (``start(components)``)
SECOND = "cluster2-"  # the second control plane's service names
# Clients reach registry N at its ECR front ``registry-N``; the CNCF registry behind it is ``registry-N-backend``.
FRONT_NAME = re.compile(r"registry-\d+")
BACKEND_NAME = re.compile(r"registry-\d+-backend")
STATE_VERSION = 1


@dataclass
class Lab:
    """Local services for tests and the sandbox; state (data, logs, pids) lives in ``state_dir``."""

    state_dir: Path
    tools: tools_module.Tools | None = None
    components: tuple[str, ...] = ()
    registries: int = 1
    nodes: int = 3
    processes: Processes = field(init=False, repr=False)
    control_plane: ControlPlane = field(init=False, repr=False)
    second: ControlPlane = field(init=False, repr=False)  # ``cluster2``: another cluster (in another "region")

    def __post_init__(self) -> None:
        self.processes = Processes(self.state_dir)
        self.control_plane = ControlPlane(self.state_dir / "cluster", self.processes, nodes=self.nodes)
        self.second = ControlPlane(
            self.state_dir / "cluster2", self.processes, nodes=self.nodes, prefix=SECOND, region="eu-west-1"
        )

    @property
    def control_planes(self) -> list[ControlPlane]:
        """The running control planes, the first one first."""
        return [c for c in (self.control_plane, self.second) if c.running]

    @property
    def kubeconfigs(self) -> list[Path]:
        """The kubeconfig of each running control plane (the clusters of an environment with several)."""
        return [c.kubeconfig for c in self.control_planes]

    @property
    def services(self) -> dict[str, Service]:
        """Every running service by name, in start order."""
        return self.processes.services

    # ----------------------------------------------------------------- endpoints

    @property
    def moto_url(self) -> str:
        return self.processes.get("moto").endpoint

    @property
    def registry_hosts(self) -> list[str]:
        """``host:port`` of each registry as clients reach it (its ECR front), ``registry-0`` first."""
        return [s.endpoint for name, s in sorted(self.services.items()) if FRONT_NAME.fullmatch(name)]

    @property
    def registry_backend_hosts(self) -> list[str]:
        """``host:port`` of the CNCF registry behind each front (no tag-mutability check), in order."""
        return [s.endpoint for name, s in sorted(self.services.items()) if BACKEND_NAME.fullmatch(name)]

    @property
    def kubeconfig(self) -> Path:
        return self.control_plane.kubeconfig

    @property
    def context(self) -> str:
        return CONTEXT

    @property
    def terraformrc(self) -> Path:
        return self.state_dir / "terraformrc"

    @property
    def bin_dir(self) -> Path:
        return self.tools.bin_dir if self.tools is not None else tools_module.bin_dir()

    def logs(self) -> dict[str, str]:
        return {name: service.log for name, service in self.services.items()}

    def env(self) -> dict[str, str]:
        """Environment for child tools (terraform, helm, kubectl, boto3) so they use the lab."""
        path = os.pathsep.join([str(self.bin_dir), os.environ.get("PATH", "")])
        env = {
            "PATH": path,
            "TF_CLI_CONFIG_FILE": str(self.terraformrc),
            "TF_IN_AUTOMATION": "1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }
        if "moto" in self.services:
            env["AWS_ENDPOINT_URL"] = self.moto_url
        if "kube-apiserver" in self.services:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    @property
    def aws_credentials_file(self) -> Path:
        return self.state_dir / "aws-credentials"

    def shell_env(self) -> dict[str, str]:
        """``env()`` for printing (``deployctl sandbox env``): the fake keys come from a credentials file
        (profile ``deployctl-sandbox``), so no secret-shaped ``KEY=VALUE`` is ever printed (the console
        masks those, which would break ``eval``)."""
        env = {k: v for k, v in self.env().items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.aws_credentials_file)
        env["AWS_PROFILE"] = "deployctl-sandbox"
        return env

    def _write_aws_credentials(self) -> None:
        self.aws_credentials_file.write_text(
            "[deployctl-sandbox]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        )

    def config_overrides(self, config: Any) -> dict[str, Any]:
        """The nested override for ``deployctl.config.load(path, overrides)`` that points every
        environment of ``config`` (a ``DeployctlConfig``) at the lab (``lab_overrides``)."""
        return lab_overrides.overrides(self, config)

    # ----------------------------------------------------------------- lifecycle

    def start(
        self,
        components: Iterable[str] = COMPONENTS,
        *,
        registries: int | None = None,
        progress: Callable[[str], None] | None = None,
        timeout: float = 90,
    ) -> Lab:
        """Start the components (each waits for readiness within ``timeout``); on failure everything
        started so far is stopped and the error names the log to read."""
        wanted = tuple(components)
        unknown = set(wanted) - set(COMPONENTS) - set(OPT_IN)
        if unknown:
            known = ", ".join((*COMPONENTS, *OPT_IN))
            raise LabError(f"unknown lab component(s): {', '.join(sorted(unknown))} (known: {known})")
        self.components = wanted
        self.registries = registries if registries is not None else self.registries
        say = progress or (lambda _line: None)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.tools is None:
            self.tools = tools_module.installed() or tools_module.install(say)
        tools_module.write_terraformrc(self.tools.provider_mirror, self.terraformrc)
        self._write_aws_credentials()
        started = time.monotonic()
        try:
            # moto and the registries come up while the control plane starts (it waits on each step).
            early = [moto_launch()] if "moto" in wanted else []
            if "metrics" in wanted:  # a Prometheus-compatible API for metric checks (``metrics_server``)
                early.append(metrics_server.launch(self.tools["victoria-metrics"], self.state_dir / "metrics"))
            if "registry" in wanted:
                assert self.tools is not None  # noqa: S101 - set above
                registry = self.tools["docker-registry"]
                early += [registry_backend_launch(self.state_dir, registry, i) for i in range(self.registries)]
            self.processes.spawn(early)
            planes = [c for c, part in ((self.control_plane, "cluster"), (self.second, "cluster2")) if part in wanted]
            tools = self.tools
            if len(planes) == 1:
                planes[0].start(tools, say, timeout)
            elif planes:  # two start side by side (each waits on its own steps: etcd, API server, the rest)
                with ThreadPoolExecutor(max_workers=len(planes), thread_name_prefix="lab") as pool:
                    for started_plane in [pool.submit(plane.start, tools, say, timeout) for plane in planes]:
                        started_plane.result()
            self.processes.settle(early, timeout, say=say)
            if "registry" in wanted:
                moto = self.moto_url if "moto" in self.services else None
                backends = [self.processes.get(f"registry-{i}-backend").endpoint for i in range(self.registries)]
                fronts = [registry_front_launch(i, backend, moto) for i, backend in enumerate(backends)]
                self.processes.start(fronts, timeout, say=say)
            for plane in planes:
                plane.add_nodes(timeout)
            if "cluster" in wanted:  # the first cluster's Services answer HTTP (``http_standin``)
                self.processes.start([http_standin.launch(self.state_dir, self.kubeconfig)], timeout, say=say)
        except BaseException:
            self.stop(check=False)
            raise
        retried = f", {len(self.processes.retries)} start retries" if self.processes.retries else ""
        say(f"lab ready in {time.monotonic() - started:.1f}s ({', '.join(wanted)}{retried}); state: {self.state_dir}")
        return self

    def stop(self, *, check: bool = True) -> None:
        """Kill every service (process group), newest first; verify nothing is left and ports are closed."""
        self.processes.stop(check=check)

    def status(self) -> dict[str, bool]:
        credentials = self.control_plane.probe_credentials()
        return {name: s.healthy(*credentials) for name, s in self.services.items()}

    def restart(self, name: str, timeout: float = 60) -> Service:
        """Restart one service where it ran (same ports, same data): the registries keep their blobs, etcd the
        cluster; moto keeps its state in memory only, so a restarted moto starts empty."""
        plane = self.second if name.startswith(SECOND) else self.control_plane
        kwok = name == plane.service("kwok")
        if kwok:
            self.processes.terminate(name)
            plane.hand_over_node_leases()
        service = self.processes.restart(name, timeout, plane.probe_credentials())
        if kwok:
            plane.add_nodes(timeout)  # wait until the nodes are Ready again
        return service

    # ----------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "state_dir": str(self.state_dir),
            "components": list(self.components),
            "bin_dir": str(self.bin_dir),
            "moto_url": self.moto_url if "moto" in self.services else None,
            "registries": self.registry_hosts,
            "kubeconfig": str(self.kubeconfig) if "kube-apiserver" in self.services else None,
            "context": self.context,
            "env": self.env(),
            "services": {name: asdict(s) for name, s in self.services.items()},
            "markers": self.control_plane.markers,
            "kwok_argv": self.control_plane.kwok_argv,
            **(
                {"second": {"markers": self.second.markers, "kwok_argv": self.second.kwok_argv}}
                if self.second.running
                else {}
            ),
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Lab:
        lab = cls(state_dir=Path(data["state_dir"]))
        lab.components = tuple(data.get("components", ()))
        lab.services.update({name: Service(**raw) for name, raw in data.get("services", {}).items()})
        lab.registries = len(lab.registry_hosts)
        markers = {**DEFAULT_MARKERS, **data.get("markers", {})}  # a state from before a behaviour existed
        lab.control_plane.markers = {k: list(v) for k, v in markers.items()}
        lab.control_plane.kwok_argv = list(data.get("kwok_argv", ()))
        second = data.get("second", {})
        lab.second.markers = {k: list(v) for k, v in {**DEFAULT_MARKERS, **second.get("markers", {})}.items()}
        lab.second.kwok_argv = list(second.get("kwok_argv", ()))
        return lab

    # ----------------------------------------------------------------- cluster

    def kube(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """A raw call to the lab's API server as the admin (no kubernetes client import)."""
        return self.control_plane.kube(method, path, body)

    def mark_image(
        self, marker: str, behaviour: str = "crashloop", timeout: float = 30, *, cluster: int | None = None
    ) -> None:
        """Make pods whose image reference contains ``marker`` (e.g. a digest) fail with ``behaviour``
        (``crashloop``, ``oom``, ``pull-error``, ``not-ready`` or ``fail``: see ``control_plane``): the
        sandbox's stand-in for an image whose bytes crash; in every control plane, or only in ``cluster``
        (0: the first, 1: ``cluster2``), the bytes that crash in one region only.

        The Stages in the API server are re-applied (kwok follows them: no restart) and a canary pod shows
        kwok plays the marker before this returns, so pods created afterwards get the behaviour."""
        if behaviour.startswith("http-"):  # the build answers HTTP with this status (``http_standin``)
            http_marks.write_mark(self.state_dir / http_marks.MARKS, marker, int(behaviour.removeprefix("http-")))
            return
        planes = self.control_planes
        for plane in planes if cluster is None else [planes[cluster]]:
            plane.mark_image(marker, behaviour, timeout)
