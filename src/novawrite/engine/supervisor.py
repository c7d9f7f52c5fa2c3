"""The supervisor: claims pending tasks into a bounded set of runners and sees each to its end.

One per process, started and stopped by the app's lifespan. The dispatcher sleeps
until a submit wakes it (or the periodic sweep for expired leases comes due), then
fills every free slot (work-conserving: a lone user may take them all): when users
compete, the user served longest ago goes first (see ``_pick``), oldest task first
within a user, and no user over ``max_running_per_user`` when the operator set one.

A runner is an asyncio task named after its task. Cancelling it stops the
provider call (the HTTP stream closes with the task). Whatever ends a runner,
its final status is written under ``asyncio.shield``: cancelled after a user's
cancel, pending again after a shutdown, failed on an error.

A runner holds its task by a lease (``lease_seconds``), renewed by each event it
stores and by the lease keeper for quiet ones. Every write of a running task is
guarded by its owner and seq, so a process whose task was taken over can write
nothing more for it; the lease keeper also stops such a runner's work at once
(``LEASE_LOST``): when a renewal finds the task no longer this process's (paused
past its lease, it was taken over meanwhile), and when its lease has run out by
this process's clock with nothing confirming it (cut off from the database: a
survivor may take it over at any moment). A runner stopped so writes nothing:
the task's new owner, or the sweep once its lease is past, carries it on from
what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from novawrite.db.engine import Database
from novawrite.db.models import TaskStatus, utcnow
from novawrite.engine.bus import EventBus
from novawrite.engine.children import StoreChildren
from novawrite.engine.events import EventKind, TaskEvent
from novawrite.engine.notify import PgListener
from novawrite.engine.progress import TaskProgress
from novawrite.engine.snapshot import load_novel_view
from novawrite.engine.store import Claimed, DispatchView, LeaseLost, TaskStore
from novawrite.generators.base import (
    GenerationContext,
    InvalidModelOutput,
    NovelGone,
    QuotaExhausted,
    RetryPolicy,
    TaskStopped,
)
from novawrite.generators.kind import TaskKind
from novawrite.metrics import Metrics
from novawrite.providers.base import Provider, ProviderError
from novawrite.settings import Settings

log = logging.getLogger("novawrite.engine")

SHUTDOWN = "shutdown"
USER_CANCEL = "cancel"
LEASE_LOST = "lease lost"

#: How long the dispatcher keeps its read of the queue at most (``Supervisor._fill_slots``).
VIEW_SECONDS = 1.0
#: How soon a dispatcher held back by NOVAWRITE_MAX_CONCURRENCY_GLOBAL looks again.
CAPPED_RETRY_SECONDS = 0.5
DONE_MESSAGE = {"zh": "已完成", "en": "Done"}
CANCELLED_MESSAGE = {"zh": "已取消", "en": "Cancelled"}


def lease_clock() -> Callable[[], float]:
    """Seconds that go on while the machine sleeps (Linux's CLOCK_BOOTTIME; elsewhere time.monotonic):
    a lease runs out while a laptop is suspended, and another process may take the task over meanwhile."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    return functools.partial(time.clock_gettime, boottime)


def quota_message(language: str, resume_at: datetime) -> str:
    """The message of a task waiting for its provider's quota (the time in UTC)."""
    when = resume_at.strftime("%Y-%m-%d %H:%M UTC")
    if language == "zh":
        return f"模型配额已用完，将于 {when} 继续"
    return f"The model's quota is used up; resumes at {when}"


@dataclass
class Runner:
    claimed: Claimed
    task: asyncio.Task[None]
    #: When the lease was last confirmed by the claim or a renewal (the supervisor's ``monotonic``);
    #: the progress reporter's ``confirmed`` counts too (each event write renews the lease).
    confirmed: float
    started: float = field(default_factory=time.monotonic)
    stop_reason: str | None = None
    progress: TaskProgress | None = None
    #: Inside the kind's ``generate``: the only time the lease keeper stops it (its end writes are its own).
    generating: bool = False
    #: The ``lease_confirmed`` at the tick that found the lease running out (``Supervisor._check_leases``).
    lease_warned: float | None = None

    def lease_confirmed(self) -> float:
        return self.confirmed if self.progress is None else max(self.confirmed, self.progress.confirmed)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: EventBus,
        provider: Provider,
        kinds: Mapping[str, TaskKind],
        *,
        retry: RetryPolicy | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.store = TaskStore(db, bus, origin=self.owner, lease_seconds=settings.lease_seconds)
        self.db = db
        self.bus = bus
        self.provider = provider
        self.kinds = kinds
        self.retry = retry or RetryPolicy(max_retries=settings.provider_max_retries)
        self.runners: dict[str, Runner] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._busy = asyncio.Event()
        self._stopping = False
        self._served: dict[int, int] = {}
        self._turn = itertools.count()
        self._background: set[asyncio.Task[None]] = set()
        self.completed = 0
        self.listener: PgListener | None = None
        #: The clock quota waits are measured on (tests set their own).
        self.clock: Callable[[], datetime] = utcnow
        #: The clock leases are counted on, here and by each runner's progress reporter (tests move it on).
        self.monotonic: Callable[[], float] = lease_clock()
        #: When the dispatcher must look again without being woken (a quota's end), or None.
        self._due: datetime | None = None
        #: The dispatcher's last read of the queue (None: read it again) and when it was read (monotonic).
        self._view: DispatchView | None = None
        self._view_read = 0.0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if not self.db.is_sqlite:
            self.listener = PgListener(self.db.url, self.store, self.wake)
            self.listener.start()
        await self._sweep()
        for coro, name in ((self._dispatch(), "dispatcher"), (self._maintain(), "lease keeper")):
            task = asyncio.create_task(coro, name=name)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def wake(self, user_id: int | None = None) -> None:
        """Look at the queue: ``user_id`` has a new pending task (None: anything may have changed).

        A user the dispatcher already sees waiting needs no new read: the claim takes that
        user's oldest task whichever it is. Anyone else, or anything else, and it reads again.
        """
        if user_id is None or self._view is None or not self._view.shows(user_id):
            self._view = None
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, give running tasks back to the queue, and return within a bounded time."""
        self._stopping = True
        for task in list(self._background):
            task.cancel()
        for runner in list(self.runners.values()):
            runner.stop_reason = runner.stop_reason or SHUTDOWN
            runner.task.cancel()
        pending = [r.task for r in self.runners.values()] + list(self._background)
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=self.settings.shutdown_grace_seconds)
            for task in stuck:
                log.warning("still running at shutdown: %s", task.get_name())
        await self.store.drained()
        if self.listener is not None:
            await self.listener.stop()

    async def wait_idle(self, timeout: float) -> None:
        """Wait until nothing runs (tests and benchmarks)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    # --- cancel ------------------------------------------------------------------------

    def cancel_local(self, task_id: str) -> bool:
        """Cancel a task this process runs; False when it runs elsewhere (or not at all)."""
        runner = self.runners.get(task_id)
        if runner is None or runner.stop_reason == LEASE_LOST:  # its new owner sees the cancel flag
            return False
        if runner.stop_reason is None:  # once: a second cancel would interrupt the first one's last writes
            runner.stop_reason = USER_CANCEL
            runner.task.cancel()
        return True

    async def wait_finished(self, task_id: str, timeout: float) -> None:
        runner = self.runners.get(task_id)
        if runner is not None:
            await asyncio.wait({runner.task}, timeout=timeout)

    # --- dispatching -------------------------------------------------------------------

    async def _dispatch(self) -> None:
        # Expired leases are looked for every sweep_seconds on the lease clock however often the
        # dispatcher is woken: in a busy cluster, wakes never stop, and a dead process's tasks
        # must still be taken over.
        next_sweep = self.monotonic() + self.settings.sweep_seconds
        while not self._stopping:
            self._wake.clear()
            if self.monotonic() >= next_sweep:
                await self._sweep()
                next_sweep = self.monotonic() + self.settings.sweep_seconds
            try:
                await self._fill_slots()
            except Exception:
                log.exception("dispatcher failed to claim; retrying shortly")
                await asyncio.sleep(1)
                continue
            timeout = next_sweep - self.monotonic()
            if self._due is not None:  # a quota ends sooner than the next sweep: a timer, not a poll
                timeout = min(timeout, (self._due - self.clock()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, timeout))

    async def _fill_slots(self) -> None:
        """Claim pending tasks for the free slots, fairly, unless the provider is out of quota.

        A read (``dispatch_view``) gives the waiting users with their oldest task, and the
        provider's not-before (set by any process) with the earliest ``resume_at``, which set
        ``_due``, when to look again. The demo provider has no quota. The read is kept for the
        next slots while it accounts for the queue: this process's own claims and ends update its
        running counts, a new task of a user it shows changes nothing a claim needs (the claim
        takes the user's oldest), and it is read again when anything else happened (``wake``),
        when a claim came back short (a user's queue ran out), or after ``VIEW_SECONDS`` (what
        other processes run).
        """
        provider = "" if self.provider.is_demo else self.provider.name
        while not self._stopping:
            free = self.settings.max_concurrency - self.slots_used()
            if free <= 0:
                return  # a runner's end wakes the dispatcher again
            now = self.clock()
            view = self._view
            if view is None or time.monotonic() - self._view_read > VIEW_SECONDS:
                self._view = view = await self.store.dispatch_view(now, provider)
                self._view_read = time.monotonic()
                later = [t for t in (view.not_before, view.resume_at) if t is not None and t > now]
                self._due = min(later) if later else None
            if view.not_before is not None and view.not_before > now:
                return
            picked = self._pick(view.heads, view.running, free)  # one user at most once: a round per slot
            if not picked:
                return
            users = [user for user, _ in picked]
            # in the order picked (their running events are published so too)
            cap = self.settings.max_concurrency_global
            asked = self.monotonic()  # the leases run from no earlier than this
            claimed = await self.store.claim_oldest(users, self.owner, self.settings.lease_seconds, now, cap=cap)
            for task in claimed:
                self._served[task.user_id] = next(self._turn)  # in the order picked: ties stay fair next time
                view.running[task.user_id] = view.running.get(task.user_id, 0) + 1
                self._start(task, asked)
            if len(claimed) < len(users):
                if self._view is view:
                    self._view = None  # someone's queue ran out
                if cap is not None:
                    # Or the cluster is at its cap: a slot freed in another process wakes no one here.
                    again = now + timedelta(seconds=CAPPED_RETRY_SECONDS)
                    self._due = again if self._due is None else min(self._due, again)
                    return

    def slots_used(self) -> int:
        """Generation slots taken: a batch waiting for its children holds none (``TaskKind.batch``)."""
        return sum(1 for r in self.runners.values() if not self._is_batch(r.claimed.task_type))

    def _is_batch(self, task_type: str) -> bool:
        kind = self.kinds.get(task_type)
        return kind is not None and kind.batch

    def _pick(self, heads: list[tuple[int, int]], running: dict[int, int], free: int) -> list[tuple[int, int]]:
        """Up to ``free`` of ``heads`` ((user, pk), oldest first within a user), round-robin over users.

        Users go in the order this process last served them: one it has never served
        first (among those, the one with the fewest tasks running anywhere, then the
        one whose task has waited longest), then the one served longest ago. No cap
        unless ``max_running_per_user`` is set: a lone user takes every free slot.
        """
        cap = self.settings.max_running_per_user
        queues: dict[int, list[int]] = {}
        for user, pk in heads:
            queues.setdefault(user, []).append(pk)
        order = sorted(queues, key=lambda u: (self._served.get(u, -1), running.get(u, 0), queues[u][0]))
        taken: dict[int, int] = {}
        picked: list[tuple[int, int]] = []
        while len(picked) < free:
            progressed = False
            for user in order:
                if len(picked) >= free:
                    break
                if not queues[user] or (cap is not None and running.get(user, 0) + taken.get(user, 0) >= cap):
                    continue
                picked.append((user, queues[user].pop(0)))
                taken[user] = taken.get(user, 0) + 1
                progressed = True
            if not progressed:
                break
        return picked

    def _start(self, claimed: Claimed, confirmed: float) -> None:
        self._idle.clear()
        self._busy.set()
        task = asyncio.create_task(self._run(claimed), name=f"task {claimed.id}")
        self.runners[claimed.id] = Runner(claimed, task, confirmed)
        log.info(
            "task=%s type=%s user=%s status=running attempt=%s",
            claimed.id,
            claimed.task_type,
            claimed.user_id,
            claimed.attempt,
        )

        def done(_: asyncio.Task[None]) -> None:
            self.runners.pop(claimed.id, None)
            if not self.runners:
                self._idle.set()
                self._busy.clear()
            if (view := self._view) is not None and view.running.get(claimed.user_id):
                view.running[claimed.user_id] -= 1
            self._wake.set()  # a free slot: the queue as the view has it

        task.add_done_callback(done)

    # --- leases and recovery ------------------------------------------------------------

    async def _maintain(self) -> None:
        """While tasks run, every tick (a second, or a third of the lease if shorter): stop the runners whose
        lease is out (``_check_leases``, which never waits on the database), then start the database's part
        (``_upkeep``) unless the last one is still on its way and younger than a third of the lease."""
        renew_every = self.settings.lease_seconds / 3
        tick = min(1.0, renew_every)
        upkeep: asyncio.Task[None] | None = None
        upkeep_started = 0.0
        while True:
            await self._busy.wait()  # idle: no timer at all
            await asyncio.sleep(tick)
            if not self.runners:
                continue
            self._check_leases(tick)
            if upkeep is None or upkeep.done() or self.monotonic() - upkeep_started >= renew_every:
                upkeep = asyncio.create_task(self._upkeep(renew_every), name="lease upkeep")
                upkeep_started = self.monotonic()
                self._background.add(upkeep)
                upkeep.add_done_callback(self._background.discard)

    def _check_leases(self, tick: float) -> None:
        """Stop each runner whose lease runs out before the next tick by this process's clock, as it did at
        the last tick, with nothing confirming it since (a renewal was started then): another process may
        take its task over from then on."""
        now = self.monotonic()
        for runner in list(self.runners.values()):
            confirmed = runner.lease_confirmed()
            if confirmed + self.settings.lease_seconds - tick > now:
                continue
            if runner.lease_warned == confirmed:
                self._lose(runner, f"its lease ran out ({self.settings.lease_seconds:g} s) with nothing to renew it")
            else:
                runner.lease_warned = confirmed

    async def _upkeep(self, renew_every: float) -> None:
        """Renew the leases of the runners nothing confirmed for a third of the lease (each event write renews
        its own), stopping those whose task is not this process's any more; pick up cancels made elsewhere.
        Each read gives up after a third of the lease: a database that does not answer holds up nothing."""
        now = self.monotonic()
        runners = dict(self.runners)
        quiet = [task_id for task_id, runner in runners.items() if now - runner.lease_confirmed() >= renew_every]
        if quiet:
            try:
                async with asyncio.timeout(renew_every):
                    renewed = await self.store.renew(self.owner, self.settings.lease_seconds, quiet)
            except Exception:
                log.warning("could not renew the leases of %d running tasks", len(quiet), exc_info=True)
            else:
                for task_id in quiet:
                    runner = runners[task_id]
                    if self.runners.get(task_id) is not runner:
                        continue  # ended meanwhile (this process may even have claimed the task again)
                    if task_id in renewed:
                        runner.confirmed = max(runner.confirmed, now)
                    else:
                        self._lose(runner, "another process runs it now")
        try:
            async with asyncio.timeout(renew_every):
                cancelled = await self.store.cancel_requested(list(self.runners))
        except Exception:
            log.warning("could not read the cancels made elsewhere", exc_info=True)
            return
        for task_id in cancelled:
            self.cancel_local(task_id)

    def _lose(self, runner: Runner, why: str) -> None:
        if not runner.generating or runner.stop_reason is not None:
            return  # not started yet, or already ending: its end writes are guarded like any other
        log.warning("task=%s stopped: %s; this process writes nothing more for it", runner.claimed.id, why)
        runner.stop_reason = LEASE_LOST
        runner.task.cancel()

    async def _sweep(self) -> None:
        try:
            events = await self.store.requeue_expired(self.settings.max_attempts, "Interrupted (its server stopped)")
        except Exception:
            log.exception("recovery sweep failed")
            return
        for event in events:  # published by the store
            log.info("task=%s recovered: %s", event.task_id, event.kind)
        if events:
            self.wake()

    async def _hold_for_quota(self) -> None:
        """Before each model call of a running task: while the provider's quota is used up (met by any
        task, in any process), raise the 429 the call would meet instead of making it. A wait past
        the policy's in-task limit sends the task back to the queue until then, as a real one would."""
        try:
            not_before = await self.store.provider_not_before(self.provider.name)
        except Exception:  # the call goes ahead: the provider answers for its quota itself
            log.warning("could not read %s's quota; calling it", self.provider.name, exc_info=True)
            return
        if not_before is None:
            return
        wait = (not_before - self.clock()).total_seconds()
        if wait > 0:
            raise ProviderError(
                f"The model's quota is used up until {not_before:%Y-%m-%d %H:%M} UTC",
                transient=True,
                retry_after=wait,
                status=429,
                rate_limited=True,
            )

    # --- running one task ---------------------------------------------------------------

    async def _run(self, claimed: Claimed) -> None:
        kind = self.kinds.get(claimed.task_type)
        language = "en"
        ctx: GenerationContext | None = None
        children = None
        if kind is not None and kind.batch:
            children = StoreChildren(
                self.store, self.bus, claimed, owner=self.owner, wake=self.wake, cancel_local=self.cancel_local
            )

        def current_usage() -> dict[str, int] | None:
            # null until the provider reported tokens (the demo provider may never)
            if ctx is None or not (ctx.usage.prompt_tokens or ctx.usage.output_tokens):
                return None
            return ctx.usage.as_dict()

        progress = TaskProgress(
            self.store,
            claimed,
            self.owner,
            usage=current_usage,
            flush_seconds=self.settings.chunk_flush_seconds,
            flush_bytes=self.settings.chunk_flush_bytes,
            clock=self.monotonic,
        )
        runner = self.runners.get(claimed.id)
        if runner is not None:
            runner.progress = progress
        try:
            if kind is None:
                raise RuntimeError(f"unknown task type {claimed.task_type!r}")
            params = kind.params.model_validate({**claimed.params, "novel_id": claimed.novel_id})
            chapter_id = kind.scope(params) if kind.per_chapter else None
            novel = await load_novel_view(self.db, claimed.novel_id, chapter_id, texts=kind.texts_of(params))
            language = novel.language

            ctx = GenerationContext(
                novel=novel,
                params=params,
                progress=progress,
                provider=self.provider,
                retry=self.retry,
                checkpoint=claimed.checkpoint,
                save_checkpoint=progress.save_checkpoint,
                resume_text=claimed.output if kind.streams_text else "",
                children=children,
                before_call=None if self.provider.is_demo else self._hold_for_quota,
            )
            if runner is not None:
                runner.generating = True
            try:
                result = await kind.generate(ctx)
            finally:
                if runner is not None:
                    runner.generating = False
            await progress.flush()
            await asyncio.shield(self._complete(claimed, kind, params, result, ctx, DONE_MESSAGE.get(language, "Done")))
        except asyncio.CancelledError:
            runner = self.runners.get(claimed.id)
            reason = runner.stop_reason if runner is not None else SHUTDOWN
            if reason == LEASE_LOST:
                raise  # no end to write: the task is not this process's any more (or soon will not be)
            if reason == USER_CANCEL and children is not None:
                await asyncio.shield(self._cancel_children(claimed, children))
            await asyncio.shield(self._settle_stopped(claimed, progress, reason or SHUTDOWN, language, current_usage()))
            raise
        except LeaseLost as exc:  # another process holds the task now: nothing more to write
            log.warning("task=%s abandoned: %s", claimed.id, exc)
        except NovelGone as exc:
            # A deleted novel took its tasks with it (the end's write finds no row); a deleted
            # chapter (one a batch was yet to write) leaves the task, which must not stay running.
            log.info("task=%s: %s", claimed.id, exc)
            await self._fail(
                claimed, progress, NovelGone.code, f"What this task writes was deleted: {exc}", current_usage()
            )
        except TaskStopped as exc:  # a batch stopped at a child that did not complete
            if exc.code is None:
                await self._settle_stopped(claimed, progress, USER_CANCEL, language, current_usage())
            else:
                await self._fail(claimed, progress, exc.code, exc.message, current_usage())
        except QuotaExhausted as exc:
            await self._wait_for_quota(claimed, progress, exc, language, current_usage())
        except ProviderError as exc:
            await self._fail(claimed, progress, exc.code, exc.message, current_usage())
        except InvalidModelOutput as exc:
            await self._fail(claimed, progress, InvalidModelOutput.code, str(exc), current_usage())
        except ValidationError as exc:
            await self._fail(claimed, progress, "internal_error", f"Stored parameters are invalid: {exc}", None)
        except Exception:
            log.exception("task=%s crashed", claimed.id)
            await self._fail(claimed, progress, "internal_error", "Internal error while generating", current_usage())
        finally:
            progress.close()

    async def _cancel_children(self, claimed: Claimed, children: StoreChildren) -> None:
        try:
            await children.cancel_current()
        except Exception:
            log.warning("task=%s could not cancel its child", claimed.id, exc_info=True)

    async def _complete(
        self, claimed: Claimed, kind: TaskKind, params: Any, result: Any, ctx: GenerationContext, message: str
    ) -> None:
        usage = ctx.usage.as_dict()  # zeros from a provider that reports none
        apply = None
        if (apply_result := kind.apply) is not None:

            async def apply(session: Any) -> None:
                await apply_result(session, claimed.novel_id, params, result)

        event = await self.store.complete(claimed, self.owner, message, result.model_dump(mode="json"), usage, apply)
        self.completed += 1
        self._published(event, claimed)

    async def _fail(self, claimed: Claimed, progress: TaskProgress, code: str, message: str, usage: Any) -> None:
        try:
            await progress.flush()
        except Exception:
            log.warning("task=%s could not store its last text", claimed.id, exc_info=True)
        event = await self.store.finish(
            claimed,
            self.owner,
            TaskStatus.FAILED,
            progress.progress,
            message,
            error={"code": code, "message": message},
            usage=usage,
        )
        self._published(event, claimed)

    async def _wait_for_quota(
        self, claimed: Claimed, progress: TaskProgress, exc: QuotaExhausted, language: str, usage: Any
    ) -> None:
        """Back to pending until the quota's end, slot freed, the provider's not-before recorded; or
        failed ``provider_rate_limited`` once the task would wait past ``quota_max_wait_seconds`` in total."""
        try:
            await progress.flush()  # the text so far: the next attempt continues after it
        except Exception:
            log.warning("task=%s could not store its last text", claimed.id, exc_info=True)
        resume_at = self.clock() + timedelta(seconds=exc.delay)
        provider = None if self.provider.is_demo else self.provider.name
        # Shielded: a cancel landing now must not roll the requeue back (the task would stay running
        # with no runner until its lease ran out); the requeue itself ends a task whose cancel is asked.
        event = await asyncio.shield(
            self.store.quota_requeue(
                claimed,
                self.owner,
                provider=provider,
                resume_at=resume_at,
                wait=exc.delay,
                max_wait=self.settings.quota_max_wait_seconds,
                message=quota_message(language, resume_at),
                give_up={"code": exc.error.code, "message": f"{exc.error.message} (waited for the quota too long)"},
                progress=progress.progress,
                usage=usage,
            )
        )
        self._published(event, claimed)
        self.wake()  # the provider's not-before, and the task pending again: read the queue again

    async def _settle_stopped(
        self, claimed: Claimed, progress: TaskProgress, reason: str, language: str, usage: Any
    ) -> None:
        try:
            await progress.flush()
        except Exception:
            log.warning("task=%s could not store its last text", claimed.id, exc_info=True)
        if reason == USER_CANCEL:
            event = await self.store.finish(
                claimed,
                self.owner,
                TaskStatus.CANCELLED,
                progress.progress,
                CANCELLED_MESSAGE.get(language, "Cancelled"),
                usage=usage,
            )
        else:
            event = await self.store.requeue_own(
                claimed, self.owner, self.settings.max_attempts, "Interrupted by a server shutdown"
            )
        self._published(event, claimed)

    def _published(self, event: TaskEvent | None, claimed: Claimed) -> None:
        """Count and log a runner's last event (the store published it when it committed)."""
        if event is None:
            return
        runner = self.runners.get(claimed.id)
        duration = time.monotonic() - runner.started if runner is not None else 0.0
        if self.metrics is not None:
            outcome = "requeued" if event.kind == EventKind.STATUS else event.kind
            self.metrics.task_finished(claimed.task_type, outcome, duration)
        log.info(
            "task=%s type=%s user=%s status=%s attempt=%s duration=%.2fs",
            claimed.id,
            claimed.task_type,
            claimed.user_id,
            event.kind,
            claimed.attempt,
            duration,
        )
