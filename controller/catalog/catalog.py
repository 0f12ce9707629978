"""The catalog: a SQL database (SQLite by default, PostgreSQL by URL) of observed state.

It is a cache of the repository and the controller's journal: backups with per-item
results, restore runs and events. Callers pass every time in; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, event, func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col, create_engine, select
from sqlmodel.sql.expression import SelectOfScalar

from controller.catalog.models import (
    Alert,
    Backup,
    BackupItem,
    BackupOutcome,
    BackupStatus,
    BackupTally,
    Drill,
    DrillResult,
    Event,
    KnownPolicy,
    Notice,
    NoticeCursor,
    NoticeState,
    QuiescedContainer,
    RestoreRun,
)
from controller.catalog.schema import ensure_schema
from controller.errors import BackupNotFound, CatalogError


@dataclass(frozen=True)
class BackupFilter:
    app_id: str | None = None
    policy: str | None = None
    storage: str | None = None
    status: BackupStatus | None = None
    safety: bool | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 100
    offset: int = 0


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


class Catalog:
    def __init__(self, url: str) -> None:
        """Open (creating or upgrading) the catalog at `url`. Raises CatalogError."""
        self.url = url
        try:
            self.engine = _make_engine(url)
            self.previous_version = ensure_schema(self.engine)
        except SQLAlchemyError as err:
            raise CatalogError(f"cannot open the catalog {_redacted(url)}: {_reason(err)}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose database errors leave as CatalogError (SQL never reaches callers)."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except SQLAlchemyError as err:
            raise CatalogError(f"the catalog {_redacted(self.url)} failed: {_reason(err)}") from None

    def _delete(self, model: type[SQLModel], key: object) -> None:
        """Delete the row of `model` with primary key `key`; none is fine."""
        with self.session() as session:
            found = session.get(model, key)
            if found is not None:
                session.delete(found)
                session.commit()

    # Backups

    def add_backup(self, backup: Backup, items: list[BackupItem] | None = None) -> Backup:
        with self.session() as session:
            session.add(backup)
            _count_if_finished(session, None, backup)
            for item in items or []:
                item.backup_id = backup.backup_id
                session.add(item)
            session.commit()
        return backup

    def save_backup(self, backup: Backup) -> Backup:
        """Insert or update; a backup reaching completed or failed is counted once in the tallies."""
        with self.session() as session:
            stored = session.get(Backup, backup.backup_id)
            _count_if_finished(session, stored.status if stored is not None else None, backup)
            merged = session.merge(backup)
            session.commit()
            return merged

    def start_backup(self, backup_id: str, location: str, owner: str) -> Backup:
        """A pending backup's work begins (the row made when it was asked for)."""
        return self._change_backup(backup_id, status=BackupStatus.IN_PROGRESS, storage_location=location, owner=owner)

    def finish_backup(self, backup_id: str, outcome: BackupOutcome, items: list[BackupItem]) -> Backup:
        """The backup's final state with its per-item results, in one transaction."""
        changes: dict[str, Any] = {
            "status": BackupStatus.COMPLETED if outcome.error is None else BackupStatus.FAILED,
            "completed_at": outcome.completed_at,
            "error_code": outcome.error[0] if outcome.error else None,
            "error_message": outcome.error[1] if outcome.error else None,
            "warnings": "; ".join(outcome.warnings),
        }
        if outcome.backup_type is not None:
            changes["backup_type"] = outcome.backup_type
        if outcome.snapshot is not None:
            snapshot = outcome.snapshot
            changes.update(
                snapshot_id=snapshot.snapshot_id,
                parent_id=snapshot.parent_id,
                size_bytes=snapshot.size_bytes,
                added_bytes=snapshot.added_bytes,
                files=snapshot.files,
            )
        return self._change_backup(backup_id, items, **changes)

    def _change_backup(self, backup_id: str, items: list[BackupItem] | None = None, **changes: Any) -> Backup:
        with self.session() as session:
            row = session.get(Backup, backup_id)
            if row is None:
                raise BackupNotFound(f"no backup with id {backup_id!r} in the catalog")
            previous = row.status
            for name, value in changes.items():
                setattr(row, name, value)
            _count_if_finished(session, previous, row)
            session.add(row)
            for item in items or []:
                item.backup_id = backup_id
                session.add(item)
            session.commit()
            return row

    def delete_backup(self, backup_id: str) -> None:
        """Forget a backup's record and its items (retention removed its snapshot)."""
        with self.session() as session:
            for item in session.exec(select(BackupItem).where(col(BackupItem.backup_id) == backup_id)):
                session.delete(item)
            found = session.get(Backup, backup_id)
            if found is not None:
                session.delete(found)
            session.commit()

    def get_backup(self, backup_id: str) -> Backup:
        with self.session() as session:
            backup = session.get(Backup, backup_id)
        if backup is None:
            raise BackupNotFound(f"no backup with id {backup_id!r} in the catalog")
        return backup

    def find_backup(self, backup_id: str) -> Backup | None:
        with self.session() as session:
            return session.get(Backup, backup_id) if backup_id else None

    def items_of(self, backup_id: str) -> list[BackupItem]:
        with self.session() as session:
            query = select(BackupItem).where(col(BackupItem.backup_id) == backup_id).order_by(col(BackupItem.id))
            return list(session.exec(query))

    def list_backups(self, where: BackupFilter | None = None) -> list[Backup]:
        """Newest first."""
        where = where or BackupFilter()
        query = _filtered(select(Backup), where)
        query = query.order_by(col(Backup.created_at).desc()).offset(where.offset).limit(where.limit)
        with self.session() as session:
            return list(session.exec(query))

    def count_backups(self, where: BackupFilter) -> int:
        """How many rows `list_backups` would give without limit and offset."""
        query = _filtered(select(func.count()).select_from(Backup), where)
        with self.session() as session:
            return int(session.exec(query).one())

    def tallies(self) -> list[BackupTally]:
        with self.session() as session:
            return list(session.exec(select(BackupTally)))

    # Policies seen by the controller

    def known_policies(self) -> list[KnownPolicy]:
        with self.session() as session:
            return list(session.exec(select(KnownPolicy).order_by(col(KnownPolicy.name))))

    def remember_policy(self, policy: KnownPolicy) -> None:
        with self.session() as session:
            session.merge(policy)
            session.commit()

    def forget_known_policy(self, name: str) -> None:
        self._delete(KnownPolicy, name)

    # Restore runs

    def save_restore_run(self, run: RestoreRun) -> RestoreRun:
        with self.session() as session:
            merged = session.merge(run)
            session.commit()
            return merged

    def change_restore_run(
        self,
        run_id: str,
        *,
        phase: str | None = None,
        message: str | None = None,
        completed_at: datetime | None = None,
        safety_backup_id: str | None = None,
        stage: str | None = None,
        request: str | None = None,
    ) -> RestoreRun:
        """Move a run on: its phase (with the message and end time), its safety backup, its
        stage, the request recovery would apply again."""
        with self.session() as session:
            run = session.get(RestoreRun, run_id)
            if run is None:
                raise CatalogError(f"no restore run {run_id!r} in the catalog")
            changes = {
                "phase": phase,
                "message": message,
                "completed_at": completed_at,
                "safety_backup_id": safety_backup_id,
                "stage": stage,
                "request": request,
            }
            for name, value in changes.items():
                if value is not None:
                    setattr(run, name, value)
            session.add(run)
            session.commit()
            return run

    def restore_runs_in_phase(self, phase: str) -> list[RestoreRun]:
        return self._restore_runs(col(RestoreRun.phase) == phase)

    def restore_runs(self, restore_name: str) -> list[RestoreRun]:
        return self._restore_runs(col(RestoreRun.restore_name) == restore_name)

    # Drills

    def save_drill(self, drill: Drill) -> Drill:
        with self.session() as session:
            session.add(drill)
            session.commit()
            session.refresh(drill)
            return drill

    def finish_drill(
        self, drill_id: str, result: str, message: str, duration: float | None, checks: str, completed_at: datetime
    ) -> Drill:
        with self.session() as session:
            drill = session.get(Drill, drill_id)
            if drill is None:
                raise CatalogError(f"no drill {drill_id!r} in the catalog")
            drill.result, drill.message, drill.duration_seconds, drill.checks = result, message, duration, checks
            drill.completed_at = completed_at
            session.add(drill)
            session.commit()
            session.refresh(drill)
            return drill

    def drill(self, drill_id: str) -> Drill | None:
        with self.session() as session:
            return session.get(Drill, drill_id)

    def drills(self, policy: str | None = None, running: bool = False, limit: int = 100) -> list[Drill]:
        """Newest first."""
        query = select(Drill).order_by(col(Drill.started_at).desc()).limit(limit)
        if policy is not None:
            query = query.where(col(Drill.policy) == policy)
        if running:
            query = query.where(col(Drill.result) == DrillResult.RUNNING.value)
        with self.session() as session:
            return list(session.exec(query))

    def restore_run(self, run_id: str) -> RestoreRun | None:
        """A run by its own id (the one `lifeboat restore` prints)."""
        with self.session() as session:
            return session.get(RestoreRun, run_id)

    def standalone_restore_runs(self) -> list[RestoreRun]:
        """Runs no Restore resource asked for: the CLI's `lifeboat restore`."""
        return self._restore_runs(col(RestoreRun.restore_name).is_(None))

    def restore_runs_of_backup(self, backup_id: str) -> list[RestoreRun]:
        return self._restore_runs(col(RestoreRun.backup_id) == backup_id)

    def _restore_runs(self, condition: ColumnElement[bool]) -> list[RestoreRun]:
        """Restore runs matching `condition`, oldest first."""
        with self.session() as session:
            return list(session.exec(select(RestoreRun).where(condition).order_by(col(RestoreRun.started_at))))

    def restore_run_totals(self) -> list[tuple[str, str, int]]:
        """(target app, phase, number of runs), for the metrics."""
        query = select(RestoreRun.target_app, RestoreRun.phase, func.count()).group_by(
            col(RestoreRun.target_app), col(RestoreRun.phase)
        )
        with self.session() as session:
            return [(app, phase, int(count)) for app, phase, count in session.exec(query)]

    # Containers Lifeboat paused or stopped

    def record_quiesced(self, entry: QuiescedContainer) -> QuiescedContainer:
        with self.session() as session:
            session.add(entry)
            session.commit()
            session.refresh(entry)
        return entry

    def release_quiesced(self, entry_id: int) -> None:
        self._delete(QuiescedContainer, entry_id)

    def quiesced_on(self, host: str) -> list[QuiescedContainer]:
        with self.session() as session:
            query = select(QuiescedContainer).where(col(QuiescedContainer.host) == host)
            return list(session.exec(query.order_by(col(QuiescedContainer.id))))

    # Events

    def record_event(
        self, time: datetime, kind: str, name: str, reason: str, message: str, warning: bool = False
    ) -> Event:
        entry = Event(
            time=time, kind=kind, name=name, reason=reason, message=message, type="Warning" if warning else "Normal"
        )
        with self.session() as session:
            session.add(entry)
            session.commit()
        return entry

    def events_for(self, kind: str, name: str, limit: int = 20) -> list[Event]:
        """The most recent events of one resource, oldest first."""
        query = (
            select(Event)
            .where(col(Event.kind) == kind, col(Event.name) == name)
            .order_by(col(Event.time).desc(), col(Event.id).desc())
            .limit(limit)
        )
        with self.session() as session:
            return list(reversed(list(session.exec(query))))

    # Notices (the outbox the controller's Notifiers read) and the alerts they open

    def announce(
        self,
        notice: Notice,
        opens: bool = False,
        resolves: Sequence[str] = (),
        repeat: bool = False,
        keep: bool = True,
    ) -> list[Notice]:
        """Record `notice` and what it does to the alerts of its subject, in one transaction:
        each open alert named in `resolves` closes with a `resolved` notice; `opens` opens the
        notice's own alert with a `firing` notice, or, when that alert is open already, records
        a `repeat` only if asked to. Otherwise the notice is written with its own state, unless
        `keep` is False (only its resolutions are wanted). Returns the notices written, oldest first."""
        written: list[Notice] = []
        with self.session() as session:
            for event_name in resolves:
                alert = session.get(Alert, (event_name, notice.kind, notice.name))
                if alert is not None:
                    session.delete(alert)
                    since = alert.since.strftime("%Y-%m-%d %H:%M UTC")
                    message = f"{notice.message} (after {event_name} since {since}: {alert.message})"
                    written.append(_notice_like(notice, event_name, NoticeState.RESOLVED, message))
            state: NoticeState | None = NoticeState(notice.state) if keep else None
            if opens:
                key = (notice.event, notice.kind, notice.name)
                if session.get(Alert, key) is None:
                    session.add(
                        Alert(event=key[0], kind=key[1], name=key[2], since=notice.time, message=notice.message)
                    )
                    state = NoticeState.FIRING
                else:
                    state = NoticeState.REPEAT if repeat else None
            if state is not None:
                written.append(_notice_like(notice, notice.event, state, notice.message))
            session.add_all(written)
            session.commit()
        return written

    def open_alerts(self) -> list[Alert]:
        with self.session() as session:
            return list(session.exec(select(Alert).order_by(col(Alert.since))))

    def notices_after(self, host: str, after: int, limit: int = 500) -> list[Notice]:
        query = (
            select(Notice).where(col(Notice.host) == host, col(Notice.id) > after).order_by(col(Notice.id)).limit(limit)
        )
        with self.session() as session:
            return list(session.exec(query))

    def notice_cursor(self, host: str) -> int:
        """The last notice this host's controller took; a host that never took one starts
        after the newest notice (history is not sent again)."""
        with self.session() as session:
            cursor = session.get(NoticeCursor, host)
            if cursor is not None:
                return cursor.last_id
            newest = session.exec(select(func.max(Notice.id))).one()
            return int(newest or 0)

    def move_notice_cursor(self, host: str, last_id: int) -> None:
        with self.session() as session:
            session.merge(NoticeCursor(host=host, last_id=last_id))
            session.commit()


