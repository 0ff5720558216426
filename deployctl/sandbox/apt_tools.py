"""The lab's system packages (apt): which are missing, whether this user may install them, and their install."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from deployctl import runner
from deployctl.sandbox import versions
from deployctl.sandbox.tool_builds import Progress, ToolInstallError, go_env, logs_dir, run_step


def apt_missing() -> list[str]:
    wanted = {"docker-registry": "docker-registry", "etcd-server": "etcd", "chromium": "chromium"}
    return [package for package, binary in wanted.items() if shutil.which(binary) is None]


def apt_privilege(probe_log: Path) -> list[str] | None:
    """How this user runs apt-get: ``[]`` as root, ``sudo -n`` when sudo works without a password (GitHub-hosted
    runners, most workstations), else None. ``env`` carries DEBIAN_FRONTEND through sudo's env reset."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    if runner.run_logged([sudo, "-n", "true"], log_path=probe_log, timeout=30) != 0:
        return None
    return [sudo, "-n", "env", "DEBIAN_FRONTEND=noninteractive"]


def install_apt(progress: Progress) -> None:
    missing = apt_missing()
    if not missing:
        return
    packages = " ".join(versions.APT_PACKAGES)
    log_path = logs_dir() / "apt.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    prefix = apt_privilege(log_path)
    if prefix is None:
        raise ToolInstallError(
            f"the lab needs the Debian packages {', '.join(missing)} (not on PATH); this user is not root "
            "and cannot use sudo without a password, so `make setup` cannot install them",
            f"ask an administrator to run: sudo apt-get update && sudo apt-get install -y {packages} "
            "(then re-run `make setup`)",
        )
    how = " through sudo" if prefix else ""
    progress(f"installing Debian packages {', '.join(versions.APT_PACKAGES)}{how} (log: {log_path})")
    env = go_env({"DEBIAN_FRONTEND": "noninteractive"})
    apt = [*prefix, "apt-get"]
    run_step("apt-get update", [*apt, "update"], log_path, env=env, timeout=900)
    run_step("apt-get install", [*apt, "install", "-y", *versions.APT_PACKAGES], log_path, env=env, timeout=1800)
