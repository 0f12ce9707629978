"""Skips that `make test` turns into failures: LIFEBOAT_REQUIRE=postgres,docker,s3 names
the services that must be present (restic's SkipDisallowed, as a pytest helper)."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(service: str, reason: str) -> None:
    required = {s.strip() for s in os.environ.get("LIFEBOAT_REQUIRE", "").split(",") if s.strip()}
    if service in required:
        pytest.fail(f"{service} is required (LIFEBOAT_REQUIRE) but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")