def _notice_like(notice: Notice, event_name: str, state: NoticeState, message: str) -> Notice:
    fields = notice.model_dump(exclude={"id", "event", "state", "message"})
    return Notice(**fields, event=event_name, state=state.value, message=message)


SelectT = TypeVar("SelectT", bound=SelectOfScalar[Any])


def _filtered(query: SelectT, where: BackupFilter) -> SelectT:
    if where.app_id is not None:
        query = query.where(col(Backup.app_id) == where.app_id)
    if where.policy is not None:
        query = query.where(col(Backup.policy) == where.policy)
    if where.storage is not None:
        query = query.where(col(Backup.storage) == where.storage)
    if where.status is not None:
        query = query.where(col(Backup.status) == where.status)
    if where.safety is not None:
        query = query.where(col(Backup.safety) == where.safety)
    if where.created_after is not None:
        query = query.where(col(Backup.created_at) >= where.created_after)
    if where.created_before is not None:
        query = query.where(col(Backup.created_at) <= where.created_before)
    return query


_FINISHED = (BackupStatus.COMPLETED, BackupStatus.FAILED)


def _count_if_finished(session: Session, previous: BackupStatus | None, backup: Backup) -> None:
    if backup.status not in _FINISHED or previous in _FINISHED:
        return
    app_id, policy = backup.app_id, backup.policy or ""
    tally = session.get(BackupTally, (app_id, policy)) or BackupTally(app_id=app_id, policy=policy)
    tally.count(backup)
    session.add(tally)


def _reason(err: SQLAlchemyError) -> str:
    """The driver's own message, without SQLAlchemy's statement dump and links."""
    detail = str(getattr(err, "orig", None) or err).splitlines()[0]
    return f"{err.__class__.__name__}: {detail}"


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
