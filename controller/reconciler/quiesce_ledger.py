"""The apps layer's QuiesceLedger kept in the catalog: a container Lifeboat pauses or stops is
a catalog row until it runs again, so recovery after a crash finds it."""

from __future__ import annotations

from controller.apps.quiesce import QuiescedRecord
from controller.catalog.catalog import Catalog
from controller.catalog.models import QuiescedContainer, RestoreStage
from controller.host import Owner
from controller.resources.restore import RestorePhase


class CatalogLedger:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def record(self, entry: QuiescedRecord) -> int:
        row = self.catalog.record_quiesced(
            QuiescedContainer(
                container_id=entry.container_id,
                container_name=entry.container_name,
                app=entry.app,
                action=entry.action,
                operation=entry.operation,
                host=entry.owner.host,
                owner_pid=entry.owner.pid,
                owner_started=entry.owner.started,
                since=entry.since,
            )
        )
        assert row.id is not None  # the database gave it one
        return row.id

    def release(self, entry_id: int) -> None:
        self.catalog.release_quiesced(entry_id)

    def held_on(self, host: str) -> list[tuple[int, QuiescedRecord]]:
        """Not the containers of a restore run that was changing their data: they start only
        once that run has ended (see restore_recovery.py), never on torn data."""
        changing = {
            run.id
            for run in self.catalog.restore_runs_in_phase(RestorePhase.RUNNING.value)
            if run.stage in (RestoreStage.WRITING, RestoreStage.ROLLING_BACK)
        }
        return [
            (
                row.id,
                QuiescedRecord(
                    row.container_id,
                    row.container_name,
                    row.app,
                    row.action,
                    row.operation,
                    Owner(row.host, row.owner_pid, row.owner_started),
                    row.since,
                ),
            )
            for row in self.catalog.quiesced_on(host)
            if row.id is not None and row.operation not in changing
        ]
