"""Which images a backup saves: auto leaves out what a registry can give back."""

from __future__ import annotations

import pytest

from controller.apps.definition import ImageRecord
from controller.apps.images import should_save
from controller.resources.backup_policy import ImagesMode

BUILT_HERE = ImageRecord("blog-web:1", "sha256:aa", [])
FROM_A_REGISTRY = ImageRecord("mariadb:11", "sha256:bb", ["mariadb@sha256:cc"])


@pytest.mark.parametrize(
    ("mode", "built_here", "from_a_registry"),
    [(ImagesMode.AUTO, True, False), (ImagesMode.ALWAYS, True, True), (ImagesMode.NEVER, False, False)],
)
def test_the_images_each_mode_saves(mode: ImagesMode, built_here: bool, from_a_registry: bool) -> None:
    assert should_save(BUILT_HERE, mode) is built_here
    assert should_save(FROM_A_REGISTRY, mode) is from_a_registry
