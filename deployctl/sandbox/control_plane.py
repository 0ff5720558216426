"""The lab's Kubernetes control plane: etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok,
with fake Ready nodes in three zones. kwok's Stages (``kwok_stages``: which images fail, and how) live in the
API server; ``mark_image`` changes them while kwok runs."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl import runner
from deployctl.sandbox import kwok_stages, lab_api
from deployctl.sandbox import pki as pki_module
from deployctl.sandbox import tools as tools_module
from deployctl.sandbox.kwok_stages import BEHAVIOURS, DEFAULT_MARKERS, check_marker, default_markers
from deployctl.sandbox.ports import ClientCert, tail
from deployctl.sandbox.processes import LabError, Launch, Processes, secure_server

log = logging.getLogger(__name__)

CONTEXT = "deployctl-lab"
LEASE_NAMESPACE = "kube-node-lease"
NODE_PREFIX = "lab-node-"
STAGE_KIND = "Stage"
KWOK_ADDRESS = "--server-address=127.0.0.1:"
# Started once the API server is ready; watched while the fake nodes come up.
LATE_SERVICES = ("kube-controller-manager", "kube-scheduler", "kwok")
# The names the lab's importers know these by (lab.py, the CLI's behaviour list test).
__all__ = ["BEHAVIOURS", "CONTEXT", "DEFAULT_MARKERS", "ControlPlane"]


@dataclass
class ControlPlane:
    """The control plane's processes (in ``processes``), its files under ``directory``, and the kwok
    markers (which images fail, and how)."""

    directory: Path
    processes: Processes
    nodes: int = 3
    markers: dict[str, list[str]] = field(default_factory=default_markers)
    kwok_argv: list[str] = field(default_factory=list)
    # Another control plane of the same lab (a second cluster): its services are named ``<prefix>etcd`` ...
    prefix: str = ""
    region: str = "us-east-1"

    def service(self, name: str) -> str:
        """The lab's name of this control plane's ``name`` service (etcd, kube-apiserver, kwok ...)."""
        return f"{self.prefix}{name}"

    @property
    def running(self) -> bool:
        return self.service("kube-apiserver") in self.processes.services

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "admin.kubeconfig"

    def pki(self) -> pki_module.Pki | None:
        directory = self.directory / "pki"
        return pki_module.ensure(directory) if (directory / "ca.crt").is_file() else None

    def probe_credentials(self) -> tuple[Path | None, ClientCert | None]:
        """The CA and admin client certificate the health probes present (none before the first start)."""
        pki = self.pki()
        return (pki.ca_cert, (pki.admin_cert, pki.admin_key)) if pki else (None, None)

    def start(self, tools: tools_module.Tools, say: Callable[[str], None], timeout: float) -> None:
        """etcd, then the API server, then the controller-manager, scheduler and kwok, each ready before
        the next step (a service's ports are picked right before it starts: see ``Processes``)."""
        pki = pki_module.ensure(self.directory / "pki")
        # A fresh cluster every start: kwok does not replay stages for objects left from an earlier run.
        shutil.rmtree(self.directory / "etcd", ignore_errors=True)
        credentials = self.probe_credentials()
        self.processes.start([self._etcd(tools)], timeout, say=say)
        etcd = self.processes.get(self.service("etcd")).endpoint
        say("waiting for kube-apiserver")
        self.processes.start([self._apiserver(tools, pki, etcd)], timeout, say=say, credentials=credentials)
        common: list[str | Path] = [
            f"--kubeconfig={self.kubeconfig}",
            f"--authentication-kubeconfig={self.kubeconfig}",
            f"--authorization-kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        kcm: list[str | Path] = [
            tools["kube-controller-manager"],
            *common,
            f"--cert-dir={self.directory / 'kcm-certs'}",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.sa_key}",
            "--use-service-account-credentials=false",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--node-monitor-grace-period=40s",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            # the first cluster's Endpoints are written by the HTTP stand-in (kwok's pods answer nothing: see
            # ``http_standin``); the EndpointSlice controllers run as ever
            *(["--controllers=*,-endpoints-controller"] if not self.prefix else []),
        ]
        scheduler: list[str | Path] = [
            tools["kube-scheduler"],
            *common,
            f"--cert-dir={self.directory / 'scheduler-certs'}",
        ]
        self.kwok_argv = [
            str(tools["kwok"]),
            f"--kubeconfig={self.kubeconfig}",
            f"--enable-crds={STAGE_KIND}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={lab_api.KWOK_NODE_ANNOTATION}=fake",
            # kwok listens with net.Listen: port 0 works, and the lab reads the port back.
            f"{KWOK_ADDRESS}0",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
        ]
        late = [
            # --secure-port=0 turns serving off for these two, so their port is picked (and retried).
            secure_server(self.service("kube-controller-manager"), kcm),
            secure_server(self.service("kube-scheduler"), scheduler),
            self._kwok(),
        ]
        self.processes.spawn(late[:2])
        # kwok reads its Stages from the API server (--enable-crds=Stage): there before kwok starts.
        kwok_stages.install_crd(self.kube, timeout)
        self._apply_stages(self.markers, timeout)
        self.processes.spawn(late[2:])
        self.processes.settle(late, timeout, say=say, credentials=credentials)

    def _etcd(self, tools: tools_module.Tools) -> Launch:
        def command(ports: list[int]) -> list[str | Path]:
            client, peer = ports
            return [
                tools["etcd"],
                "--name=lab",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=lab=http://127.0.0.1:{peer}",
                "--initial-cluster-state=new",
                "--log-level=warn",
                "--logger=zap",
                "--snapshot-count=10000",
                "--quota-backend-bytes=1073741824",
            ]

        return Launch(
            self.service("etcd"),
            command,
            lambda ports: f"http://127.0.0.1:{ports[0]}",
            probe="http",
            probe_path="/health",
            ports=2,
            env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "", "GOMAXPROCS": "2"},
        )

    def _apiserver(self, tools: tools_module.Tools, pki: pki_module.Pki, etcd: str) -> Launch:
        def command(ports: list[int]) -> list[str | Path]:
            return [
                tools["kube-apiserver"],
                f"--etcd-servers={etcd}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports[0]}",
                f"--cert-dir={self.directory / 'apiserver-certs'}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                # 127.0.0.1 is not a valid endpoint address for the `kubernetes` Service: skip it.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--event-ttl=30m",
            ]

        return Launch(
            self.service("kube-apiserver"),
            command,
            lambda ports: f"https://127.0.0.1:{ports[0]}",
            probe="https",
            probe_path="/readyz",
            prepare=lambda ports: self._write_kubeconfig(ports[0], pki),
        )

    def _kwok(self) -> Launch:
        return Launch(
            self.service("kwok"),
            # Port 0 at its start; the port it got when it restarts (``Processes.restart``).
            lambda ports: [
                f"{KWOK_ADDRESS}{ports[0]}" if ports and a == f"{KWOK_ADDRESS}0" else a for a in self.kwok_argv
            ],
            lambda ports: f"http://127.0.0.1:{ports[0]}",
            probe="http",
            probe_path="/healthz",
            port_zero=True,
            # kwok merges ~/.kwok/kwok.yaml when it exists: keep it out of the lab.
            env={**os.environ, "HOME": str(self.directory)},
        )

    def add_nodes(self, timeout: float) -> None:
        """Create the fake nodes and wait until kwok reports every one Ready."""
        self._create_nodes()
        self._wait_nodes_ready(timeout)

    # ----------------------------------------------------------------- failure injection

    def mark_image(self, marker: str, behaviour: str, timeout: float) -> None:
        """See ``Lab.mark_image``: apply the Stages with the new marker, then wait until kwok plays them."""
        check_marker(marker, behaviour)
        if marker in self.markers.get(behaviour, []):
            return
        if f"--enable-crds={STAGE_KIND}" not in self.kwok_argv:
            raise LabError(
                "this sandbox's kwok reads its Stages from a file (started by an older deployctl)",
                "restart the sandbox: `deployctl sandbox down` then `deployctl sandbox up`",
            )
        markers = {**self.markers, behaviour: [*self.markers.get(behaviour, []), marker]}
        self._apply_stages(markers, timeout)
        kwok_stages.await_marker(self.kube, f"{NODE_PREFIX}0", marker, behaviour, timeout)
        self.markers = markers
        log.debug("kwok plays %s markers %s", behaviour, markers[behaviour])

    def _apply_stages(self, markers: dict[str, list[str]], timeout: float) -> None:
        text = kwok_stages.apply(self.kube, markers, timeout)
        # What the API server holds, for reading (kwok does not read this file).
        path = self.directory / "kwok-stages.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def hand_over_node_leases(self) -> None:
        """Each kwok process has a new holder identity (hostname + uuid) and waits for the old one's node
        leases to expire (40 s) before it manages those nodes' pods again: hand the leases over now."""
        _, leases = self.kube("GET", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases")
        for lease in (leases or {}).get("items", []):
            name = lease["metadata"]["name"]
            self.kube("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{name}")

    # ----------------------------------------------------------------- API server

    def _write_kubeconfig(self, api_port: int, pki: pki_module.Pki) -> None:
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: every kubeconfig reader accepts it.
        self.kubeconfig.write_text(json.dumps(lab_api.kubeconfig(CONTEXT, api_port, pki), indent=2) + "\n")

    def kube(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """A raw call to the lab's API server as the admin (no kubernetes client import)."""
        service = self.processes.get(self.service("kube-apiserver"))
        pki = self.pki()
        assert pki is not None  # noqa: S101 - the cluster is running
        return lab_api.call(service.ports[0], pki, method, path, body, content_type=content_type)

    def _create_nodes(self) -> None:
        for index in range(self.nodes):
            node = lab_api.fake_node(f"{NODE_PREFIX}{index}", self.region, f"{self.region}{'abc'[index % 3]}")
            code, reply = self.kube("POST", "/api/v1/nodes", node)
            if code not in (201, 409):
                raise LabError(f"cannot create fake node {node['metadata']['name']}: HTTP {code}: {reply}")

    def _wait_nodes_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            code, reply = self.kube("GET", "/api/v1/nodes")
            if code == 200:
                ready = sum(
                    1
                    for item in reply.get("items", [])
                    for cond in item.get("status", {}).get("conditions", [])
                    if cond.get("type") == "Ready" and cond.get("status") == "True"
                )
                if ready >= self.nodes:
                    return
            for name in LATE_SERVICES:
                service = self.processes.get(self.service(name))
                if not runner.pid_alive(service.pid):
                    raise LabError(f"{name} exited; log: {service.log}\n{tail(service.log)}")
            time.sleep(0.2)
        kwok_log = self.processes.get(self.service("kwok")).log
        raise LabError(f"{ready}/{self.nodes} fake nodes Ready after {timeout:.0f}s; log: {kwok_log}")
