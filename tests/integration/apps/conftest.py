"""Apps on the real Docker engine, a local repository and a SQLite catalog per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.catalog.catalog import Catalog
from controller.repository.repository import Repository
from controller.storage.local import LocalStorage
from tests.support.repository import small_repository


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


@pytest.fixture
def repository(tmp_path: Path) -> Repository:
    return small_repository(LocalStorage(tmp_path / "repo"))
