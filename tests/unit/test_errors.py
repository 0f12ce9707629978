"""errors.py's drawing names every LifeboatError subclass, wherever it is defined."""

from __future__ import annotations

import importlib
import pkgutil

import controller
from controller import errors


def subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def test_the_tree_in_errors_lists_every_lifeboat_error() -> None:
    for module in pkgutil.walk_packages(controller.__path__, "controller."):
        importlib.import_module(module.name)
    drawn = errors.__doc__ or ""
    missing = sorted(cls.__name__ for cls in subclasses(errors.LifeboatError) if f" {cls.__name__} " not in drawn)
    assert missing == [], f"add these to the drawing in controller/errors.py: {missing}"
