"""One HTTP POST with the standard library. Kept here, small, rather than adding an HTTP
client: the destinations send one request and read only its status. Errors name the
server, never the URL: a webhook's path or query is often its secret."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from controller.errors import DeliveryFailed

TIMEOUT_SECONDS = 10.0
USER_AGENT = "lifeboat-notifier/1"


def server_of(url: str) -> str:
    """scheme://host[:port] of a URL: what messages and logs may show."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def post(url: str, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", content_type)
    request.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            response.read(65536)
    except urllib.error.HTTPError as err:
        raise DeliveryFailed(f"POST to {server_of(url)} answered HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DeliveryFailed(f"POST to {server_of(url)} failed: {reason}") from None
