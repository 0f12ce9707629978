"""What the runs and checks tell the Notifiers: each outcome becomes a notice in the
catalog's outbox (`Catalog.announce`), with the alert it opens or the alerts it resolves, so
that a warning is sent once and its recovery once. Any process writes them (the controller,
the API, a CLI command); the controller of the host delivers them (notifications.py). A
notice that cannot be written is logged and dropped: telling people never fails the work."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from controller.catalog.models import Notice, NoticeState
from controller.errors import LifeboatError
from controller.host import host_name
from controller.reconciler.runtime import Runtime
from controller.resources.notifier import NotifierEvent as Ev

log = logging.getLogger(__name__)
BACKUP_STARTED = "BackupStarted"  # for Healthchecks' /start ping only: no Notifier can ask for it
MESSAGE_LIMIT = 500  # characters of the cause a notice keeps


@dataclass(frozen=True)
class Subject:
    """What a notice is about (its alerts are per event and subject), and what it names."""

    kind: str  # BackupPolicy, App, BackupStorage
    name: str
    app: str = ""
    policy: str = ""
    storage: str = ""


def first_line(text: str) -> str:
    """The cause, not what ran it: a dump's script or a traceback stays in the logs."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def announce(
    runtime: Runtime,
    event: str,
    subject: Subject,
    message: str,
    object_id: str = "",
    *,
    opens: bool = False,
    resolves: tuple[str, ...] = (),
    repeat: bool = False,
    one_off: bool = False,
    keep: bool = True,
) -> None:
    """`opens`: a warning that stays open until resolved; `one_off`: a warning about one
    object (a restore) that nothing resolves; neither: a success or start (info). `keep`
    False: only the resolutions are written."""
    state = NoticeState.FIRING if one_off else NoticeState.INFO
    notice = Notice(
        time=runtime.clock(),
        host=host_name(),
        event=event,
        state=state.value,
        kind=subject.kind,
        name=subject.name,
        app=subject.app,
        policy=subject.policy,
        storage=subject.storage,
        object_id=object_id,
        message=first_line(message),
    )
    try:
        runtime.catalog.announce(notice, opens, resolves, repeat, keep)
    except LifeboatError as err:
        log.warning("%s of %s %s was not recorded for the Notifiers: %s", event, subject.kind, subject.name, err)


def backup_ended(runtime: Runtime, subject: Subject, backup_id: str, failure: str | None, warnings: list[str]) -> None:
    """A failure opens BackupFailed (each further failure is a repeat: pings only); a success
    resolves what a success ends, and a completion with warnings opens BackupWarning."""
    if failure is not None:
        announce(runtime, Ev.BACKUP_FAILED, subject, failure, backup_id, opens=True, repeat=True)
        return
    ended = (Ev.BACKUP_FAILED, Ev.BACKUP_OVERDUE, Ev.POLICY_STALLED, *(() if warnings else (Ev.BACKUP_WARNING,)))
    message = f"backup {backup_id} completed"
    announce(runtime, Ev.BACKUP_SUCCEEDED, subject, message, backup_id, resolves=ended)
    if warnings:
        announce(runtime, Ev.BACKUP_WARNING, subject, "; ".join(warnings), backup_id, opens=True)


def restore_ended(runtime: Runtime, subject: Subject, run_id: str, phase: str, message: str) -> None:
    """Each restore is its own object: its failure is told once, and nothing resolves it."""
    event = {"Succeeded": Ev.RESTORE_SUCCEEDED, "RolledBack": Ev.RESTORE_ROLLED_BACK}.get(phase, Ev.RESTORE_FAILED)
    announce(runtime, event, subject, message, run_id, one_off=event != Ev.RESTORE_SUCCEEDED)


def drill_ended(runtime: Runtime, subject: Subject, drill_id: str, failure: str | None, message: str) -> None:
    if failure is not None:
        announce(runtime, Ev.DRILL_FAILED, subject, failure, drill_id, opens=True)
    else:
        announce(runtime, Ev.DRILL_SUCCEEDED, subject, message, drill_id, resolves=(Ev.DRILL_FAILED,))


def condition_changed(runtime: Runtime, event: Ev, subject: Subject, problem: str | None, fixed: str) -> None:
    """A warning that holds while a condition does (a storage unreachable, a check's damage,
    a policy stalled or overdue): opened once, resolved once. Announcing it again while it
    holds writes nothing."""
    if problem is not None:
        announce(runtime, event, subject, problem, opens=True)
    else:
        announce(runtime, event, subject, fixed, resolves=(event,), keep=False)
