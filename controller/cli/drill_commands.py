"""`lifeboat drill POLICY`: prove now that a policy's backup brings its app back."""

from __future__ import annotations

import sys

import click

from controller.cli.app_commands import command_runtime, docker_client
from controller.cli.context import CliContext
from controller.cli.repo_commands import RepoTarget
from controller.cli.text import OUTPUT_OPTION, emit, table
from controller.errors import LifeboatError, ResourceNotFound

pass_context = click.make_pass_decorator(CliContext)


@click.command("drill")
@click.argument("policy_name", metavar="POLICY")
@click.option("--backup", "backup_id", metavar="ID", help="Drill this backup instead of the policy's latest.")
@OUTPUT_OPTION
@pass_context
def drill(ctx: CliContext, policy_name: str, backup_id: str | None, output: str) -> None:
    """Restore the policy's latest backup (or --backup ID) into a throwaway clone, run the
    policy's verify.checks in it, remove it. Exit 0: every check passed; 1: the drill ran
    and failed (an unreadable backup included); 2: it could not run. The app is untouched."""
    import json

    from controller.catalog.models import DrillResult
    from controller.reconciler.drill_run import DrillRequest, DrillRunner
    from controller.reconciler.runtime import OpenedRepository
    from controller.resources.backup_policy import BackupPolicy

    try:
        loaded = ctx.store.load().get("BackupPolicy", policy_name)
        if loaded is None or not isinstance(loaded.resource, BackupPolicy):
            raise ResourceNotFound(f'BackupPolicy "{policy_name}" not found in {ctx.resources_dir}')
        policy = loaded.resource
        client = docker_client(ctx)
        repository = RepoTarget(ctx, None, policy.spec.storage, None, None).open()
        runtime = command_runtime(ctx, client, OpenedRepository(repository))
        done = DrillRunner(runtime).run(DrillRequest.from_policy(policy, backup_id))
    except LifeboatError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    checks = json.loads(done.checks)
    rows = [[c["check"], "passed" if c["passed"] else "FAILED", c["detail"]] for c in checks]
    text = f"drill {done.id} of backup {done.backup_id}: {done.result}: {done.message}"
    emit(
        output,
        {**done.model_dump(mode="json"), "checks": checks},
        text + ("\n" + table(["CHECK", "RESULT", "DETAIL"], rows) if rows else ""),
    )
    if done.result != DrillResult.PASSED.value:
        sys.exit(1)
