"""/metrics: read from the catalog at scrape time, so the figures are the catalog's.

Counters come from the catalog's backup tallies, which count every finished backup once
and keep counting after retention removes its row: they never go down and they survive
restarts. Restores are counted from their runs (never deleted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from controller.catalog.catalog import Catalog
from controller.catalog.models import DURATION_BUCKETS, DrillResult
from controller.resources.restore import RestorePhase

_LABELS = ["app", "policy"]
_FINISHED_RESTORES = {RestorePhase.SUCCEEDED.value, RestorePhase.FAILED.value, RestorePhase.ROLLED_BACK.value}


class LifeboatCollector(Collector):
    def __init__(
        self, catalog: Catalog, repository_sizes: Callable[[], dict[str, int]], jobs_in_flight: Callable[[], int]
    ) -> None:
        self.catalog, self.repository_sizes, self.jobs_in_flight = catalog, repository_sizes, jobs_in_flight

    def collect(self) -> Iterator[Metric]:
        yield from self._backups()
        yield from self._restores()
        yield from self._drills()
        sizes = GaugeMetricFamily(
            "repository_size_bytes", "Bytes stored in each BackupStorage's repository", labels=["storage"]
        )
        for storage, size in sorted(self.repository_sizes().items()):
            sizes.add_metric([storage], size)
        yield sizes
        yield GaugeMetricFamily(
            "jobs_in_flight", "Backups, restores and deletes running or queued", self.jobs_in_flight()
        )

    def _backups(self) -> Iterator[Metric]:
        total = CounterMetricFamily("backup", "Backups finished, completed or failed", labels=_LABELS)
        success = CounterMetricFamily("backup_success", "Backups completed", labels=_LABELS)
        failed = CounterMetricFamily("backup_failed", "Backups failed", labels=_LABELS)
        warned = CounterMetricFamily(
            "backup_warning", "Backups completed with a warning: a source empty, or shrunk by half", labels=_LABELS
        )
        duration = HistogramMetricFamily(
            "backup_duration_seconds", "Time from start to end of a backup", labels=_LABELS
        )
        size = GaugeMetricFamily("backup_size_bytes", "Size of the latest completed backup", labels=_LABELS)
        last = GaugeMetricFamily(
            "backup_last_success_timestamp_seconds", "Start time of the latest completed backup", labels=_LABELS
        )
        for tally in sorted(self.catalog.tallies(), key=lambda t: (t.app_id, t.policy)):
            labels = [tally.app_id, tally.policy]
            total.add_metric(labels, tally.succeeded + tally.failed)
            success.add_metric(labels, tally.succeeded)
            failed.add_metric(labels, tally.failed)
            warned.add_metric(labels, tally.warned)
            cumulative, buckets = 0, []
            for bound, count in zip([*DURATION_BUCKETS, float("inf")], tally.bucket_counts(), strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", cumulative))
            duration.add_metric(labels, buckets, tally.duration_sum)
            if tally.last_success is not None:
                size.add_metric(labels, tally.last_size_bytes)
                last.add_metric(labels, tally.last_success.timestamp())
        yield from (total, success, failed, warned, duration, size, last)

    def _restores(self) -> Iterator[Metric]:
        total = CounterMetricFamily("restore", "Restores finished, whatever the outcome", labels=["app"])
        success = CounterMetricFamily("restore_success", "Restores that succeeded", labels=["app"])
        counts: dict[str, list[int]] = {}
        for app, phase, count in self.catalog.restore_run_totals():
            if phase in _FINISHED_RESTORES:
                entry = counts.setdefault(app, [0, 0])
                entry[0] += count
                entry[1] += count if phase == RestorePhase.SUCCEEDED.value else 0
        for app, (finished, succeeded) in sorted(counts.items()):
            total.add_metric([app], finished)
            success.add_metric([app], succeeded)
        yield from (total, success)

    def _drills(self) -> Iterator[Metric]:
        verified = GaugeMetricFamily(
            "last_verified_restore_timestamp_seconds",
            "Start time of the latest drill that passed: when the app last provably came back",
            labels=_LABELS,
        )
        duration = GaugeMetricFamily(
            "drill_duration_seconds",
            "The latest passed drill's time from start to every check passed (RTO)",
            labels=_LABELS,
        )
        seen: set[str] = set()
        for drill in self.catalog.drills(limit=10_000):  # newest first
            if drill.result != DrillResult.PASSED.value or drill.policy in seen:
                continue
            seen.add(drill.policy)
            verified.add_metric([drill.app, drill.policy], drill.started_at.timestamp())
            duration.add_metric([drill.app, drill.policy], drill.duration_seconds or 0.0)
        yield from (verified, duration)


def exposition(collector: LifeboatCollector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    registry.register(ProcessCollector(registry=None))
    return generate_latest(registry)
