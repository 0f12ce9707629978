"""What every command needs, built once from the global options and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from controller.resources.config import Config, catalog_url, load_config, resources_directory
from controller.resources.store import ResourceStore

if TYPE_CHECKING:
    from controller.catalog.catalog import Catalog


@dataclass
class CliContext:
    config_path: str | None
    resources_flag: str | None
    catalog_flag: str | None
    output: str = "table"
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @cached_property
    def config(self) -> Config:
        chosen = self.config_path or self.environ.get("LIFEBOAT_CONFIG")
        return load_config(Path(chosen) if chosen else None, self.environ)

    @cached_property
    def resources_dir(self) -> Path:
        return resources_directory(self.resources_flag, self.config, self.environ)

    @cached_property
    def store(self) -> ResourceStore:
        return ResourceStore(self.resources_dir)

    @cached_property
    def catalog(self) -> Catalog:
        # Imported here: SQLAlchemy costs ~0.6 s at start-up, and most verbs never open the catalog.
        from controller.catalog.catalog import Catalog

        return Catalog(catalog_url(self.catalog_flag, self.config, self.environ))
