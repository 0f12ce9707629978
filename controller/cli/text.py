"""Plain text for people: byte sizes, tables, and the text-or-JSON output of the work verbs.
Apart from render.py, so that `repo` verbs load no models."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

# One output option for every verb that prints (kubectl's vocabulary).
OUTPUT_OPTION = click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "wide", "yaml", "json", "name"]),
    default="table",
    show_default=True,
    help="table; wide (more columns, where there are more); yaml; json; name (ids only, one a line).",
)
_ID_KEYS = ("backup_id", "id", "name", "app", "storage")


def for_people(output: str) -> bool:
    """Whether the output is read by a person (tables: progress may be shown) or a program."""
    return output in ("table", "wide")


def emit(output: str, data: Any, text: str, wide: str | None = None, names: Sequence[str] | None = None) -> None:
    """`data` as JSON or YAML, its ids (`names`, else each item's id field) with -o name,
    else `text` (`wide` with -o wide, when the verb has more to show)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif output == "yaml":
        from controller.resources.documents import dump_yaml

        click.echo(dump_yaml(json.loads(json.dumps(data, default=str))).rstrip("\n"))
    elif output == "name":
        items = data if isinstance(data, list) else [data]
        found = [next((str(i[k]) for k in _ID_KEYS if isinstance(i, dict) and i.get(k)), "") for i in items]
        click.echo("\n".join(names if names is not None else [n for n in found if n]))
    else:
        click.echo(wide if output == "wide" and wide is not None else text)


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """kubectl-style: upper-case headers, columns padded, three spaces apart."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


def key_values(values: tuple[str, ...], option: str, form: str, value_required: bool = False) -> dict[str, str]:
    """Repeated KEY=VALUE options as a dict; a malformed one is a usage error naming the option."""
    parsed = {}
    for given in values:
        key, sep, value = given.partition("=")
        if not sep or not key or (value_required and not value):
            raise click.UsageError(f"{option} expects {form}, got {given!r}")
        parsed[key] = value
    return parsed


def rfc3339(text: str) -> datetime:
    """An option's RFC 3339 time; a usage error naming the expected form otherwise."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"expected an RFC 3339 time such as 2026-11-24T03:00:00Z, got {text!r}") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{text!r} has no offset; add Z or +01:00")
    return parsed


class FullHelpGroup(click.Group):
    """A group whose command list shows each command's whole first sentence (click cuts
    them to the terminal's width with "...")."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
