"""The `lifeboat` command: parse, call, render. Every failure is one line and a non-zero exit.

Exit codes: 0 success, 1 failure (or, for `diff`, changes found), 2 usage error.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from controller.cli.context import CliContext
from controller.cli.text import FullHelpGroup
from controller.errors import LifeboatError

# Each verb is imported when it is run: the models, SQLAlchemy and the repository's native
# libraries cost most of the start-up time, and no verb needs all of them.
_COMMANDS = {
    "validate": "controller.cli.resource_commands:validate",
    "apply": "controller.cli.resource_commands:apply",
    "diff": "controller.cli.resource_commands:diff",
    "get": "controller.cli.resource_commands:get",
    "describe": "controller.cli.resource_commands:describe",
    "delete": "controller.cli.resource_commands:delete",
    "crds": "controller.cli.resource_commands:crds",
    "repo": "controller.cli.repo_commands:repo",
    "apps": "controller.cli.app_commands:apps",
    "backup": "controller.cli.app_commands:backup",
    "restore": "controller.cli.app_commands:restore",
    "repair": "controller.cli.app_commands:repair",
    "drill": "controller.cli.drill_commands:drill",
    "notify": "controller.cli.notify_commands:notify",
    "controller": "controller.cli.serve_commands:controller",
    "api": "controller.cli.serve_commands:api",
    "apikey": "controller.cli.apikey_commands:apikey",
    "catalog": "controller.cli.catalog_commands:catalog",
}


class LazyGroup(FullHelpGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lifeboat", prog_name="lifeboat")
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
    # The runs log for the controller; a command says what happened in its own words (one
    # line on failure), so their log lines are not printed unless a command configures logging.
    logging.getLogger("controller").addHandler(logging.NullHandler())
    ctx.obj = CliContext(config_path, resources_flag, catalog_flag)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except (LifeboatError, FileExistsError, PermissionError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
