"""Pre/post hooks: a command run with docker exec in one of the app's services."""

from __future__ import annotations

from dataclasses import dataclass

from docker import DockerClient

from controller.apps.discovery import App
from controller.apps.exec import ExecCommand, failure_message, run
from controller.errors import HookFailed, InvalidConfig
from controller.resources.backup_policy import Hook, OnError


@dataclass(frozen=True)
class HookResult:
    name: str  # "pre[1] SERVICE: COMMAND"
    exit_code: int | None  # None when it could not run
    error: str | None


def run_hooks(client: DockerClient, app: App, hooks: list[Hook], phase: str) -> list[HookResult]:
    """Run `hooks` in order; one result per hook. A failing hook with onError: fail raises
    HookFailed (the later hooks do not run); with onError: continue it is recorded."""
    items = []
    for number, hook in enumerate(hooks, 1):
        container = app.container_for(hook.service)
        if container is None:
            raise InvalidConfig(f"{phase} hook {number}: app {app.name!r} has no service {hook.service!r}")
        name = f"{phase}[{number}] {hook.service}: {' '.join(hook.command)}"
        error: str | None
        code: int | None = None
        if not container.running:
            error = f"{container.name} is not running"
        else:
            result = run(client, container.id, ExecCommand(list(hook.command)), timeout=hook.timeout_seconds)
            code = result.exit_code
            what = f"{phase} hook {number} ({' '.join(hook.command)}) exited with {code}"
            error = None if code == 0 else failure_message(what, result.stderr, container.name)
        items.append(HookResult(name, code, error))
        if error is not None and hook.on_error == OnError.FAIL:
            raise HookFailed(error)
    return items
