"""The lab: real local stand-ins on 127.0.0.1, free ports, offline.

* ``moto``      one moto server for S3/STS/IAM/EC2/EKS/ECR/DynamoDB
* ``registry``  one or more CNCF distribution registries (filesystem storage, delete enabled)
* ``cluster``   etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok, with
                fake Ready nodes in three zones; kwok Stages drive pods to Running/Ready, or to
                CrashLoopBackOff (image contains ``crashloop``) or ImagePullBackOff (``does-not-exist``)

Every service runs in its own process group with its log in the state directory. ``stop()``
kills the groups and verifies no process is left and every port is closed. A ``Lab`` can be
saved to and restored from a JSON state (the detached ``deployctl sandbox``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import shutil
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deployctl import runner
from deployctl.errors import OperationError
from deployctl.sandbox import pki as pki_module
from deployctl.sandbox import tools as tools_module

log = logging.getLogger(__name__)

COMPONENTS = ("moto", "registry", "cluster")
CONTEXT = "deployctl-lab"
NODE_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
STAGES_TEMPLATE = Path(__file__).with_name("kwok-stages.yaml")
# Image markers kwok turns into failures (regexes over the pod's image reference).
BEHAVIOURS = {"crashloop": "__CRASH_MARKERS__", "pull-error": "__PULL_MARKERS__"}
DEFAULT_MARKERS = {"crashloop": ["crashloop"], "pull-error": ["does-not-exist"]}
LEASE_NAMESPACE = "kube-node-lease"
MARKER_RE = re.compile(r"[A-Za-z0-9:._/-]{3,200}")
STATE_VERSION = 1


class LabError(OperationError):
    """A lab service did not start, or did not stop cleanly."""


@dataclass
class Service:
    """One process of the lab."""

    name: str
    pid: int
    ports: list[int]
    log: str
    endpoint: str
    probe: str  # "http", "https" or "tcp" (what ``healthy`` checks)
    probe_path: str = "/"

    def healthy(self, ca: Path | None = None, client: tuple[Path, Path] | None = None) -> bool:
        if not runner.pid_alive(self.pid):
            return False
        if self.probe == "tcp":
            return all(_port_open(p) for p in self.ports)
        return _http_ok(self.ports[0], self.probe_path, tls=self.probe == "https", ca=ca, client=client)


@dataclass
class Lab:
    """Local services for tests and the sandbox; state (data, logs, pids) lives in ``state_dir``."""

    state_dir: Path
    tools: tools_module.Tools | None = None
    services: dict[str, Service] = field(default_factory=dict)
    components: tuple[str, ...] = ()
    registries: int = 1
    nodes: int = 3
    markers: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_MARKERS.items()})
    kwok_argv: list[str] = field(default_factory=list)
    _procs: dict[str, Any] = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- endpoints

    @property
    def moto_url(self) -> str:
        return self._service("moto").endpoint

    @property
    def registry_hosts(self) -> list[str]:
        """``host:port`` of each registry, in order (``registry-0`` first)."""
        return [s.endpoint for name, s in sorted(self.services.items()) if name.startswith("registry-")]

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "cluster" / "admin.kubeconfig"

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
        environment of ``config`` (a ``DeployctlConfig``) at the lab."""
        environments: dict[str, Any] = {}
        for name, env in config.environments.items():
            over: dict[str, Any] = {
                "aws": {"endpoint_url": self.moto_url if "moto" in self.services else None, "role_arn": None}
            }
            if getattr(env, "image_registry", None) and self.registry_hosts:
                # An environment with its own registry (another account) gets the second registry, so the
                # cross-registry copy is rehearsed too.
                over["image_registry"] = self.registry_hosts[min(1, len(self.registry_hosts) - 1)]
            if env.cluster is not None and "kube-apiserver" in self.services:
                over["cluster"] = {"kubeconfig": str(self.kubeconfig), "eks": None, "context": self.context}
                over["namespace"] = f"{name}-{env.namespace}"
            environments[name] = over
        overrides: dict[str, Any] = {"environments": environments}
        if self.registry_hosts:
            overrides["apps"] = {app: {"image": {"registry": self.registry_hosts[0]}} for app in config.apps}
        return overrides

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
        unknown = set(wanted) - set(COMPONENTS)
        if unknown:
            raise LabError(f"unknown lab component(s): {', '.join(sorted(unknown))} (known: {', '.join(COMPONENTS)})")
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
            if "moto" in wanted:
                self._start_moto()
            if "registry" in wanted:
                for index in range(self.registries):
                    self._start_registry(index)
            if "cluster" in wanted:
                self._start_cluster(say, timeout)
            for name in [n for n in self.services if not n.startswith(("etcd", "kube-apiserver"))]:
                self._wait(name, timeout)
            if "cluster" in wanted:
                self._create_nodes()
                self._wait_nodes_ready(timeout)
        except BaseException:
            self.stop(check=False)
            raise
        say(f"lab ready in {time.monotonic() - started:.1f}s ({', '.join(wanted)}); state: {self.state_dir}")
        return self

    def stop(self, *, check: bool = True) -> None:
        """Kill every service (process group), newest first; verify nothing is left and ports are closed."""
        groups = [s.pid for s in self.services.values()]
        ports = [p for s in self.services.values() for p in s.ports]
        for name in reversed(list(self.services)):
            service = self.services[name]
            proc = self._procs.pop(name, None)
            if proc is not None:
                runner.terminate(proc, grace=5)
            else:
                runner.terminate_group(service.pid, grace=5)
        leftovers = _processes_in_groups(groups)
        for pid in leftovers:  # a child that outlived its leader: kill its group too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (_processes_in_groups(groups) or any(_port_open(p) for p in ports)):
            time.sleep(0.1)
        self.services.clear()
        if not check:
            return
        left = _processes_in_groups(groups)
        still_open = [p for p in ports if _port_open(p)]
        if left or still_open:
            raise LabError(f"lab did not stop cleanly: processes {left}, open ports {still_open}")

    def status(self) -> dict[str, bool]:
        pki = self._pki_paths()
        client = (pki.admin_cert, pki.admin_key) if pki else None
        return {name: s.healthy(pki.ca_cert if pki else None, client) for name, s in self.services.items()}

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
            "markers": self.markers,
            "kwok_argv": self.kwok_argv,
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Lab:
        lab = cls(state_dir=Path(data["state_dir"]))
        lab.components = tuple(data.get("components", ()))
        lab.services = {name: Service(**raw) for name, raw in data.get("services", {}).items()}
        lab.registries = len(lab.registry_hosts)
        lab.markers = {k: list(v) for k, v in data.get("markers", DEFAULT_MARKERS).items()}
        lab.kwok_argv = list(data.get("kwok_argv", ()))
        return lab

    # ----------------------------------------------------------------- failure injection

    def mark_image(self, marker: str, behaviour: str = "crashloop", timeout: float = 30) -> None:
        """Make pods whose image reference contains ``marker`` (e.g. a digest) fail with ``behaviour``
        (``crashloop`` or ``pull-error``): the sandbox's stand-in for an image whose bytes crash.

        kwok reads Stages once at start, so the stages are re-rendered and kwok restarted (its state
        lives in the API server, so nothing is lost). Pods created afterwards get the behaviour."""
        if behaviour not in BEHAVIOURS:
            raise LabError(f"unknown behaviour {behaviour!r} (known: {', '.join(BEHAVIOURS)})")
        if not MARKER_RE.fullmatch(marker):
            raise LabError(f"invalid image marker {marker!r}: use letters, digits and ':._/-'")
        if marker in self.markers.setdefault(behaviour, []):
            return
        self.markers[behaviour].append(marker)
        self._render_stages()
        service = self._service("kwok")
        proc = self._procs.pop("kwok", None)
        if proc is not None:
            runner.terminate(proc, grace=5)
        else:
            runner.terminate_group(service.pid, grace=5)
        # Each kwok process has a new holder identity (hostname + uuid) and waits for the old one's node
        # leases to expire (40 s) before it manages those nodes' pods again: hand the leases over now.
        _, leases = self.kube("GET", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases")
        for lease in (leases or {}).get("items", []):
            name = lease["metadata"]["name"]
            self.kube("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{name}")
        cluster = self.state_dir / "cluster"
        restarted = self._spawn(
            "kwok",
            self.kwok_argv,
            ports=service.ports,
            endpoint=service.endpoint,
            probe=service.probe,
            probe_path=service.probe_path,
            env={**os.environ, "HOME": str(cluster)},
        )
        log.debug("kwok restarted (pid %d) with %s markers %s", restarted.pid, behaviour, self.markers[behaviour])
        self._wait("kwok", timeout)

    def _render_stages(self) -> Path:
        """Write the kwok Stages with the current markers (regex alternations, markers escaped)."""
        text = STAGES_TEMPLATE.read_text(encoding="utf-8")
        for behaviour, placeholder in BEHAVIOURS.items():
            # gojq's test() takes a regex; markers are plain (MARKER_RE), so no escaping is needed
            # inside the jq string ('.' matching any character is harmless for digests and names).
            pattern = "|".join(self.markers.get(behaviour, [])) or "^$"
            text = text.replace(placeholder, pattern)
        crash = " ".join(f'(contains "{m}" .image)' for m in self.markers.get("crashloop", [])) or "false"
        text = text.replace("__CRASH_TEMPLATE__", f"or {crash}" if crash != "false" else crash)
        path = self.state_dir / "cluster" / "kwok-stages.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    # ----------------------------------------------------------------- components

    def _service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise LabError(f"lab component {name!r} is not running", "start it: Lab.start([...])") from None

    def _spawn(
        self,
        name: str,
        argv: Sequence[str | Path],
        *,
        ports: list[int],
        endpoint: str,
        probe: str,
        probe_path: str = "/",
        env: Mapping[str, str] | None = None,
    ) -> Service:
        log_path = self.state_dir / "logs" / f"{name}.log"
        proc = runner.spawn([str(a) for a in argv], log_path=log_path, cwd=self.state_dir, env=env)
        service = Service(name, proc.pid, ports, str(log_path), endpoint, probe, probe_path)
        self.services[name] = service
        self._procs[name] = proc
        return service

    def _wait(self, name: str, timeout: float) -> None:
        service = self._service(name)
        pki = self._pki_paths()
        client = (pki.admin_cert, pki.admin_key) if pki else None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not runner.pid_alive(service.pid):
                raise LabError(f"{name} exited during start-up; log: {service.log}\n{_tail(service.log)}")
            if service.healthy(pki.ca_cert if pki else None, client):
                log.debug("%s ready at %s", name, service.endpoint)
                return
            time.sleep(0.1)
        raise LabError(f"{name} not ready after {timeout:.0f}s; log: {service.log}\n{_tail(service.log)}")

    def _start_moto(self) -> None:
        port = free_port()
        # Managed policies (AmazonEKSClusterPolicy...) must exist for the roles terraform attaches them to.
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        self._spawn(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            ports=[port],
            endpoint=f"http://127.0.0.1:{port}",
            probe="http",
            probe_path="/moto-api/",
            env=env,
        )

    def _start_registry(self, index: int) -> None:
        port = free_port()
        root = self.state_dir / f"registry-{index}"
        shutil.rmtree(root / "data", ignore_errors=True)  # every start is a fresh, empty registry
        (root / "data").mkdir(parents=True, exist_ok=True)
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
            "  delete:\n    enabled: true\n"
            "  maintenance:\n    uploadpurging:\n      enabled: false\n"
            "http:\n"
            f"  addr: 127.0.0.1:{port}\n"
            "  headers:\n    X-Content-Type-Options: [nosniff]\n"
        )
        self._spawn(
            f"registry-{index}",
            [self._tool("docker-registry"), "serve", config],
            ports=[port],
            endpoint=f"127.0.0.1:{port}",
            probe="http",
            probe_path="/v2/",
        )

    def _tool(self, name: str) -> Path:
        assert self.tools is not None  # noqa: S101 - set by start()
        return self.tools[name]

    def _pki_paths(self) -> pki_module.Pki | None:
        directory = self.state_dir / "cluster" / "pki"
        return pki_module.ensure(directory) if (directory / "ca.crt").is_file() else None

    def _start_cluster(self, say: Callable[[str], None], timeout: float) -> None:
        cluster = self.state_dir / "cluster"
        pki = pki_module.ensure(cluster / "pki")
        # A fresh cluster every start: kwok does not replay stages for objects left from an earlier run.
        shutil.rmtree(cluster / "etcd", ignore_errors=True)
        client_port, peer_port, api_port, kcm_port, sched_port, kwok_port = (free_port() for _ in range(6))
        self._write_kubeconfig(api_port, pki)
        self._spawn(
            "etcd",
            [
                self._tool("etcd"),
                "--name=lab",
                f"--data-dir={cluster / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client_port}",
                f"--advertise-client-urls=http://127.0.0.1:{client_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=lab=http://127.0.0.1:{peer_port}",
                "--initial-cluster-state=new",
                "--log-level=warn",
                "--logger=zap",
                "--snapshot-count=10000",
                "--quota-backend-bytes=1073741824",
            ],
            ports=[client_port, peer_port],
            endpoint=f"http://127.0.0.1:{client_port}",
            probe="http",
            probe_path="/health",
            env={**os.environ, "ETCD_UNSUPPORTED_ARCH": "", "GOMAXPROCS": "2"},
        )
        self._wait("etcd", timeout)
        kubeconfig = self.kubeconfig
        self._spawn(
            "kube-apiserver",
            [
                self._tool("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{client_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={cluster / 'apiserver-certs'}",
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
            ],
            ports=[api_port],
            endpoint=f"https://127.0.0.1:{api_port}",
            probe="https",
            probe_path="/readyz",
        )
        say("waiting for kube-apiserver")
        self._wait("kube-apiserver", timeout)
        common = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        self._spawn(
            "kube-controller-manager",
            [
                self._tool("kube-controller-manager"),
                *common,
                f"--secure-port={kcm_port}",
                f"--cert-dir={cluster / 'kcm-certs'}",
                f"--root-ca-file={pki.ca_cert}",
                f"--service-account-private-key-file={pki.sa_key}",
                "--use-service-account-credentials=false",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--node-monitor-grace-period=40s",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
            ],
            ports=[kcm_port],
            endpoint=f"https://127.0.0.1:{kcm_port}",
            probe="https",
            probe_path="/healthz",
        )
        self._spawn(
            "kube-scheduler",
            [
                self._tool("kube-scheduler"),
                *common,
                f"--secure-port={sched_port}",
                f"--cert-dir={cluster / 'scheduler-certs'}",
            ],
            ports=[sched_port],
            endpoint=f"https://127.0.0.1:{sched_port}",
            probe="https",
            probe_path="/healthz",
        )
        self.kwok_argv = [
            str(self._tool("kwok")),
            f"--kubeconfig={kubeconfig}",
            f"--config={self._render_stages()}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--server-address=127.0.0.1:{kwok_port}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.0.0.1",
        ]
        self._spawn(
            "kwok",
            self.kwok_argv,
            ports=[kwok_port],
            endpoint=f"http://127.0.0.1:{kwok_port}",
            probe="http",
            probe_path="/healthz",
            # kwok merges ~/.kwok/kwok.yaml when it exists: keep it out of the lab.
            env={**os.environ, "HOME": str(cluster)},
        )

    def _write_kubeconfig(self, api_port: int, pki: pki_module.Pki) -> None:
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {"server": f"https://127.0.0.1:{api_port}", "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "lab-admin",
                    "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
                }
            ],
            "contexts": [
                {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "lab-admin", "namespace": "default"}}
            ],
            "current-context": CONTEXT,
        }
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: every kubeconfig reader accepts it.
        self.kubeconfig.write_text(json.dumps(doc, indent=2) + "\n")

    def kube(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """A raw call to the lab's API server as the admin (no kubernetes client import)."""
        service = self._service("kube-apiserver")
        pki = self._pki_paths()
        assert pki is not None  # noqa: S101 - the cluster is running
        context = _ssl_context(pki.ca_cert, (pki.admin_cert, pki.admin_key))
        conn = http.client.HTTPSConnection("127.0.0.1", service.ports[0], context=context, timeout=15)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def _create_nodes(self) -> None:
        for index in range(self.nodes):
            zone = NODE_ZONES[index % len(NODE_ZONES)]
            name = f"lab-node-{index}"
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "node.kubernetes.io/instance-type": "kwok",
                        "topology.kubernetes.io/region": "us-east-1",
                        "topology.kubernetes.io/zone": zone,
                        "type": "kwok",
                    },
                },
                "spec": {},
                "status": {
                    "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                },
            }
            code, reply = self.kube("POST", "/api/v1/nodes", node)
            if code not in (201, 409):
                raise LabError(f"cannot create fake node {name}: HTTP {code}: {reply}")

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
            for name in ("kwok", "kube-controller-manager", "kube-scheduler"):
                if not runner.pid_alive(self.services[name].pid):
                    raise LabError(f"{name} exited; log: {self.services[name].log}\n{_tail(self.services[name].log)}")
            time.sleep(0.2)
        raise LabError(f"{ready}/{self.nodes} fake nodes Ready after {timeout:.0f}s; log: {self.services['kwok'].log}")


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _ssl_context(ca: Path | None, client: tuple[Path, Path] | None) -> ssl.SSLContext:
    # Without a CA: a health probe of a loopback service with a self-signed cert.
    context = ssl._create_unverified_context() if ca is None else ssl.create_default_context(cafile=str(ca))  # noqa: S323
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context


def _http_ok(port: int, path: str, *, tls: bool, ca: Path | None, client: tuple[Path, Path] | None) -> bool:
    try:
        if tls:
            # controller-manager/scheduler serve self-signed certs; the API server's is from our CA.
            context = _ssl_context(ca, client)
            context.check_hostname = False
            if ca is not None:
                context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", port, context=context, timeout=2
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def _processes_in_groups(groups: Iterable[int]) -> list[int]:
    """PIDs (not zombies) whose process group is one of ``groups``."""
    wanted = set(groups)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in wanted and state != "Z":
            found.append(int(entry.name))
    return found


def _tail(path: str, lines: int = 20) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def rss_bytes(lab: Lab) -> int:
    """Total resident memory of every lab process (all members of its process groups)."""
    total = 0
    for pid in _processes_in_groups(s.pid for s in lab.services.values()):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total
