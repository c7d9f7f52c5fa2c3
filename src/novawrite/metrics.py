"""Prometheus metrics: what the engine does, served at ``GET /metrics``.

Each app has its own registry (tests run several apps in one process). Nothing
here sits on a hot path: the bus already counts what it publishes and drops and
who listens, the supervisor knows what runs, and the database knows the tasks by
status; those are read when Prometheus scrapes. What is counted as it happens
(task durations, provider calls and tokens) costs one histogram observation per
task or per model call.

Metric names (all ``novawrite_`` except prometheus-client's process metrics):

- ``tasks{status,kind}``: tasks in the database by status and task type
- ``queue_depth``: pending tasks in the database
- ``tasks_running``: tasks this process is running now
- ``task_duration_seconds{kind,outcome}``: claim to end of one attempt
  (outcome: completed, failed, cancelled, requeued)
- ``provider_call_seconds{kind,call}``: one model call, by the prompt's kind (outline_plan,
  outline_chapters, characters, chapter, ...); call: json or stream; each retry is a call
- ``provider_errors_total{kind,error}``: failed model calls (error: rate_limited,
  transient, permanent, timeout)
- ``tokens_total{kind,direction}``: tokens the provider reported (direction: prompt, output)
- ``stream_subscribers``: live SSE subscribers in this process
- ``events_published_total{kind}``: events handed to this process's bus
- ``bus_dropped_total``: subscribers dropped for falling behind
- ``db_write_transactions_total``: write transactions this process committed
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from pydantic import BaseModel

from novawrite.engine.bus import EventBus
from novawrite.providers.base import Completion, Prompt, Provider, ProviderError, Usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

TASK_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self.registry)
        self.task_duration = Histogram(
            "novawrite_task_duration_seconds",
            "One attempt of a task, from claim to its end",
            ["kind", "outcome"],
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self.provider_call = Histogram(
            "novawrite_provider_call_seconds",
            "One model call (a retry is another call)",
            ["kind", "call"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.provider_errors = PromCounter(
            "novawrite_provider_errors_total", "Failed model calls", ["kind", "error"], registry=self.registry
        )
        self.tokens = PromCounter(
            "novawrite_tokens_total", "Tokens the provider reported", ["kind", "direction"], registry=self.registry
        )
        self._live = _LiveCollector()
        self.registry.register(self._live)

    def watch(self, bus: EventBus, running: Callable[[], int], writes: Callable[[], int] = lambda: 0) -> None:
        """Read the bus, the supervisor and the database's write count at scrape time."""
        self._live.bus = bus
        self._live.running = running
        self._live.writes = writes

    def task_finished(self, kind: str, outcome: str, seconds: float) -> None:
        self.task_duration.labels(kind, outcome).observe(seconds)

    def render(self, task_counts: Iterable[tuple[str, str, int]]) -> bytes:
        """The exposition text, with the database's task counts (status, kind, n) read just before."""
        self._live.task_counts = list(task_counts)
        return generate_latest(self.registry)


class _LiveCollector:
    """Gauges and counters that already exist elsewhere, read when scraped."""

    def __init__(self) -> None:
        self.bus: EventBus | None = None
        self.running: Callable[[], int] = lambda: 0
        self.writes: Callable[[], int] = lambda: 0
        self.task_counts: list[tuple[str, str, int]] = []

    def describe(self) -> list[Metric]:
        return []  # collected fresh on every scrape; nothing to check at registration

    def collect(self) -> Iterable[Metric]:
        tasks = GaugeMetricFamily(
            "novawrite_tasks", "Tasks in the database by status and kind", labels=["status", "kind"]
        )
        pending = 0
        for status, kind, count in self.task_counts:
            tasks.add_metric([status, kind], count)
            pending += count if status == "pending" else 0
        yield tasks
        yield GaugeMetricFamily("novawrite_queue_depth", "Pending tasks in the database", value=pending)
        yield GaugeMetricFamily("novawrite_tasks_running", "Tasks this process is running", value=self.running())
        bus = self.bus
        yield GaugeMetricFamily(
            "novawrite_stream_subscribers", "Live SSE subscribers", value=bus.subscriber_count if bus else 0
        )
        published = CounterMetricFamily("novawrite_events_published", "Events handed to the bus", labels=["kind"])
        for kind, count in sorted((bus.published_by_kind if bus else {}).items()):
            published.add_metric([kind], count)
        yield published
        yield CounterMetricFamily(
            "novawrite_bus_dropped", "Subscribers dropped for falling behind", value=bus.dropped if bus else 0
        )
        yield CounterMetricFamily(
            "novawrite_db_write_transactions", "Write transactions this process committed", value=self.writes()
        )


class MeteredProvider:
    """A provider that times its calls and counts their errors and tokens."""

    def __init__(self, inner: Provider, metrics: Metrics) -> None:
        self.inner = inner
        self.name: str = getattr(inner, "name", type(inner).__name__)
        self.is_demo: bool = getattr(inner, "is_demo", False)
        self._metrics = metrics

    async def generate_json(self, prompt: Prompt, schema: type[BaseModel]) -> Completion:
        started = time.monotonic()
        try:
            completion = await self.inner.generate_json(prompt, schema)
        except BaseException as exc:
            self._failed(prompt.kind, exc)
            raise
        finally:
            self._metrics.provider_call.labels(prompt.kind, "json").observe(time.monotonic() - started)
        self._count(prompt.kind, completion.usage)
        return completion

    async def stream_text(self, prompt: Prompt) -> AsyncIterator[Completion]:
        started = time.monotonic()
        stream = self.inner.stream_text(prompt)
        try:
            async for piece in stream:
                self._count(prompt.kind, piece.usage)
                yield piece
        except BaseException as exc:
            self._failed(prompt.kind, exc)
            raise
        finally:
            await _aclose(stream)
            self._metrics.provider_call.labels(prompt.kind, "stream").observe(time.monotonic() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _count(self, kind: str, usage: Usage) -> None:
        if usage.prompt_tokens:
            self._metrics.tokens.labels(kind, "prompt").inc(usage.prompt_tokens)
        if usage.output_tokens:
            self._metrics.tokens.labels(kind, "output").inc(usage.output_tokens)

    def _failed(self, kind: str, exc: BaseException) -> None:
        if isinstance(exc, ProviderError):
            error = "rate_limited" if exc.rate_limited else "transient" if exc.transient else "permanent"
        elif isinstance(exc, TimeoutError):
            error = "timeout"
        else:
            return  # cancelled, or not the model's fault
        self._metrics.provider_errors.labels(kind, error).inc()


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
