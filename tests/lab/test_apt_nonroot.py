"""``make setup`` as a user who is not root (issue 16): GitHub-hosted runners and most workstations.

Real users made for the test (``useradd``), the real ``sudo``: a user with password-less sudo installs the
lab's Debian packages through ``sudo -n``; a user without it gets a clear error naming the packages and the
command an administrator runs. Only ``install_apt`` runs (the rest of ``make setup`` builds for minutes and
needs no privilege). It reports the packages as missing, as on a fresh runner; they are installed here
already, so ``apt-get install`` through sudo is a real, quick no-op.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployctl.sandbox import versions

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
from deployctl.core.errors import DeployctlError
from deployctl.sandbox import apt_tools

apt_tools.apt_missing = lambda: ["etcd-server"]  # as on a fresh runner
try:
    apt_tools.install_apt(print)
except DeployctlError as exc:
    print(f"error: {exc.message}")
    print(f"hint: {exc.hint}")
    sys.exit(exc.exit_code)
print("done")
"""


@dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path

    def run_install_apt(self, python: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        return subprocess.run(
            [python, "-c", SCRIPT],
            user=self.uid,
            group=self.gid,
            extra_groups=[],
            env=env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )


MakeUser = Callable[[bool], User]


def _python() -> str:
    """An interpreter another user may run (the venv's may live under root's home)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if Path(candidate).is_file():
            return candidate
    pytest.skip("no system python3 for another user to run")


@pytest.fixture
def make_user() -> Iterator[MakeUser]:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("creating test users needs root and useradd")
    made: list[tuple[str, Path, Path | None]] = []

    def make(sudo: bool) -> User:
        name = f"dctl-test-{secrets.token_hex(4)}"
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True, timeout=60)
        home = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        sudoers = Path("/etc/sudoers.d") / name if sudo else None
        made.append((name, home, sudoers))
        uid = int(subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True).stdout)
        gid = int(subprocess.run(["id", "-g", name], capture_output=True, text=True, check=True).stdout)
        os.chown(home, uid, gid)
        if sudoers is not None:
            sudoers.write_text(f"{name} ALL=(root) NOPASSWD: ALL\n")
            sudoers.chmod(0o440)
        user = User(name=name, uid=uid, gid=gid, home=home)
        readable = subprocess.run(
            [_python(), "-c", "import deployctl.sandbox.apt_tools"],
            user=uid,
            group=gid,
            extra_groups=[],
            env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
            cwd=home,
            capture_output=True,
            check=False,
        )
        if readable.returncode != 0:
            pytest.skip(f"the checkout {REPO} is not readable by another user")
        return user

    yield make
    for name, home, sudoers in made:
        if sudoers is not None:
            sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", name], check=False, timeout=60)
        shutil.rmtree(home, ignore_errors=True)


def test_a_user_with_sudo_installs_the_packages_through_sudo(make_user: MakeUser) -> None:
    if shutil.which("sudo") is None:
        pytest.skip("sudo is not installed (apt-get install sudo)")
    user = make_user(True)
    result = user.run_install_apt(_python())
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"installing Debian packages {', '.join(versions.APT_PACKAGES)} through sudo" in result.stdout
    log = (user.home / "cache/deployctl/tools/logs/apt.log").read_text()
    assert "$ /usr/bin/sudo -n true" in log, "sudo is probed without a password prompt"
    assert "$ /usr/bin/sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update" in log
    assert f"apt-get install -y {' '.join(versions.APT_PACKAGES)}" in log


def test_a_user_without_root_or_sudo_is_told_what_to_ask_for(make_user: MakeUser) -> None:
    user = make_user(False)
    result = user.run_install_apt(_python())
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "error: the lab needs the Debian packages etcd-server (not on PATH); this user is not root "
        "and cannot use sudo without a password"
    ) in result.stdout
    packages = " ".join(versions.APT_PACKAGES)
    assert (
        f"hint: ask an administrator to run: sudo apt-get update && sudo apt-get install -y {packages} "
        "(then re-run `make setup`)"
    ) in result.stdout
    assert "installing" not in result.stdout, "nothing was attempted"
