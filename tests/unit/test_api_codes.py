"""Every code the API can answer with is in the README's table of codes, with its status."""

from __future__ import annotations

import re
from pathlib import Path

from controller.api.envelope import HTTP_STATUS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_error_code_the_api_returns_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("Every response\nis `{code, message, data}`") :][:2500]
    documented = set(re.findall(r"`([A-Z_]{4,})`", section))
    answered = set(HTTP_STATUS) | {"INTERNAL_ERROR", "NOT_READY"}
    assert answered - documented == set()
    for code, status in HTTP_STATUS.items():  # each named with its status
        assert re.search(rf"`{code}`[^0-9]*{status}", section), code
