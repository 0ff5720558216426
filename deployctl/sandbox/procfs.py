"""What /proc says about the lab's processes: the members of a process group, the ports they listen on,
their working directory, memory and start time (a process's identity: a PID alone can be reused)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployctl.sandbox.lab import Lab

TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def processes_in_groups(groups: Iterable[int]) -> list[int]:
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


def listening_ports(pids: Iterable[int]) -> list[int]:
    """TCP ports on which any of ``pids`` listens (its sockets in /proc/net/tcp{,6}), in ascending order."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = str(fd.readlink())
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == TCP_LISTEN and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def groups_with_cwd(directory: Path) -> list[int]:
    """Process groups with a live member whose working directory is ``directory``."""
    wanted = directory.resolve()
    groups = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cwd").readlink() != wanted:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            groups.add(int(fields[2]))
    return sorted(groups)


def rss_of_groups(groups: Iterable[int]) -> int:
    """Total resident memory of every member of the process groups ``groups``."""
    total = 0
    for pid in processes_in_groups(groups):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22); None when it is gone. With the
    PID it identifies one process: a PID reused after a reboot or a crash has another start time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return int(fields[19])


def rss_bytes(lab: Lab) -> int:
    """Total resident memory of every lab process (all members of its process groups)."""
    return rss_of_groups(s.pid for s in lab.services.values())
