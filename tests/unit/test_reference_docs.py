"""docs/reference/ is generated from the models and commands: a change to either without
regenerating the reference fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_reference_docs_match_the_code() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reference_docs.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_reference_names_every_kind_field_and_command() -> None:
    resources = (ROOT / "docs" / "reference" / "resources.md").read_text()
    for field in ("spec.retention.keepWeekly", "spec.s3.credentials.secretAccessKey.env", "spec.pointInTime"):
        assert f"| `{field}` |" in resources
    commands = (ROOT / "docs" / "reference" / "cli.md").read_text()
    for command in ("## lifeboat apikey create", "## lifeboat repo key export", "## lifeboat controller"):
        assert command in commands
