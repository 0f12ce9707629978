"""`lifeboat notify test NAME`: send a Notifier a test message now, and say whether it arrived."""

from __future__ import annotations

import sys

import click

from controller.cli.context import CliContext
from controller.cli.text import FullHelpGroup
from controller.errors import LifeboatError, ResourceNotFound

pass_context = click.make_pass_decorator(CliContext)


@click.group("notify", cls=FullHelpGroup)
def notify() -> None:
    """Notifiers: try one out."""


@notify.command("test")
@click.argument("name")
@pass_context
def test(ctx: CliContext, name: str) -> None:
    """Send the Notifier NAME a test message, once, from this host (no retries, no rate
    limit). Exit 0: the destination took it; 1: it did not (the reason is printed); 2: the
    Notifier is unknown or a secret it names cannot be read."""
    from datetime import UTC, datetime

    from controller.errors import DeliveryFailed
    from controller.host import host_name
    from controller.notify.destination import destination_for
    from controller.notify.message import sample_message
    from controller.resources.notifier import Notifier

    try:
        loaded = ctx.store.load().get("Notifier", name)
        if loaded is None or not isinstance(loaded.resource, Notifier):
            raise ResourceNotFound(f'Notifier "{name}" not found in {ctx.resources_dir}')
        destination = destination_for(name, loaded.resource.spec, ctx.environ)
    except LifeboatError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    now = datetime.now(UTC)
    try:
        destination.send(sample_message(name, host_name(), now))
    except DeliveryFailed as err:
        ctx.catalog.record_event(now, "Notifier", name, "TestFailed", str(err), True)
        click.echo(f"error: the test message was not delivered: {err}", err=True)
        sys.exit(1)
    ctx.catalog.record_event(now, "Notifier", name, "TestSent", f"a test message went to {destination.described}")
    click.echo(f"sent a test message to {destination.described}")
