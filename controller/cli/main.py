"""The `lifeboat` command: parse, call, render. Every failure is one line and a non-zero exit.

Exit codes: 0 success, 1 failure (or, for `diff`, changes found), 2 usage error.
"""

from __future__ import annotations

import sys

import click

from controller.cli.context import CliContext
from controller.cli.repo_commands import repo
from controller.cli.resource_commands import register_resource_commands
from controller.errors import LifeboatError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="FILE", help="Global configuration file [env: LIFEBOAT_CONFIG].")
@click.option(
    "--resources",
    "resources_flag",
    metavar="DIR",
    envvar="LIFEBOAT_RESOURCES",
    help="Directory of resource files [env: LIFEBOAT_RESOURCES].",
)
@click.option(
    "--catalog",
    "catalog_flag",
    metavar="URL",
    envvar="LIFEBOAT_CATALOG",
    help="Catalog database URL, sqlite:///PATH or postgresql://... [env: LIFEBOAT_CATALOG].",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, resources_flag: str | None, catalog_flag: str | None) -> None:
    """Lifeboat: declarative backup and restore for Docker hosts."""
    ctx.obj = CliContext(config_path, resources_flag, catalog_flag)


register_resource_commands(cli)
cli.add_command(repo)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except LifeboatError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except (FileExistsError, PermissionError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
