"""Serve the API with uvicorn on a thread beside the reconcile loop."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI

from controller.errors import InvalidConfig

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidConfig(f"api listen address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


class ApiServer:
    def __init__(self, app: FastAPI, listen: str) -> None:
        host, port = parse_listen(listen)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=True, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def start(self, timeout: float = 30.0) -> str:
        """Start serving; returns the URL (with the port chosen when 0 was asked)."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise InvalidConfig(f"the API could not listen on {self.server.config.host}:{self.server.config.port}")
            time.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
