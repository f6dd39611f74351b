"""A deterministic asyncio event loop: virtual time, nothing runs on a thread.

:class:`SimLoop` is asyncio's own selector loop (callbacks in FIFO order, as
asyncio and uvloop promise) with three changes:

- ``time()`` is virtual. The selector never waits: when nothing is ready, the
  clock jumps to the next timer. A run of minutes of virtual time takes what
  its callbacks cost. Nothing ready and no timer means every task waits for
  something that can never happen: :class:`Deadlock`.
- ``run_in_executor`` runs the function at once, on the loop's thread, and
  answers after a delay drawn from the simulation's random stream (what a
  RocksDB read on the node's thread pool takes, in effect).
- Every task belongs to the simulated process whose code created it (the
  :data:`OWNER` context variable, inherited by every task a task creates), so
  a crash cancels exactly that process's tasks; a task a dead process tries
  to create is cancelled at birth.

Everything that varies between runs comes from one ``random.Random``: the
order events happen in is a function of the seed alone.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import selectors
from collections import defaultdict
from collections.abc import Callable, Coroutine
from typing import Any

#: The simulated process whose code runs ("" for the simulation itself).
OWNER: contextvars.ContextVar[str] = contextvars.ContextVar("sim_owner", default="")


class Deadlock(RuntimeError):
    """Nothing is ready and no timer is set: every task waits forever."""


class _NoWaitSelector(selectors.BaseSelector):
    """Registers file objects (the loop's self-pipe) and never waits on them:
    a select of ``timeout`` moves the virtual clock to the next timer."""

    def __init__(self) -> None:
        self.loop: SimLoop | None = None
        self._map: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, self._fd(fileobj), events, data)
        self._map[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._map.pop(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self._map.pop(fileobj, None)
        return self.register(fileobj, events, data)

    @staticmethod
    def _fd(fileobj: Any) -> int:
        return fileobj if isinstance(fileobj, int) else fileobj.fileno()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        if timeout is None:
            raise Deadlock(f"at t={loop.time():.6f} every task waits and no timer is set")
        if timeout > 0:
            scheduled = loop._scheduled  # type: ignore[attr-defined]
            loop.now = max(loop.now, scheduled[0]._when if scheduled else loop.now + timeout)
        return []

    def get_map(self) -> Any:
        return self._map

    def close(self) -> None:
        self._map.clear()


class SimLoop(asyncio.SelectorEventLoop):
    def __init__(self, rng: random.Random, executor_delay: Callable[[], float]) -> None:
        selector = _NoWaitSelector()
        #: Virtual seconds since the start of the run.
        self.now = 0.0
        self.rng = rng
        self._executor_delay = executor_delay
        super().__init__(selector)
        selector.loop = self
        #: Live tasks by owning process.
        self.owned: defaultdict[str, set[asyncio.Task[Any]]] = defaultdict(set)
        #: Processes that crashed (their new tasks are cancelled at birth).
        self.dead: set[str] = set()
        self.set_task_factory(self._new_task)  # type: ignore[arg-type]

    def time(self) -> float:
        return self.now

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        # Nothing runs on another thread here; no self-pipe wakeup needed.
        return self.call_soon(callback, *args, context=context)

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> Any:
        fut: asyncio.Future[Any] = self.create_future()
        try:
            ok, value = True, func(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            ok, value = False, exc

        def done() -> None:
            if fut.cancelled():
                return
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

        self.call_later(self._executor_delay(), done)
        return fut

    def _new_task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, context=context)
        owner = context.get(OWNER, "") if context is not None else OWNER.get()
        if owner:
            if owner in self.dead:
                task.cancel()
            else:
                tasks = self.owned[owner]
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        return task

    def kill(self, owner: str) -> int:
        """Cancel every task of ``owner`` (a crash); returns how many."""
        self.dead.add(owner)
        tasks = self.owned.pop(owner, set())
        for t in sorted(tasks, key=_task_order):
            t.cancel()
        return len(tasks)

    def revive(self, owner: str) -> None:
        self.dead.discard(owner)

    def pending_timers(self) -> int:
        handles: list[Any] = self._scheduled  # type: ignore[attr-defined]
        return sum(1 for h in handles if not h._cancelled)


def _task_order(t: asyncio.Task[Any]) -> str:
    # Task names ("Task-N") follow creation order: a deterministic order to
    # cancel in (a set's order is not).
    name = t.get_name()
    return f"{len(name):04d}{name}"
