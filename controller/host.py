"""The name this host goes by in snapshots, locks and catalog rows.

In a container the kernel's host name is the container's (a pod's name changes on every
restart), so a deployment names the Docker host with LIFEBOAT_HOSTNAME: the Helm chart
sets it to the node name. Recovery at start-up fails only this host's interrupted rows,
so the name must stay the same across restarts.
"""

from __future__ import annotations

import os
import socket


def host_name() -> str:
    """LIFEBOAT_HOSTNAME when set, otherwise the kernel's host name."""
    return os.environ.get("LIFEBOAT_HOSTNAME") or socket.gethostname()
