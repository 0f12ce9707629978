"""docs/notifications.md is the receivers' contract: its example payload has exactly the
fields the json format sends, and its table explains each of them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from controller.notify.message import PAYLOAD_VERSION, sample_message

DOC = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"


def test_the_documented_payload_is_the_one_sent() -> None:
    text = DOC.read_text(encoding="utf-8")
    example = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))  # type: ignore[union-attr]
    sent = sample_message("ops", "docker01", datetime(2026, 12, 1, tzinfo=UTC)).payload()
    assert set(example) == set(sent) and example["version"] == sent["version"] == PAYLOAD_VERSION
    table = text[text.index("| field | meaning |") :]
    explained = {name for row in re.findall(r"^\| ([^|]+) \|", table, re.M) for name in re.findall(r"`(\w+)`", row)}
    assert set(sent) <= explained
