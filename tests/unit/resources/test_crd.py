"""The checked-in schemas under crds/ are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

from controller.resources.crd import drifted_schema_files, schema_files

CRDS = Path(__file__).parents[3] / "crds"


def test_checked_in_schemas_match_the_models() -> None:
    assert drifted_schema_files(CRDS) == [], "run `lifeboat crds --out crds` and commit the result"


def test_one_schema_per_kind_with_spec_fields() -> None:
    files = schema_files()
    assert sorted(files) == [
        "backuppolicy.schema.json",
        "backupstorage.schema.json",
        "notifier.schema.json",
        "restore.schema.json",
    ]
    policy = json.loads(files["backuppolicy.schema.json"])
    spec = policy["$defs"]["BackupPolicySpec"]["properties"]
    assert {
        "app",
        "paths",
        "include",
        "consistency",
        "hooks",
        "schedule",
        "retention",
        "storage",
        "compression",
        "suspend",
    } <= set(spec)
