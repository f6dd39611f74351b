"""upload_file's parallel part loop without a cluster: after a failure no part
starts, the parts under way finish (a resume need not send them again), and a
changed file wins over any other failure (it is what aborts the upload)."""

from __future__ import annotations

import asyncio

import pytest

from tristore.client import files
from tristore.client.parts import PartSpec
from tristore.errors import FileChanged, SlowDown

pytestmark = pytest.mark.unit

SPECS = [PartSpec(n, (n - 1) * 10, 10) for n in range(1, 9)]


def run_each(parallel: int, fail: dict[int, Exception]) -> tuple[list[int], list[int], Exception]:
    started: list[int] = []
    finished: list[int] = []

    async def send(spec: PartSpec) -> None:
        started.append(spec.number)
        await asyncio.sleep(0.01 * spec.number)
        if spec.number in fail:
            raise fail[spec.number]
        finished.append(spec.number)

    with pytest.raises(Exception) as info:
        asyncio.run(files._each(parallel, send, SPECS))
    return started, finished, info.value  # type: ignore[return-value]


def test_a_failure_starts_no_more_parts_but_lets_those_under_way_finish() -> None:
    started, finished, err = run_each(3, {2: SlowDown("busy")})
    # Parts 1..3 start; 1 finishes and 4 starts; 2 fails; 3 and 4 still finish.
    assert started == [1, 2, 3, 4]
    assert sorted(finished) == [1, 3, 4]
    assert isinstance(err, SlowDown)


def test_a_changed_file_is_the_failure_raised() -> None:
    _, _, err = run_each(2, {1: SlowDown("busy"), 2: FileChanged("f changed")})
    assert isinstance(err, FileChanged)


def test_every_part_is_sent_once_when_nothing_fails() -> None:
    sent: list[int] = []

    async def send(spec: PartSpec) -> None:
        await asyncio.sleep(0)
        sent.append(spec.number)

    asyncio.run(files._each(4, send, SPECS))
    assert sorted(sent) == [s.number for s in SPECS]
    asyncio.run(files._each(4, send, []))  # nothing to send: no worker, no error
