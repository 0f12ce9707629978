"""The FastAPI application: routes, API-key checks, the request size limit.

Handlers are plain functions (FastAPI runs them on its thread pool): the work behind them
(catalog, resources, repository) blocks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import APIKeyHeader
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.download import TarDownload, parse_range
from controller.api.envelope import OK, Envelope, error_response, install_error_handlers, status_for
from controller.api.keys import KeyRing
from controller.api.metrics import LifeboatCollector, exposition
from controller.api.models import (
    NAME_PATTERN,
    BackupCreate,
    BackupDetail,
    BackupOut,
    BackupPage,
    BackupSchedule,
    DrillOut,
    Health,
    RestoreAccepted,
    RestoreCreate,
    RestoreOut,
    RestorePreviewOut,
    ScheduleOut,
)
from controller.api.service import ApiService
from controller.catalog.catalog import BackupFilter
from controller.catalog.models import Backup, BackupStatus
from controller.errors import InvalidRequest

log = logging.getLogger(__name__)
_READ_METHODS = {"GET", "HEAD", "OPTIONS"}
BackupId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$")]
AppId = Annotated[str, Path(pattern=NAME_PATTERN)]


class BodySizeLimit:
    """413 for a body over `limit` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, refused = 0, False

        async def limited() -> Message:
            """Counts the body as it arrives; over the limit, answers 413 itself and tells
            the app the client left (the app's own answer is then dropped)."""
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not refused:
                refused = True
                await self._refuse(scope, receive, send)
            return {"type": "http.disconnect"} if refused else message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response("REQUEST_TOO_LARGE", f"the request body is over the limit of {self.limit} bytes")
        await response(scope, receive, send)


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Envelope[Any], "description": meaning}
    for status, meaning in {
        400: "INVALID_REQUEST: the request asks for what cannot be done",
        401: "UNAUTHORIZED: no valid X-API-Key",
        403: "FORBIDDEN: a read-only key tried to write",
        404: "BACKUP_NOT_FOUND, APP_NOT_FOUND, RESOURCE_NOT_FOUND",
        409: "CONFLICT, RESOURCE_BUSY, REPOSITORY_LOCKED: in use or managed elsewhere",
        413: "REQUEST_TOO_LARGE",
        416: "RANGE_NOT_SATISFIABLE",
        422: "VALIDATION_ERROR, INVALID_RESOURCE: a field is wrong (named in the message)",
        500: "BACKUP_CREATE_FAILED, BACKUP_CORRUPTED, RESTORE_FAILED, INTERNAL_ERROR",
        503: "DOCKER_UNAVAILABLE, STORAGE_UNAVAILABLE: try again",
        507: "BACKUP_QUOTA_EXCEEDED",
    }.items()
}
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (lifeboat apikey create).")


def _authorizer(keys: KeyRing) -> Callable[..., None]:
    def authorize(request: Request, key: Annotated[str | None, Depends(_KEY_HEADER)]) -> None:
        entry = keys.find(key)
        if entry is None:
            raise HTTPException(401, "a valid X-API-Key header is required", headers={"WWW-Authenticate": "X-API-Key"})
        if entry.role != "admin" and request.method not in _READ_METHODS:
            raise HTTPException(403, f"API key {entry.name!r} is read-only")
        request.state.key_name = entry.name

    return authorize


def create_app(
    service: ApiService,
    keys: KeyRing,
    *,
    max_request_bytes: int = 1024 * 1024,
    ready: Callable[[], dict[str, str]] | None = None,
) -> FastAPI:
    # /docs and /redoc load Swagger UI and ReDoc from the API itself: they work on a host
    # with no way out to a CDN.
    app = FastAPIOffline(
        title="Lifeboat",
        version="1",
        description="Backups and restores of Docker Compose apps. Every response is {code, message, data}.",
        static_url="/docs-assets",
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=max_request_bytes)
    collector = LifeboatCollector(service.catalog, service.reconciler.repositories.sizes, service.in_flight)
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(_authorizer(keys))], responses=_ERRORS)
    _backup_routes(api, service)
    _other_routes(api, service)
    app.include_router(api)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> Envelope[Health]:
        return Envelope(code=OK, message="alive", data=Health(status="ok"))

    @app.get("/readyz", tags=["operations"], responses={503: {"model": Envelope[Health]}})
    def readyz() -> Any:
        checks = (ready or service.readiness)()
        failing = {name: state for name, state in checks.items() if state != "ok"}
        health = Health(status="ok" if not failing else "unavailable", checks=checks)
        if failing:
            body: Envelope[Health] = Envelope(
                code="NOT_READY", message="; ".join(f"{k}: {v}" for k, v in failing.items()), data=health
            )
            return JSONResponse(body.model_dump(mode="json"), status_code=503)
        return Envelope(code=OK, message="ready", data=health)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics() -> Response:
        return Response(exposition(collector), media_type=CONTENT_TYPE_LATEST)

    return app


