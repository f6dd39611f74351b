"""The running event loop, asked for without a system call.

On Python 3.11, ``asyncio.get_running_loop()`` checks that the process has not
forked since the loop started: a ``getpid()`` system call each time (glibc no
longer caches the pid), and ``asyncio.gather``, ``ensure_future``,
``as_completed``, ``Queue`` and ``timeout`` all ask for it. On a node under
write load that was about a twelfth of its event loop's CPU (py-spy
--native, PUT at c64). Objects of the hot path that live in one loop keep it
(:class:`LoopBound`), :func:`gather` creates its tasks on a loop given, and
:class:`Timeout` is ``asyncio.timeout`` on a loop given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class LoopBound:
    """Keeps the event loop it was first used in, while that loop runs (a
    test may run several loops in turn, one at a time)."""

    __slots__ = ("_bound",)

    def __init__(self) -> None:
        self._bound: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (called from inside it)."""
        loop = self._bound
        if loop is None or not loop.is_running():
            loop = self._bound = asyncio.get_running_loop()
        return loop


async def gather(
    loop: asyncio.AbstractEventLoop,
    *coros: Coroutine[Any, Any, Any],
    return_exceptions: bool = False,
) -> list[Any]:
    """``asyncio.gather`` of coroutines, their tasks created on ``loop``."""
    return await asyncio.gather(
        *(loop.create_task(c) for c in coros), return_exceptions=return_exceptions
    )


class Timeout:
    """``asyncio.timeout(delay)`` for code running on ``loop`` (a task of it),
    the same semantics without asking for the running loop (three ``getpid``
    calls for each use of the standard one): when ``delay`` passes, the task
    is cancelled and the cancellation leaves the block as TimeoutError, unless
    someone else cancelled the task too. ``delay`` None: no limit."""

    __slots__ = ("_cancelling", "_delay", "_expired", "_handle", "_loop", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float | None) -> None:
        self._loop = loop
        self._delay = delay
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self._expired = False

    async def __aenter__(self) -> Timeout:
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("Timeout should be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        if self._delay is not None:
            self._handle = self._loop.call_later(max(0.0, self._delay), self._on_timeout)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired:
            assert self._task is not None
            if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def _on_timeout(self) -> None:
        assert self._task is not None
        self._task.cancel()
        self._expired = True
        self._handle = None
