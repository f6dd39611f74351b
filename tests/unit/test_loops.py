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
