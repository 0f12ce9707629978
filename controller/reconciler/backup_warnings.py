"""Backups that never hide a loss: a source that is empty, or that shrank by more than half
since the previous completed backup of the same policy (or app), still completes (its data
is what is there) but says so: a warning on the row, an event, the policy's status, the
API and the metrics. Reasons: SourceEmpty, SourceShrank."""

from __future__ import annotations

from controller.catalog.catalog import BackupFilter, Catalog
from controller.catalog.models import BackupItem, BackupStatus, ItemKind

_TREES = (ItemKind.VOLUME, ItemKind.BIND_MOUNT, ItemKind.PATH)


def source_losses(
    catalog: Catalog, policy: str | None, subject: str, items: list[BackupItem], counted: set[str]
) -> list[str]:
    """ "Reason: message" for each item that lost data; [] when none did. `counted`: the dumps
    whose tables were counted (a counted dump with no table is empty)."""
    where = BackupFilter(policy=policy, app_id=None if policy else subject, status=BackupStatus.COMPLETED, limit=1)
    previous = catalog.list_backups(where)
    before = {i.name: i for i in catalog.items_of(previous[0].backup_id)} if previous else {}
    since = f" at backup {previous[0].backup_id}" if previous else ""
    warnings = []
    for item in items:
        old = before.get(item.name)
        if item.kind in _TREES and item.files == 0:
            held = f" (it held {old.files}{since})" if old and old.files else ""
            warnings.append(f"SourceEmpty: {item.name} holds no files{held}")
        elif item.name in counted and item.tables == 0:
            held = f" (it held {old.tables}{since})" if old and old.tables else ""
            warnings.append(f"SourceEmpty: {item.name} holds no tables{held}")
        elif item.kind in (*_TREES, ItemKind.DUMP) and old is not None and item.bytes * 2 < old.bytes:
            warnings.append(
                f"SourceShrank: {item.name} holds {item.bytes} bytes, less than half of the {old.bytes}{since}"
            )
    return warnings
