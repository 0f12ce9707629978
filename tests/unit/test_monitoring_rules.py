"""The example alerting rules name only metrics the controller exposes (a renamed metric
would silently never fire), and the docs list exactly the metrics there are."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml

from controller.api.metrics import LifeboatCollector, exposition
from controller.catalog.catalog import Catalog
from controller.catalog.models import Backup, BackupStatus, RestoreRun

ROOT = Path(__file__).parents[2]
RULES = ROOT / "examples" / "monitoring" / "lifeboat-rules.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
# PromQL words that are functions, keywords or Prometheus' own series, not Lifeboat's.
PROMQL_WORDS = {"time", "increase", "rate", "and", "offset", "up", "job", "d", "h", "m"}


def exposed_series(tmp_path: Path) -> set[str]:
    """Series names of a scrape over a catalog with a completed and a failed backup and a restore."""
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    for backup_id, status in (("b-1", BackupStatus.COMPLETED), ("b-2", BackupStatus.FAILED)):
        row = Backup(
            backup_id=backup_id, app_id="wp", app_name="wp", backup_type="full", created_at=NOW, policy="nightly"
        )
        row = catalog.add_backup(row)
        row.status, row.completed_at, row.size_bytes = status, NOW, 1000
        catalog.save_backup(row)
    catalog.save_restore_run(
        RestoreRun(id="r", restore_name="r", backup_id="b-1", target_app="wp", phase="Succeeded", started_at=NOW)
    )
    text = exposition(LifeboatCollector(catalog, lambda: {"local": 1}, lambda: 0)).decode()
    catalog.close()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_every_metric_the_alert_rules_use_is_exposed(tmp_path: Path) -> None:
    series = exposed_series(tmp_path)
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    assert len(rules) == 7
    for rule in rules:
        expression = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^]]*\]', "", rule["expr"])
        names = set(re.findall(r"[a-z_][a-z0-9_]*", expression)) - PROMQL_WORDS
        assert names <= series, f"{rule['alert']}: {sorted(names - series)} not in /metrics"
        assert names or rule["expr"].startswith("up{"), rule["alert"]


def test_the_operations_guide_lists_exactly_the_metrics_lifeboat_exposes(tmp_path: Path) -> None:
    series = exposed_series(tmp_path)
    lifeboat_families = {re.sub(r"_(bucket|sum|count|created)$", "", name) for name in series}
    lifeboat_families = {name for name in lifeboat_families if not name.startswith("process_")}
    table = OPERATIONS.read_text().split("<!-- metrics -->")[1]
    documented = set(re.findall(r"^\| `([a-z_]+)`", table, flags=re.MULTILINE))
    assert documented == lifeboat_families
