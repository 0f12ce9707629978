"""The name this host goes by in snapshots, locks and catalog rows.

In a container the kernel's host name is the container's (a pod's name changes on every
restart), so a deployment names the Docker host with LIFEBOAT_HOSTNAME: the Helm chart
sets it to the node name. Recovery at start-up fails only this host's interrupted rows,
so the name must stay the same across restarts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


def host_name() -> str:
    """LIFEBOAT_HOSTNAME when set, otherwise the kernel's host name."""
    return os.environ.get("LIFEBOAT_HOSTNAME") or socket.gethostname()


@dataclass(frozen=True)
class Owner:
    """A process on a host, told apart from a later process that reuses its pid. Catalog rows
    name their process with it, so that recovery after a crash fails only the work whose
    process is gone (a `lifeboat backup` running beside the controller is left alone)."""

    host: str
    pid: int
    started: str

    @classmethod
    def this_process(cls) -> Owner:
        return cls(host_name(), os.getpid(), _start_time(os.getpid()))

    def is_alive(self) -> bool:
        return self.host == host_name() and _start_time(self.pid) == self.started

    @property
    def token(self) -> str:
        """What a catalog row keeps to name its process: PID:START."""
        return f"{self.pid}:{self.started}"

    @classmethod
    def from_token(cls, host: str, token: str) -> Owner | None:
        pid, sep, started = token.partition(":")
        return cls(host, int(pid), started) if sep and pid.isdigit() else None


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (clock ticks since boot); "" when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