def _backup_routes(api: APIRouter, service: ApiService) -> None:
    @api.get("/backups", tags=["backups"])
    def list_backups(
        app_id: str | None = None,
        status: BackupStatus | None = None,
        policy: str | None = None,
        created_after: Annotated[datetime | None, Query(description="ISO 8601 with offset")] = None,
        created_before: Annotated[datetime | None, Query(description="ISO 8601 with offset")] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Envelope[BackupPage]:
        for name, value in (("created_after", created_after), ("created_before", created_before)):
            if value is not None and value.tzinfo is None:
                raise InvalidRequest(f"{name}: expected a time with an offset (Z or +01:00)")
        where = BackupFilter(
            app_id=app_id,
            policy=policy,
            status=status,
            created_after=created_after,
            created_before=created_before,
            limit=page_size,
            offset=(page - 1) * page_size,
        )
        listed = service.list_backups(where, page)
        return Envelope(code=OK, message=f"{listed.total} backup(s)", data=listed)

    @api.get("/backups/schedule", tags=["schedules"])
    def get_schedules(app_id: str | None = None) -> Envelope[list[ScheduleOut]]:
        views = service.schedules(app_id)
        return Envelope(code=OK, message=f"{len(views)} schedule(s)", data=views)

    @api.put("/backups/schedule", tags=["schedules"])
    def put_schedule(body: BackupSchedule) -> Envelope[ScheduleOut]:
        view = service.put_schedule(body)
        return Envelope(code=OK, message=f"policy {view.policy} written", data=view)

    @api.get(
        "/backups/download/{backup_id}",
        tags=["backups"],
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-tar": {}, "application/zstd": {}}}},
    )
    def download(
        backup_id: BackupId,
        compression: Annotated[str, Query(pattern="^(none|zstd)$")] = "none",
        range_header: Annotated[str | None, Header(alias="Range")] = None,
    ) -> StreamingResponse:
        prepared = service.download(backup_id, compressed=compression == "zstd")
        return _streaming(prepared, backup_id, range_header)

    @api.post("/backups/{app_id}", tags=["backups"], status_code=202, responses={200: {"model": Envelope[BackupOut]}})
    def create_backup(
        app_id: AppId,
        response: Response,
        body: BackupCreate | None = None,
        wait: Annotated[bool, Query(description="Answer when the backup has finished (200).")] = False,
        timeout: Annotated[float, Query(gt=0, le=86400, description="Longest wait, in seconds.")] = 3600,
    ) -> Envelope[BackupOut]:
        return _answer(service.create_backup(app_id, body or BackupCreate()), response, wait, timeout)

    @api.post(
        "/policies/{name}/backups", tags=["backups"], status_code=202, responses={200: {"model": Envelope[BackupOut]}}
    )
    def create_policy_backup(
        name: AppId,
        response: Response,
        wait: Annotated[bool, Query(description="Answer when the backup has finished (200).")] = False,
        timeout: Annotated[float, Query(gt=0, le=86400, description="Longest wait, in seconds.")] = 3600,
    ) -> Envelope[BackupOut]:
        """Back up a policy now, as its schedule would (a policy of host paths too): the
        backup is the policy's, and its retention applies."""
        return _answer(service.create_policy_backup(name), response, wait, timeout)

    def _answer(row: Backup, response: Response, wait: bool, timeout: float) -> Envelope[BackupOut]:
        """202 with the pending backup; with `wait`, its end (200, or its error's status)."""
        if not wait:
            return Envelope(code=OK, message=f"backup {row.backup_id} queued", data=BackupOut.of(row))
        row = service.wait_until_finished(row.backup_id, timeout)
        if row.status == BackupStatus.FAILED:
            code = row.error_code or "BACKUP_CREATE_FAILED"
            response.status_code = status_for(code)
            return Envelope(code=code, message=row.error_message or "", data=BackupOut.of(row))
        if row.status != BackupStatus.COMPLETED:
            message = f"backup {row.backup_id} still {row.status.value} after {timeout:g} s"
            return Envelope(code=OK, message=message, data=BackupOut.of(row))
        response.status_code = 200
        return Envelope(code=OK, message=f"backup {row.backup_id} completed", data=BackupOut.of(row))

    @api.get("/backups/{backup_id}", tags=["backups"])
    def get_backup(backup_id: BackupId) -> Envelope[BackupDetail]:
        detail = service.backup(backup_id)
        return Envelope(code=OK, message=detail.status, data=detail)

    @api.delete("/backups/{backup_id}", tags=["backups"])
    def delete_backup(backup_id: BackupId) -> Envelope[BackupOut]:
        row = service.delete_backup(backup_id)
        message = f"backup {backup_id} deleted; its space returns at the storage's next prune"
        return Envelope(code=OK, message=message, data=BackupOut.of(row))


def _other_routes(api: APIRouter, service: ApiService) -> None:
    @api.post("/backups/{backup_id}/restore", tags=["restores"], status_code=202)
    def create_restore(
        backup_id: BackupId, response: Response, body: RestoreCreate | None = None
    ) -> Envelope[RestoreAccepted | RestorePreviewOut]:
        """202 with the restore's id; with `dry_run`, 200 with what it would do (nothing changes)."""
        asked = body or RestoreCreate()
        if asked.dry_run:
            response.status_code = 200
            preview = service.preview_restore(backup_id, asked)
            return Envelope(code=OK, message="dry run: nothing was changed", data=preview)
        accepted = service.create_restore(backup_id, asked)
        return Envelope(code=OK, message=f"restore {accepted.restore_id} created", data=accepted)

    @api.get("/restores/{restore_id}", tags=["restores"])
    def get_restore(restore_id: Annotated[str, Path(pattern=NAME_PATTERN)]) -> Envelope[RestoreOut]:
        out = service.restore(restore_id)
        return Envelope(code=OK, message=out.phase, data=out)

    @api.post("/backups/{backup_id}/verify", tags=["drills"], status_code=202)
    def create_drill(backup_id: BackupId) -> Envelope[DrillOut]:
        """A restore drill of the backup, queued: poll its url. The source app is never touched."""
        drill = service.create_drill(backup_id)
        return Envelope(code=OK, message=f"drill {drill.id} queued", data=drill)

    @api.get("/drills/{drill_id}", tags=["drills"])
    def get_drill(drill_id: Annotated[str, Path(pattern=NAME_PATTERN)]) -> Envelope[DrillOut]:
        drill = service.drill(drill_id)
        return Envelope(code=OK, message=drill.result, data=drill)


def _streaming(prepared: TarDownload, backup_id: str, range_header: str | None) -> StreamingResponse:
    length = prepared.length()
    suffix = ".tar.zst" if prepared.compressed else ".tar"
    headers = {"Content-Disposition": f'attachment; filename="{backup_id}{suffix}"'}
    status = 200
    if length is None:
        headers["Accept-Ranges"] = "none"
    else:
        headers["Accept-Ranges"] = "bytes"
        prepared.window = parse_range(range_header, length)
        if prepared.window is not None:
            status = 206
            headers["Content-Range"] = f"bytes {prepared.window.start}-{prepared.window.end}/{length}"
            headers["Content-Length"] = str(prepared.window.length)
        else:
            headers["Content-Length"] = str(length)
    media = "application/zstd" if prepared.compressed else "application/x-tar"
    return StreamingResponse(_chunks(prepared), status_code=status, headers=headers, media_type=media)


async def _chunks(prepared: TarDownload) -> AsyncIterator[bytes]:
    transfer = prepared.start()
    try:
        while True:
            chunk = await run_in_threadpool(transfer.next_chunk)
            if chunk is None:
                return
            yield chunk
    finally:
        transfer.cancel()
