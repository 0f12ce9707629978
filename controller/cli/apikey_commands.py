"""`lifeboat apikey create|list|revoke`: keys for the REST API, kept as hashes in the keys file."""

from __future__ import annotations

import click

from controller.cli.context import CliContext
from controller.cli.text import OUTPUT_OPTION, FullHelpGroup, emit, table
from controller.errors import InvalidConfig, ResourceNotFound

pass_context = click.make_pass_decorator(CliContext)


@click.group("apikey", cls=FullHelpGroup)
def apikey() -> None:
    """API keys (stored hashed in the keys file: config api.keys_file or LIFEBOAT_API_KEYS_FILE)."""


@apikey.command("create")
@click.argument("name")
@click.option("--read-only", is_flag=True, help="The key may only GET.")
@pass_context
def create(ctx: CliContext, name: str, read_only: bool) -> None:
    """Create a key and print it once: it cannot be shown again."""
    from controller.api.keys import hash_key, new_key, read_keys_file, write_keys_file
    from controller.resources.config import ApiKeyEntry, api_keys_file

    path = api_keys_file(ctx.config, ctx.environ)
    entries = read_keys_file(path)
    if any(e.name == name for e in entries + ctx.config.api.keys):
        raise InvalidConfig(f"an API key named {name!r} exists; revoke it first or choose another name")
    key = new_key()
    entries.append(ApiKeyEntry(name=name, role="read" if read_only else "admin", hash=hash_key(key)))
    write_keys_file(path, entries)
    click.echo(
        f"created {'read-only' if read_only else 'admin'} API key {name!r} in {path}; it is shown once:", err=True
    )
    click.echo(key)


@apikey.command("list")
@OUTPUT_OPTION
@pass_context
def list_keys(ctx: CliContext, output: str) -> None:
    """Names and roles of the keys (never the keys), and where each is kept."""
    from controller.api.keys import read_keys_file
    from controller.resources.config import api_keys_file

    path = api_keys_file(ctx.config, ctx.environ)
    keys = [(e.name, e.role, "config") for e in ctx.config.api.keys]
    keys += [(e.name, e.role, str(path)) for e in read_keys_file(path)]
    rows = [list(key) for key in keys]
    emit(output, [{"name": n, "role": r, "kept_in": k} for n, r, k in keys], table(["NAME", "ROLE", "KEPT IN"], rows))


@apikey.command("revoke")
@click.argument("name")
@pass_context
def revoke(ctx: CliContext, name: str) -> None:
    """Remove a key from the keys file; a running API refuses it from its next request."""
    from controller.api.keys import read_keys_file, write_keys_file
    from controller.resources.config import api_keys_file

    path = api_keys_file(ctx.config, ctx.environ)
    entries = read_keys_file(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        raise ResourceNotFound(f"no API key named {name!r} in {path}")
    write_keys_file(path, kept)
    click.echo(f"revoked API key {name!r}")
