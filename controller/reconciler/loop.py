"""The controller's loop: a pass when resource files change (watchfiles, debounced), when
work finishes, when the next schedule is due, and at least every `resync` seconds."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from watchfiles import watch

from controller.reconciler.reconciler import Reconciler

log = logging.getLogger(__name__)


def watch_resources(directory: Path, wake: threading.Event, stop: threading.Event) -> threading.Thread:
    """Set `wake` on every change under `directory`. The controller's own status writes wake
    it too; that pass finds nothing changed and writes nothing, so there is no feedback loop."""

    def run() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for _changes in watch(directory, stop_event=stop, debounce=500, rust_timeout=1000, yield_on_timeout=False):
            wake.set()

    thread = threading.Thread(target=run, name="watch-resources", daemon=True)
    thread.start()
    return thread


def run_controller(
    reconciler: Reconciler, wake: threading.Event, stop: threading.Event, resync_seconds: float = 60.0
) -> None:
    for note in reconciler.recover():
        log.warning("recovered after a restart: %s", note)
    watch_resources(reconciler.resources, wake, stop)
    reconciler.notifications.start()
    while not stop.is_set():
        try:
            reconciler.pass_once()
        except Exception:  # the loop must outlive any one pass
            log.exception("reconcile pass failed; retrying at the next trigger")
        timeout = resync_seconds
        if reconciler.next_due is not None:
            until_due = (reconciler.next_due - datetime.now(UTC)).total_seconds()
            timeout = max(0.2, min(timeout, until_due + 0.05))
        wake.wait(timeout)
        wake.clear()
    reconciler.queue.wait_idle()
    reconciler.notifications.drain(timeout=30)  # what the last runs announced goes out before the exit
    reconciler.notifications.stop()
