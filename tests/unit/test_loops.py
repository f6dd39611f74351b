"""tristore/loops.py: the running loop kept per object, and gather on a loop given."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from tristore import loops

pytestmark = pytest.mark.unit


def test_an_object_used_in_loops_run_in_turn_gets_the_running_one() -> None:
    bound = loops.LoopBound()

    async def which() -> asyncio.AbstractEventLoop:
        assert bound.loop is asyncio.get_running_loop()
        return bound.loop

    first = uvloop.run(which())
    second = asyncio.run(which())
    assert first is not second


def test_gather_runs_its_coroutines_on_the_loop_and_keeps_their_order() -> None:
    async def value(v: int, delay: float) -> int:
        await asyncio.sleep(delay)
        return v

    async def fail() -> int:
        raise ValueError("no")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert await loops.gather(loop, value(1, 0.02), value(2, 0)) == [1, 2]
        got = await loops.gather(loop, value(1, 0), fail(), return_exceptions=True)
        assert got[0] == 1 and isinstance(got[1], ValueError)
        with pytest.raises(ValueError, match="no"):
            await loops.gather(loop, value(1, 0), fail())

    uvloop.run(main())


def test_timeout_behaves_as_asyncio_timeout() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Over its delay: TimeoutError, and the task is not left cancelled.
        with pytest.raises(TimeoutError):
            async with loops.Timeout(loop, 0.01):
                await asyncio.sleep(5)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        # Within it, or with no delay: the block's own result and errors.
        async with loops.Timeout(loop, 5):
            await asyncio.sleep(0)
        async with loops.Timeout(loop, None):
            await asyncio.sleep(0.01)
        with pytest.raises(KeyError):
            async with loops.Timeout(loop, 5):
                raise KeyError("k")
        # The inner of two expires first: only it turns into TimeoutError.
        async with loops.Timeout(loop, 5):
            with pytest.raises(TimeoutError):
                async with loops.Timeout(loop, 0.01):
                    await asyncio.sleep(5)

    uvloop.run(main())


def test_a_task_cancelled_from_outside_stays_cancelled() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def inner() -> None:
            async with loops.Timeout(loop, 5):
                await asyncio.sleep(5)

        task = loop.create_task(inner())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    uvloop.run(main())
