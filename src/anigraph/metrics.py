"""Prometheus metrics: API requests by action and code, task outcomes and durations, queue depth."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.api_requests = Counter(
            "anigraph_api_requests",
            "API requests by action and result code (empty code = success).",
            ["action", "code"],
            registry=self.registry,
        )
        self.subtasks = Counter(
            "anigraph_subtasks",
            "Finished animated-graphics subtasks by outcome and ErrCodeExt.",
            ["status", "err_code_ext"],
            registry=self.registry,
        )
        self.subtask_seconds = Histogram(
            "anigraph_subtask_seconds",
            "Wall time of one animated-graphics subtask.",
            buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
            registry=self.registry,
        )
        self.task_retries = Counter(
            "anigraph_task_retries",
            "Subtask attempts that will be retried.",
            registry=self.registry,
        )
        self.lease_reclaims = Counter(
            "anigraph_lease_reclaims",
            "Tasks claimed again after their lease expired.",
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "anigraph_queue_depth", "Tasks by status.", ["status"], registry=self.registry
        )

    def watch_queue(self, counts: Callable[[], dict[str, int]]) -> None:
        """Read the task counts at scrape time: the database is the truth, not a counter."""

        def reader(status: str) -> Callable[[], float]:
            return lambda: float(counts().get(status, 0))

        for status in ("WAITING", "PROCESSING"):
            self.queue_depth.labels(status).set_function(reader(status))
