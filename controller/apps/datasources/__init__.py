"""One module per database engine; each knows its dump, restore and readiness commands."""

from __future__ import annotations

from controller.apps.datasources.base import Credentials, DataSource
from controller.apps.datasources.mongodb import MongoDB
from controller.apps.datasources.mysql import MySQL
from controller.apps.datasources.postgresql import PostgreSQL

_BY_ENGINE: dict[str, DataSource] = {
    "postgresql": PostgreSQL(),
    "mysql": MySQL("mysql"),
    "mariadb": MySQL("mariadb"),
    "mongodb": MongoDB(),
}
# Image names (the last path part, before the tag) that tell the engine.
_IMAGE_WORDS = (
    ("postgis", "postgresql"),
    ("postgres", "postgresql"),
    ("timescale", "postgresql"),
    ("mariadb", "mariadb"),
    ("mysql", "mysql"),
    ("percona", "mysql"),
    ("mongo", "mongodb"),
)
ENGINES = tuple(_BY_ENGINE)


def datasource_for(engine: str) -> DataSource:
    try:
        return _BY_ENGINE[engine]
    except KeyError:
        raise ValueError(f"unknown database engine {engine!r}; expected one of {', '.join(ENGINES)}") from None


def engine_for_image(image: str) -> str | None:
    """The engine an image name implies: `mariadb:11`, `docker.io/library/postgres:16` ..."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower()
    for word, engine in _IMAGE_WORDS:
        if word in name:
            return engine
    return None


__all__ = ["ENGINES", "Credentials", "DataSource", "datasource_for", "engine_for_image"]
