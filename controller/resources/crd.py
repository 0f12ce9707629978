"""JSON Schemas of the kinds, generated from the models and checked in under `crds/`.

Editors that speak the yaml-language-server protocol complete and check resource files
against them; a test fails when the checked-in files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from controller.resources.kinds import KINDS


def schema_files() -> dict[str, str]:
    """File name → JSON text, one file per kind."""
    files = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://lifeboat.io/schemas/v1alpha1/{kind.lower()}.schema.json"
        schema["title"] = kind
        files[f"{kind.lower()}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def write_schema_files(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drifted_schema_files(directory: Path) -> list[str]:
    """Names of the files under `directory` that differ from what the models generate."""
    return [
        name
        for name, text in schema_files().items()
        if not (directory / name).exists() or (directory / name).read_text(encoding="utf-8") != text
    ]
