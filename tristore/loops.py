"""The running event loop, asked for without a system call.

On Python 3.11, ``asyncio.get_running_loop()`` checks that the process has not
forked since the loop started: a ``getpid()`` system call each time (glibc no
longer caches the pid), and ``asyncio.gather``, ``ensure_future``,
``as_completed``, ``Queue`` and ``timeout`` all ask for it. On a node under
write load that was about a twelfth of its event loop's CPU (py-spy
--native, PUT at c64). Objects of the hot path that live in one loop keep it
(:class:`LoopBound`), and :func:`gather` creates its tasks on a loop given.
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
