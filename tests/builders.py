"""Valid resources as plain dicts, with overrides: a_policy(spec={"app": "gitea002"})."""

from __future__ import annotations

import copy
from typing import Any

import yaml


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides of `metadata`/`spec` replace those sections' keys one by one; a key set to
    None is removed. Anything deeper is replaced whole, so a test states what it means."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            for inner, inner_value in value.items():
                if inner_value is None:
                    result[key].pop(inner, None)
                else:
                    result[key][inner] = copy.deepcopy(inner_value)
        else:
            result[key] = value
    return result


def a_storage(name: str = "local", **overrides: Any) -> dict[str, Any]:
    base = {
        "apiVersion": "lifeboat.io/v1alpha1",
        "kind": "BackupStorage",
        "metadata": {"name": name},
        "spec": {"local": {"path": "/srv/backups"}, "encryption": {"passphrase": {"env": "LIFEBOAT_PASSPHRASE"}}},
    }
    return _merge(base, overrides)


def a_policy(name: str = "wordpress001", **overrides: Any) -> dict[str, Any]:
    base = {
        "apiVersion": "lifeboat.io/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": {"name": name},
        "spec": {
            "app": name,
            "schedule": {"frequency": "daily", "time": "02:00"},
            "retention": {"keepLast": 7},
            "storage": "local",
        },
    }
    return _merge(base, overrides)


def a_restore(name: str = "restore-1", **overrides: Any) -> dict[str, Any]:
    base = {
        "apiVersion": "lifeboat.io/v1alpha1",
        "kind": "Restore",
        "metadata": {"name": name},
        "spec": {"backup": "bk-1"},
    }
    return _merge(base, overrides)


def as_yaml(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)
