"""The sandbox's apps answer HTTP: a stand-in server the API server's service proxy reaches for every Service.

kwok's pods have addresses nothing listens on, so an HTTP check through the service proxy
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy/...``) would find no one to answer. The lab runs this process
instead of the Endpoints controller (``kube-controller-manager --controllers=*,-endpoints-controller``): for each
Service with a selector it listens on a port of its own and writes the Service's Endpoints to point there.

Two rules of the API server shape it: an endpoint address may not be a loopback address, so it listens on the
host's own (non-loopback) address; and the proxy only dials an address whose ``targetRef`` is a Pod that has that
IP, so each namespace gets a stand-in Pod (never scheduled: no kwok node runs it) whose status names the address.

Only the namespaces the sandbox serves get a stand-in Pod and Endpoints (``serve``: the namespaces of every
configuration pointed at the sandbox, and those a lab test names), so other namespaces keep their pods to themselves.

It answers as the Service's ready pods would: ``200 ok`` unless one of them runs an image marked ``http-CODE``
(``Lab.mark_image(digest, "http-500")``, ``deployctl sandbox mark DIGEST http-500``: "this build answers 500").

``python -m deployctl.sandbox.http_standin --kubeconfig K --context C --marks FILE --port P`` (started by the lab).
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

from deployctl.sandbox.http_marks import MARKS, SERVED, answer, read_marks, served
from deployctl.sandbox.processes import Launch

log = logging.getLogger(__name__)

POD = "deployctl-http-standin"  # the stand-in Pod of each namespace
NO_SCHEDULER = "deployctl-lab-none"  # no scheduler has this name: the pod is never bound to a kwok node
SKIPPED = ("kube-system", "kube-public", "kube-node-lease")
SYNC_EVERY = 0.2  # a Service helm just made is served before its pods are ready
POD_CHECK_EVERY = 10.0  # how often a namespace's stand-in Pod is looked at again (a test may delete every pod)
NAME = "http-standin"  # the lab's service


def host_address() -> str:
    """This host's address on its default route (no packet is sent): the API server may dial it, a loopback
    address it refuses as an endpoint."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        raise RuntimeError("the sandbox's HTTP stand-in needs a non-loopback address on this host (no network?)")
    return address


def serve(state_dir: Path, namespaces: list[str]) -> None:
    """Have the stand-in answer for the Services of ``namespaces`` (from its next round, within a second)."""
    wanted = served(state_dir) | set(namespaces)
    if wanted != served(state_dir):
        partial = state_dir / (SERVED + ".partial")
        partial.write_text(json.dumps(sorted(wanted)))
        partial.replace(state_dir / SERVED)


def serve_environments(lab: Any, settings: Any) -> None:
    """Serve the namespaces of ``settings``' environments in ``lab`` (a ``Lab``), when the stand-in runs there."""
    if NAME in lab.services:
        overrides = lab.config_overrides(settings)["environments"].values()
        serve(lab.state_dir, [o["namespace"] for o in overrides if "namespace" in o])


