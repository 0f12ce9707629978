"""Writing what the controller observed into each resource's `status` (DESIGN.md §2), with
an event for every change a person should see in `lifeboat describe`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.catalog.catalog import Catalog
from controller.errors import LifeboatError, ResourceProblem, WriteConflict
from controller.resources.kinds import STATUS_TYPES
from controller.resources.loader import LoadedResource
from controller.resources.meta import Condition, ConditionStatus, set_condition, spec_generation
from controller.resources.writeback import read_document, write_status

log = logging.getLogger(__name__)


class StatusWriter:
    def __init__(self, catalog: Catalog, clock: Callable[[], datetime]) -> None:
        self.catalog, self.clock = catalog, clock

    def condition(self, kind: str, ok: bool, reason: str, message: str, item: LoadedResource) -> Condition:
        return Condition(
            type=kind,
            status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            last_transition_time=self.clock(),
            observed_generation=item.generation,
        )

    def write(self, item: LoadedResource, status: Any) -> None:
        self.record_changes(item.kind, item.name, item.resource.status, status)
        mode = getattr(item.resource.spec, "status_mode", None)
        try:
            write_status(item.path, item.kind, item.name, item.generation, status, *([mode] if mode else []))
        except WriteConflict as err:
            log.info("%s; the next pass retries", err)

    def record_changes(self, kind: str, name: str, old: Any, new: Any) -> None:
        """An event for every condition that changed status or reason, and for a restore's
        new phase: `lifeboat describe` shows how a resource got where it is."""
        before = {c.type: c for c in (old.conditions if old is not None else [])}
        for condition in new.conditions:
            previous = before.get(condition.type)
            if previous is not None and (previous.status, previous.reason) == (condition.status, condition.reason):
                continue
            bad = (condition.type == "Stalled") == (condition.status == ConditionStatus.TRUE)
            message = f"{condition.type}={condition.status.value}" + (
                f": {condition.message}" if condition.message else ""
            )
            self.catalog.record_event(self.clock(), kind, name, condition.reason, message, bad)
        phase = getattr(new, "phase", None)
        if phase is not None and phase != getattr(old, "phase", None):
            self.catalog.record_event(self.clock(), kind, name, f"Phase{phase.value}", new.message or "")

    def report_invalid(self, problem: ResourceProblem) -> None:
        """Ready=False with the exact problem, written into the invalid resource itself."""
        if not problem.kind or not problem.name or problem.kind not in STATUS_TYPES:
            log.warning("invalid resource: %s", problem)
            return
        path = Path(problem.file)
        try:
            data = read_document(path, problem.kind, problem.name)
            if data is None:
                return
            generation = spec_generation(data.get("spec"))
            status_type = STATUS_TYPES[problem.kind]
            try:
                status = status_type.model_validate(data.get("status") or {})
            except ValueError:
                status = status_type()
            ready = Condition(
                type="Ready",
                status=ConditionStatus.FALSE,
                reason="Invalid",
                message=f"{problem.field}: {problem.message}" if problem.field else problem.message,
                last_transition_time=self.clock(),
                observed_generation=generation,
            )
            old = status.model_copy(deep=True)
            status.observed_generation = generation
            status.conditions = set_condition(status.conditions, ready)
            self.record_changes(problem.kind, problem.name, old, status)
            write_status(path, problem.kind, problem.name, generation, status)
        except (OSError, LifeboatError, ValueError) as err:
            log.warning("invalid resource %s, and its status could not be written: %s", problem, err)
