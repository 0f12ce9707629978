"""A clone's compose files: rewritten so that the clone runs beside its source, and the
bind mounts a clone would share with its source found before anything changes."""

from __future__ import annotations

from pathlib import Path

import yaml

from controller.apps.compose_files import rewrite_for_clone
from controller.apps.definition import AppDefinition, ContainerRecord

SOURCE = """\
version: "2.4"
services:
  web:
    image: nginx
    container_name: blog-web
    ports: ["8080:80"]
    volumes: ["uploads:/srv", "./conf:/etc/nginx/conf.d"]
  db:
    image: mariadb
volumes:
  uploads: {}
  shared: {external: true, name: fixed-name}
"""


def test_a_clone_loses_published_ports_fixed_names_and_external_volumes(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(SOURCE)
    rewrite_for_clone([compose], keep_ports=False)
    document = yaml.safe_load(compose.read_text())
    assert document["services"]["web"] == {
        "image": "nginx",
        "volumes": ["uploads:/srv", "./conf:/etc/nginx/conf.d"],
    }
    assert document["volumes"] == {"uploads": {}, "shared": {}}


def test_keep_ports_keeps_them(tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(SOURCE)
    rewrite_for_clone([compose], keep_ports=True)
    assert yaml.safe_load(compose.read_text())["services"]["web"]["ports"] == ["8080:80"]


def test_bind_mounts_outside_the_project_folder_are_the_ones_a_clone_would_share() -> None:
    web = ContainerRecord(
        "blog_web_1",
        "web",
        {"HostConfig": {"Binds": ["blog_uploads:/srv:rw", "/srv/blog/conf:/etc/nginx:rw", "/var/shared:/data:rw"]}},
        {},
    )
    db = ContainerRecord(
        "blog_db_1", "db", {"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/opt/dumps", "Target": "/d"}]}}, {}
    )
    definition = AppDefinition("blog", "/srv/blog", ["/srv/blog/docker-compose.yml"], [], [], [web, db], [], [])
    assert definition.host_paths_outside("/srv/blog") == ["blog_web_1: /var/shared", "blog_db_1: /opt/dumps"]
    assert AppDefinition.from_json(definition.to_json()) == definition