class StandIn:
    def __init__(self, kubeconfig: Path, context: str | None, marks: Path, address: str) -> None:
        from deployctl.adapters.helm_argv import Kube
        from deployctl.adapters.kube.client import api_client

        self.api = api_client(Kube(kubeconfig, context))
        self.marks = marks
        self.address = address
        self.servers: dict[tuple[str, str], http.server.ThreadingHTTPServer] = {}
        self.written: dict[tuple[str, str], Any] = {}
        self.pods: dict[str, float] = {}  # namespace -> when its stand-in Pod was last seen right

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api)

    def sync(self) -> None:
        services = self.core().list_service_for_all_namespaces().items
        namespaces = served(self.marks.parent)
        wanted = set()
        for service in services:
            namespace, name = service.metadata.namespace, service.metadata.name
            if namespace in SKIPPED or namespace not in namespaces or not service.spec.selector:
                continue
            wanted.add((namespace, name))
            try:
                port = self._listen(namespace, name)
                self._pod(namespace)
                self._endpoints(namespace, name, service, port)
            except Exception as exc:  # noqa: BLE001 - one namespace (being deleted, say) never stops the others
                log.warning("%s/%s: %s", namespace, name, str(exc).splitlines()[0] if str(exc) else exc)
        for key in set(self.servers) - wanted:  # the Service is gone
            self.servers.pop(key).shutdown()
            self.written.pop(key, None)

    def _listen(self, namespace: str, name: str) -> int:
        if (namespace, name) not in self.servers:
            server = http.server.ThreadingHTTPServer((self.address, 0), self._handler(namespace, name))
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers[(namespace, name)] = server
        return int(self.servers[(namespace, name)].server_address[1])

    def _pod(self, namespace: str) -> None:
        from kubernetes.client.exceptions import ApiException

        if time.monotonic() - self.pods.get(namespace, -POD_CHECK_EVERY) < POD_CHECK_EVERY:
            return
        core = self.core()
        try:
            pod = core.read_namespaced_pod(POD, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "metadata": {"name": POD, "labels": {"deployctl.dev/sandbox": "http-standin"}},
                "spec": {"schedulerName": NO_SCHEDULER, "containers": [{"name": "standin", "image": "sandbox/http"}]},
            }
            pod = core.create_namespaced_pod(namespace, body)
        if (pod.status.pod_ip or "") != self.address:
            status = {
                "phase": "Running",
                "podIP": self.address,
                "podIPs": [{"ip": self.address}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            core.patch_namespaced_pod_status(POD, namespace, {"status": status})
        self.pods[namespace] = time.monotonic()

    def _endpoints(self, namespace: str, name: str, service: Any, port: int) -> None:
        from kubernetes.client.exceptions import ApiException

        ports = [{"name": p.name, "port": port, "protocol": p.protocol or "TCP"} for p in service.spec.ports or ()]
        body = {
            "metadata": {"name": name, "labels": {"deployctl.dev/sandbox": "http-standin"}},
            "subsets": [
                {
                    "addresses": [
                        {"ip": self.address, "targetRef": {"kind": "Pod", "name": POD, "namespace": namespace}}
                    ],
                    "ports": ports,
                }
            ],
        }
        if self.written.get((namespace, name)) == body:
            return
        core = self.core()
        try:
            core.replace_namespaced_endpoints(name, namespace, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            core.create_namespaced_endpoints(namespace, body)
        self.written[(namespace, name)] = body

    def images(self, namespace: str, name: str) -> list[str]:
        """The images of the Service's ready pods (not terminating), newest first."""
        core = self.core()
        service = core.read_namespaced_service(name, namespace)
        selector = ",".join(f"{k}={v}" for k, v in (service.spec.selector or {}).items())
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        ready = [
            p
            for p in pods
            if p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or ())
        ]
        ready.sort(key=lambda p: p.metadata.creation_timestamp, reverse=True)
        return [p.spec.containers[0].image for p in ready]

    def _handler(self, namespace: str, name: str) -> type[http.server.BaseHTTPRequestHandler]:
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                try:
                    status, body = answer(standin.images(namespace, name), read_marks(standin.marks))
                except Exception as exc:  # noqa: BLE001 - the stand-in says what went wrong, as a 502
                    status, body = 502, f"the sandbox's stand-in could not read {namespace}/{name}: {exc}\n"
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                log.info("%s/%s: " + format, namespace, name, *args)

        return Handler


def serve_health(port: int) -> None:
    """The lab's readiness probe: ``GET /healthz`` on 127.0.0.1."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            del format, args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def launch(state_dir: Path, kubeconfig: Path) -> Launch:
    """How the lab starts it (after the first cluster's nodes are up)."""
    import sys

    from deployctl.sandbox.control_plane import CONTEXT

    def command(ports: list[int]) -> list[str | Path]:
        marks = state_dir / MARKS
        return [sys.executable, "-m", "deployctl.sandbox.http_standin", "--kubeconfig", kubeconfig,
                "--context", CONTEXT, "--marks", marks, "--port", str(ports[0])]  # fmt: skip

    return Launch(NAME, command, lambda ports: f"http://127.0.0.1:{ports[0]}", probe="http", probe_path="/healthz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--context")
    parser.add_argument("--marks", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve_health(args.port)
    try:
        address = host_address()
    except RuntimeError as exc:  # an offline machine: the lab still starts; HTTP checks find no endpoint (503)
        log.warning("%s: serving no Service", exc)
        while True:
            time.sleep(3600)
    standin = StandIn(args.kubeconfig, args.context, args.marks, address)
    log.info("answering for the served namespaces' Services on %s", standin.address)
    while True:
        try:
            standin.sync()
        except Exception as exc:  # noqa: BLE001 - a failed round is logged and tried again
            log.warning("sync failed: %s", exc)
        time.sleep(SYNC_EVERY)


if __name__ == "__main__":
    raise SystemExit(main())
