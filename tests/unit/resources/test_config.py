"""The global configuration file: seed keys, ${ENV} substitution, location precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import InvalidConfig
from controller.resources.config import catalog_url, load_config, resources_directory

CONFIG = """\
resources: ${LB_HOME}/resources
catalog: sqlite:///${LB_HOME}/catalog.db
storage:
  local_path: ${BACKUP_DIR:-/var/backups/lifeboat}
encryption:
  enabled: true
compression:
  level: 6
defaults:
  backup_type: full
  retention_days: 14
limits:
  max_concurrent_backups: 3
  transfers: 12
  max_backup_size_gb: 50
"""


def test_seed_keys_and_environment_substitution(tmp_path: Path) -> None:
    path = tmp_path / "backup.yaml"
    path.write_text(CONFIG)
    config = load_config(path, {"LB_HOME": "/srv/lb"})
    assert config.resources == "/srv/lb/resources"
    assert config.storage.local_path == "/var/backups/lifeboat"
    assert (config.compression.level, config.defaults.retention_days) == (6, 14)
    assert (config.limits.max_concurrent_backups, config.limits.max_backup_size_gb) == (3, 50)
    assert config.limits.transfers == 12


def test_missing_variable_names_file_and_variable(tmp_path: Path) -> None:
    path = tmp_path / "backup.yaml"
    path.write_text(CONFIG)
    with pytest.raises(InvalidConfig, match=r"backup\.yaml: \$\{LB_HOME\} is not set"):
        load_config(path, {})


def test_bad_field_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "backup.yaml"
    path.write_text("limits:\n  max_concurrent_backups: 0\n")
    with pytest.raises(InvalidConfig, match=r"limits\.max_concurrent_backups"):
        load_config(path, {})
    path.write_text("limits:\n  transfers: 65\n")
    with pytest.raises(InvalidConfig, match=r"limits\.transfers: .*64"):
        load_config(path, {})


def test_precedence_flag_then_env_then_file_then_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "backup.yaml"
    path.write_text(CONFIG)
    config = load_config(path, {"LB_HOME": "/srv/lb"})
    env = {"HOME": "/home/op"}
    assert resources_directory("/flag", config, {**env, "LIFEBOAT_RESOURCES": "/env"}) == Path("/flag")
    assert resources_directory(None, config, {**env, "LIFEBOAT_RESOURCES": "/env"}) == Path("/env")
    assert resources_directory(None, config, env) == Path("/srv/lb/resources")
    assert resources_directory(None, load_config(None, env), env) == Path("/home/op/.local/share/lifeboat/resources")
    assert catalog_url(None, load_config(None, env), env) == "sqlite:////home/op/.local/share/lifeboat/catalog.db"
