"""A Message as each webhook format wants it: the body, its content type and any headers.
Chat services get the title and the cause in their own shapes (colour for severity, the
facts as fields); `json` is the versioned payload itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.notify.message import Message
from controller.resources.notifier import WebhookFormat

_RED, _GREEN, _GREY = "#d93f0b", "#2da44e", "#6e7781"


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def render(message: Message, form: WebhookFormat) -> Rendered:
    if form == WebhookFormat.NTFY:
        return _ntfy(message)
    shapes: dict[WebhookFormat, Callable[[], dict[str, Any]]] = {
        WebhookFormat.JSON: message.payload,
        WebhookFormat.SLACK: lambda: _slack(message),
        WebhookFormat.DISCORD: lambda: _discord(message),
        WebhookFormat.TEAMS: lambda: _teams(message),
        WebhookFormat.GOTIFY: lambda: _gotify(message),
    }
    return Rendered(json.dumps(shapes[form]()).encode())


def _colour(message: Message) -> str:
    return _RED if message.problem else _GREEN if message.state == "resolved" else _GREY


def _body(message: Message) -> str:
    return "\n".join(filter(None, [message.text, message.note]))


def _slack(message: Message) -> dict[str, Any]:
    """An incoming webhook: `text` for notifications and clients without attachments."""
    facts = [{"title": label, "value": value, "short": True} for label, value in message.fields()]
    return {
        "text": f"{message.title}\n{message.text}",
        "attachments": [{"color": _colour(message), "title": message.title, "text": _body(message), "fields": facts}],
    }


def _discord(message: Message) -> dict[str, Any]:
    facts = [{"name": label, "value": value[:1024], "inline": True} for label, value in message.fields()]
    return {
        "content": message.title[:2000],
        "embeds": [
            {
                "title": message.title[:256],
                "description": _body(message)[:4096],
                "color": int(_colour(message).removeprefix("#"), 16),
                "fields": facts[:25],
            }
        ],
    }


def _teams(message: Message) -> dict[str, Any]:
    """A Teams workflow ("When a Teams webhook request is received") takes an Adaptive Card."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": message.title,
                "weight": "Bolder",
                "wrap": True,
                "color": "Attention" if message.problem else "Good" if message.state == "resolved" else "Default",
            },
            {"type": "TextBlock", "text": _body(message), "wrap": True},
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in message.fields()]},
        ],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def _gotify(message: Message) -> dict[str, Any]:
    return {"title": message.title, "message": message.plain_text(), "priority": 8 if message.problem else 4}


def _ntfy(message: Message) -> Rendered:
    """ntfy publishes the body as the message; title, priority and tags go in headers."""
    tags = "rotating_light" if message.problem else "white_check_mark" if message.state == "resolved" else "floppy_disk"
    headers = {"Title": message.title, "Priority": "high" if message.problem else "default", "Tags": tags}
    return Rendered(message.plain_text().encode(), "text/plain; charset=utf-8", headers)
