"""`lifeboat controller` (the reconcile loop and the API) and `lifeboat api` (the API, and
the restores it is asked for, without schedules)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

import click

from controller.cli.context import CliContext

if TYPE_CHECKING:
    from controller.api.server import ApiServer
    from controller.reconciler.reconciler import Reconciler

pass_context = click.make_pass_decorator(CliContext)
log = logging.getLogger("controller")
_LISTEN_HELP = 'HOST:PORT for the REST API [default: config api.listen, 127.0.0.1:8080]; "" for none.'
_LOG_FORMAT = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Log line format."
)


def _reconciler(ctx: CliContext, wake: threading.Event, scheduling: bool) -> Reconciler:
    from controller.apps.docker_api import connect
    from controller.reconciler.reconciler import Reconciler
    from controller.reconciler.work_queue import WorkQueue

    limits = ctx.config.limits
    return Reconciler(
        ctx.resources_dir,
        ctx.catalog,
        lambda: connect(ctx.environ.get("DOCKER_HOST")),
        WorkQueue(limits.max_concurrent_backups, on_done=wake.set),
        environ=ctx.environ,
        max_backup_bytes=int(limits.max_backup_size_gb * 1024**3) if limits.max_backup_size_gb else None,
        transfers=limits.transfers,
        max_concurrent_drills=limits.max_concurrent_drills,
        scheduling=scheduling,
    )


def _start_api(ctx: CliContext, reconciler: Reconciler, wake: threading.Event, listen: str | None) -> ApiServer | None:
    from controller.api.app import create_app
    from controller.api.keys import KeyRing
    from controller.api.server import ApiServer
    from controller.api.service import ApiService
    from controller.reconciler.on_demand import OnDemand
    from controller.resources.config import api_keys_file

    settings = ctx.config.api
    chosen = listen if listen is not None else ctx.environ.get("LIFEBOAT_API_LISTEN", settings.listen)
    if not chosen:
        return None
    defaults = ctx.config.defaults
    on_demand = OnDemand(reconciler, defaults.backup_type, defaults.retention_days)
    keys = KeyRing(settings.keys, api_keys_file(ctx.config, ctx.environ))
    if not keys.entries():
        log.warning("no API keys: every API request gets 401; see `lifeboat apikey create`")
    app = create_app(ApiService(reconciler, on_demand, wake.set), keys, max_request_bytes=settings.max_request_bytes)
    server = ApiServer(app, chosen)
    log.info("API on %s (docs at /docs)", server.start())
    return server


def _run(ctx: CliContext, resync_seconds: float, listen: str | None, log_format: str, scheduling: bool) -> None:
    from controller.cli.logs import configure_logging
    from controller.reconciler.loop import run_controller

    configure_logging(log_format)
    wake, stop = threading.Event(), threading.Event()
    reconciler = _reconciler(ctx, wake, scheduling)
    log.info("watching %s%s", ctx.resources_dir, "" if scheduling else " (restores and API requests only)")
    server = _start_api(ctx, reconciler, wake, listen)

    def request_stop(_signum: int, _frame: object) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        run_controller(reconciler, wake, stop, resync_seconds)
    finally:
        if server is not None:
            server.stop()


@click.command("controller")
@click.option("--resync-seconds", default=60.0, show_default=True, help="Longest time between two passes.")
@click.option("--once", is_flag=True, help="Recover, run one pass, wait for the work it started, and exit.")
@click.option("--listen", "--api-listen", "listen", metavar="HOST:PORT", default=None, help=_LISTEN_HELP)
@_LOG_FORMAT
@pass_context
def controller(ctx: CliContext, resync_seconds: float, once: bool, listen: str | None, log_format: str) -> None:
    """Run the reconcile loop on the resources directory, and the REST API, until stopped."""
    if not once:
        _run(ctx, resync_seconds, listen, log_format, scheduling=True)
        return
    from controller.cli.logs import configure_logging

    configure_logging(log_format)
    reconciler = _reconciler(ctx, threading.Event(), scheduling=True)
    for note in reconciler.recover():
        click.echo(f"recovered: {note}", err=True)
    reconciler.pass_once()
    reconciler.queue.wait_idle()
    reconciler.notifications.drain()  # the Notifiers hear what the pass found and what its work did
    reconciler.pass_once()  # the status of what just finished (the Notifiers' too)
    reconciler.notifications.stop()


@click.command("api")
@click.option("--listen", metavar="HOST:PORT", default=None, help=_LISTEN_HELP)
@click.option("--resync-seconds", default=60.0, show_default=True, help="Longest time between two passes.")
@_LOG_FORMAT
@pass_context
def api(ctx: CliContext, listen: str | None, resync_seconds: float, log_format: str) -> None:
    """Serve the REST API without schedules: backups and restores happen when asked for.
    (`lifeboat controller` serves the same API beside its schedules; run one or the other.)"""
    _run(ctx, resync_seconds, listen, log_format, scheduling=False)
