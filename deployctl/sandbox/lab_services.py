"""How the lab starts moto and its OCI registries (each CNCF registry behind its ECR-like front): their launches."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from deployctl.sandbox.processes import Launch


def port_of(ports: list[int]) -> int:
    """The port a service that binds port 0 is told: 0 at its start, the one it got when it restarts."""
    return ports[0] if ports else 0


def moto_launch() -> Launch:
    """moto's server, with the managed policies terraform attaches (AmazonEKSClusterPolicy...)."""
    env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true", "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    return Launch(
        "moto",
        # werkzeug binds port 0 and serves on the port the kernel gave it.
        lambda ports: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port_of(ports))],
        lambda ports: f"http://127.0.0.1:{ports[0]}",
        probe="http",
        probe_path="/moto-api/",
        port_zero=True,
        env=env,
    )


def registry_backend_launch(state_dir: Path, registry: Path, index: int) -> Launch:
    """CNCF distribution registry ``index`` (the ``registry`` binary), fresh and empty at every start."""
    root = state_dir / f"registry-{index}"
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
        # distribution listens with net.Listen: port 0 works, and the lab reads the port back.
        "  addr: 127.0.0.1:0\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )
    return Launch(
        f"registry-{index}-backend",
        # env(1) execs the registry (same PID); the variable overrides the config's port (a restart).
        lambda ports: ["env", f"REGISTRY_HTTP_ADDR=127.0.0.1:{port_of(ports)}", registry, "serve", config],
        lambda ports: f"127.0.0.1:{ports[0]}",
        probe="http",
        probe_path="/v2/",
        port_zero=True,
    )


def registry_front_launch(index: int, backend: str, moto_url: str | None) -> Launch:
    """ECR's tag immutability before the CNCF registry at ``backend``, as moto holds it (``registry_front``)."""
    argv = [sys.executable, "-m", "deployctl.sandbox.registry_front", "--backend", backend]
    argv += ["--moto", moto_url] if moto_url is not None else []
    return Launch(
        f"registry-{index}",
        lambda ports: [*argv, "--listen", f"127.0.0.1:{port_of(ports)}"],
        lambda ports: f"127.0.0.1:{ports[0]}",
        probe="http",
        probe_path="/v2/",
        port_zero=True,
    )
