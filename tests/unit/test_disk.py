"""The free-space watch of a node (node/disk.py): refusal below the reserve,
hysteresis on the way back, and a store that failed for lack of space staying
refused until space is back, when the node restarts itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from pathlib import Path

import pytest

from node.disk import DiskWatch, is_out_of_space
from tristore.errors import StorageFull

pytestmark = pytest.mark.unit


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_below_the_reserve_new_data_is_refused_naming_the_node(tmp_path: Path) -> None:
    watch = DiskWatch("b1", tmp_path, reserve_bytes=_free(tmp_path) * 4, resume_bytes=0)
    assert watch.check()
    with pytest.raises(StorageFull, match="node b1: its disk") as info:
        watch.refuse_if_full("new writes")
    assert info.value.retriable
    assert "disk full" in watch.health()


def test_writes_come_back_only_past_the_resume_margin(tmp_path: Path) -> None:
    free = _free(tmp_path)
    watch = DiskWatch("b1", tmp_path, reserve_bytes=free * 4, resume_bytes=0)
    assert watch.check()
    watch.reserve_bytes, watch.resume_bytes = free // 2, free * 4  # space freed, not enough
    assert watch.check()
    watch.resume_bytes = 0
    assert not watch.check()
    watch.refuse_if_full("new writes")  # no error
    assert watch.health() == ""


def test_a_store_that_ran_out_of_space_refuses_until_space_is_back_then_restarts(
    tmp_path: Path,
) -> None:
    free = _free(tmp_path)
    watch = DiskWatch("b1", tmp_path, reserve_bytes=0, resume_bytes=free * 4)
    restarts: list[bool] = []
    watch.on_space_back = lambda: restarts.append(True)
    assert not watch.check()
    other = RuntimeError("IO error: something else")
    assert watch.write_failed(other) is other
    assert not watch.full
    err = RuntimeError("IO error: No space left on device: While appending to file: 000004.log")
    assert is_out_of_space(err)
    told = watch.write_failed(err)
    assert isinstance(told, StorageFull) and told.retriable and "node b1" in str(told)
    assert watch.check()  # the store is stuck: space alone does not make it write
    assert not restarts  # not enough free yet (the resume margin)
    with pytest.raises(StorageFull, match="restarts by itself"):
        watch.refuse_if_full("new writes")
    assert "restarts by itself" in watch.health()
    watch.resume_bytes = 0  # space is back
    assert watch.check()  # still refusing: only the restart opens the store again
    assert restarts == [True]
    assert watch.check() and restarts == [True]  # asked once


def test_an_idle_watch_looks_again_at_once_when_the_store_writes(tmp_path: Path) -> None:
    watch = DiskWatch("b1", tmp_path, reserve_bytes=0, resume_bytes=0)
    checks = 0
    check = watch.check

    def counted() -> bool:
        nonlocal checks
        checks += 1
        return check()

    watch.check = counted  # type: ignore[method-assign]

    async def looked(n: int) -> None:
        """Until the watch has looked ``n`` times: at once, not after the idle interval."""
        for _ in range(500):
            if checks >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{checks} looks, not {n}")

    async def scenario() -> None:
        task = asyncio.create_task(watch.run_forever(0.01, 60.0))
        await looked(1)
        await asyncio.sleep(0.2)  # twenty busy intervals
        assert checks == 1  # nothing written: the next look is a minute away
        writer = threading.Thread(target=watch.note_write)  # as the store's threads do
        writer.start()
        writer.join()
        await looked(2)
        watch.note_write()
        await looked(3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
