"""Generate docs/reference/{resources,cli}.md from the models and the commands, so the
reference cannot drift from the code (tests/unit/test_reference_docs.py compares).

    .venv/bin/python scripts/reference_docs.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.cli.main import cli  # noqa: E402
from controller.resources.kinds import KINDS  # noqa: E402

OUT = ROOT / "docs" / "reference"


def _type_of(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        target = schema["$ref"].rsplit("/", 1)[-1]
        return _type_of(defs[target], defs) if "enum" in defs[target] else target
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type_of(s, defs) for s in schema["anyOf"] if s.get("type") != "null")
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}), defs)}"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return "map"
    return str(schema.get("type", "any"))


def _rows(schema: dict[str, Any], defs: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> list[str]:
    rows = []
    required = set(schema.get("required", []))
    for name, field in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        default = f"`{json.dumps(field['default'])}`" if field.get("default") not in (None, [], {}, "") else ""
        description = field.get("description", "").replace("|", "\\|").replace("\n", " ")
        needed = "yes" if name in required else ""
        rows.append(f"| `{path}` | {_type_of(field, defs)} | {needed} | {default} | {description} |")
        for target in _refs(field):
            if target not in seen:
                rows += _rows(defs[target], defs, f"{path}.", (*seen, target))
    return rows


def _refs(field: dict[str, Any]) -> list[str]:
    found = []
    for part in [field, field.get("items", {}), *field.get("anyOf", [])]:
        if "$ref" in part:
            found.append(part["$ref"].rsplit("/", 1)[-1])
        elif part.get("type") == "array" and "$ref" in part.get("items", {}):
            found.append(part["items"]["$ref"].rsplit("/", 1)[-1])
    return found


def resources_markdown() -> str:
    lines = [
        "# Resource reference",
        "",
        "Generated from the models by `scripts/reference_docs.py`; do not edit by hand.",
        "Field paths are as written in YAML (camelCase). `status` is written by the controller.",
        "",
    ]
    for kind, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        defs = schema.get("$defs", {})
        spec = defs[schema["properties"]["spec"]["$ref"].rsplit("/", 1)[-1]]
        summary = (sys.modules[model.__module__].__doc__ or "").strip().splitlines()[0]
        lines += [f"## {kind}", "", summary, ""]
        lines += ["| Field | Type | Required | Default | Meaning |", "| --- | --- | --- | --- | --- |"]
        lines += _rows(spec, defs, "spec.", ())
        lines.append("")
    return "\n".join(lines)


def cli_markdown() -> str:
    lines = ["# Command reference", "", "Generated from the commands by `scripts/reference_docs.py`.", ""]
    root = click.Context(cli, info_name="lifeboat", terminal_width=100, max_content_width=100)
    lines += ["## lifeboat", "", "```", cli.get_help(root), "```", ""]
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        assert command is not None
        lines += _command_markdown(command, click.Context(command, info_name=name, parent=root))
    return "\n".join(lines)


def _command_markdown(command: click.Command, ctx: click.Context) -> list[str]:
    lines = [f"## {ctx.command_path}", "", "```", command.get_help(ctx), "```", ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            lines += _command_markdown(sub, click.Context(sub, info_name=name, parent=ctx))
    return lines


def generated() -> dict[Path, str]:
    return {OUT / "resources.md": resources_markdown(), OUT / "cli.md": cli_markdown()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="Exit 1 when the files differ; write nothing.")
    args = parser.parse_args()
    drifted = [p for p, text in generated().items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in drifted:
            print(f"out of date: {path.relative_to(ROOT)}; run scripts/reference_docs.py")
        sys.exit(1 if drifted else 0)
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in generated().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
