"""The Notifier reconciler: each Notifier's status from its courier (notifications.py):
Ready (it can send, and its latest message went out), lastDelivery, lastError and counts."""

from __future__ import annotations

from controller.reconciler.notifications import Notifications
from controller.reconciler.status import StatusWriter
from controller.resources.loader import LoadedResource
from controller.resources.meta import set_condition
from controller.resources.notifier import LastDelivery, Notifier, NotifierStatus


class NotifierReconciler:
    def __init__(self, notifications: Notifications, status: StatusWriter) -> None:
        self.notifications, self.status = notifications, status

    def reconcile(self, item: LoadedResource) -> None:
        notifier = item.resource
        assert isinstance(notifier, Notifier)
        old = notifier.status or NotifierStatus()
        status = old.model_copy(deep=True)
        problem = self.notifications.problems.get(item.name)
        courier = self.notifications.courier(item.name)
        state = courier.state if courier is not None else None
        if problem is not None:
            ready = self.status.condition("Ready", False, "InvalidConfig", problem, item)
        elif state is not None and state.failing:
            ready = self.status.condition("Ready", False, "DeliveryFailed", state.last_error or "", item)
        else:
            where = courier.destination.described if courier is not None else notifier.spec.destination
            ready = self.status.condition("Ready", True, "Ready", f"sends to {where}", item)
        if state is not None:
            status.delivered, status.failed, status.suppressed = state.delivered, state.failed, state.suppressed
            status.last_error = state.last_error
            if state.last_delivery is not None:
                time, event, subject = state.last_delivery
                status.last_delivery = LastDelivery(time=time, event=event, subject=subject)
        status.conditions = set_condition(status.conditions, ready)
        status.observed_generation = item.generation
        self.status.write(item, status)
