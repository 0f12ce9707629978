"""Real receivers on loopback for the Notifiers' tests: an HTTP server that records every
request (and can answer as a service that is down), and an SMTP server (aiosmtpd) that
records every mail and checks a login."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from tests.support.compose_apps import free_port


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200  # what every request is answered with: 503 plays a service that is down

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """At least `count` requests, or what arrived by the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        do_POST = do_GET = _record  # noqa: N815 (the names http.server calls)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpReceiver:
    port: int
    mails: list[tuple[str, list[str], Message]] = field(default_factory=list)  # sender, recipients, mail

    def wait_for(self, count: int, timeout: float = 20.0) -> list[tuple[str, list[str], Message]]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.mails)


@contextmanager
def smtp_receiver(username: str, password: str) -> Iterator[SmtpReceiver]:
    """Accepts mail only after a login with this username and password (over plain SMTP:
    loopback only, so the test needs no certificate)."""
    receiver = SmtpReceiver(port=free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
            content = envelope.original_content or b""
            receiver.mails.append((str(envelope.mail_from), list(envelope.rcpt_tos), message_from_bytes(content)))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (username.encode(), password.encode())
        return AuthResult(success=ok, handled=False)

    authenticator: Callable[..., AuthResult] = authenticate
    with warnings.catch_warnings():  # AUTH without TLS: on purpose, on loopback
        warnings.simplefilter("ignore", UserWarning)
        controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=receiver.port,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )
        controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
