"""What every command needs, built once from the global options and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from controller.catalog.catalog import Catalog
    from controller.resources.backup_storage import BackupStorage
    from controller.resources.config import Config
    from controller.resources.store import ResourceStore
    from controller.storage.base import Storage


@dataclass
class CliContext:
    config_path: str | None
    resources_flag: str | None
    catalog_flag: str | None
    output: str = "table"
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    # How a BackupStorage resource becomes a Storage (None: the real one; a test wraps it to inject faults).
    storage_factory: Callable[[BackupStorage, Mapping[str, str]], Storage] | None = None

    # Imports inside the properties: pydantic models and SQLAlchemy cost most of the
    # start-up time, and `repo --repo PATH` verbs need neither.

    @cached_property
    def config(self) -> Config:
        from controller.resources.config import load_config

        chosen = self.config_path or self.environ.get("LIFEBOAT_CONFIG")
        return load_config(Path(chosen) if chosen else None, self.environ)

    @cached_property
    def resources_dir(self) -> Path:
        """The resources directory; a warning on stderr when none is configured and the
        default is missing (else commands print empty tables and nobody knows why)."""
        from controller.resources.config import resources_directory

        found = resources_directory(self.resources_flag, self.config, self.environ)
        configured = self.resources_flag or self.environ.get("LIFEBOAT_RESOURCES") or self.config.resources
        if not configured and not found.exists():
            click.echo(
                f"warning: no resources directory is configured and {found} does not exist: set "
                "LIFEBOAT_RESOURCES, --resources DIR or `resources:` in the configuration file "
                "(after `make run`: `. .lifeboat/env`)",
                err=True,
            )
        return found

    @cached_property
    def store(self) -> ResourceStore:
        from controller.resources.store import ResourceStore

        return ResourceStore(self.resources_dir)

    @cached_property
    def catalog(self) -> Catalog:
        from controller.catalog.catalog import Catalog
        from controller.resources.config import catalog_url

        return Catalog(catalog_url(self.catalog_flag, self.config, self.environ))
