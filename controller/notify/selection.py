"""Which messages a Notifier gets: its events (or, for Healthchecks, every backup run) and its
selector of policies, apps, storages and labels."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from controller.notify.healthchecks import PINGS
from controller.notify.message import Message
from controller.resources.notifier import NotifierSpec

_MESSAGE_STATES = ("firing", "resolved", "info")  # a repeat is for pings only: still failing says nothing new


def selects(spec: NotifierSpec, message: Message, labels: Mapping[str, str]) -> bool:
    """`labels`: those of the message's policy, else of its storage."""
    if spec.healthchecks is not None:
        wanted = message.event in PINGS and bool(message.policy) and message.state != "resolved"
    else:
        wanted = message.state in _MESSAGE_STATES and message.event in spec.events
    return wanted and _selected(spec, message, labels)


def _selected(spec: NotifierSpec, message: Message, labels: Mapping[str, str]) -> bool:
    selector = spec.selector
    for globs, value in ((selector.policies, message.policy), (selector.apps, message.app)):
        if globs and not any(fnmatchcase(value, glob) for glob in globs if value):
            return False
    if selector.storages and not any(fnmatchcase(message.storage, g) for g in selector.storages if message.storage):
        return False
    return all(labels.get(key) == value for key, value in selector.labels.items())
