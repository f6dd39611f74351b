"""node.wal.WalSync on a real RocksDB: after a write without sync, it
fdatasyncs the log the write went to, follows RocksDB to a new log after a
memtable switch (and syncs the directory for its name). os.fdatasync releases
the GIL, which rocksdict's own synced write does not."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rocksdict

from node import wal
from node.replica_store import ReplicaStore
from tristore.config import NodeSection
from tristore.model import Change, ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


def _open(path: Path) -> rocksdict.Rdict:
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    return rocksdict.Rdict(str(path), opts)


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths wal.py fdatasyncs or fsyncs, in order (the real calls still run)."""
    seen: list[str] = []

    def record(real: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            seen.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        return call

    monkeypatch.setattr(wal.os, "fdatasync", record(os.fdatasync))
    monkeypatch.setattr(wal.os, "fsync", record(os.fsync))
    return seen


def _logs(path: Path) -> list[str]:
    return sorted(str(p) for p in path.glob("*.log"))


def _super_version(db: rocksdict.Rdict) -> Callable[[], int]:
    return lambda: int(db.property_int_value("rocksdb.current-super-version-number") or 0)


def test_lists_the_logs_again_only_after_a_switch(
    tmp_path: Path, synced: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the super-version number (as ReplicaStore gives it), syncs list
    the directory only when RocksDB may have started a new log, and still
    follow it there."""
    listed: list[str] = []
    list_logs = wal.WalSync._logs

    def counted(self: wal.WalSync) -> Any:
        listed.append(str(self._dir))
        return list_logs(self)

    monkeypatch.setattr(wal.WalSync, "_logs", counted)
    db = _open(tmp_path)
    nosync = rocksdict.WriteOptions()
    ws = wal.WalSync(tmp_path, generation=_super_version(db))
    try:
        for i in range(5):
            db.put(b"k%d" % i, b"v", nosync)
            ws.sync()
        first = _logs(tmp_path)
        assert listed == [str(tmp_path)]
        assert synced == [first[0], str(tmp_path), *[first[0]] * 4]

        db.flush()  # a new log, and a new super version
        db.put(b"after", b"v", nosync)
        synced.clear()
        ws.sync()
        newest = _logs(tmp_path)[-1]
        assert newest not in first
        assert len(listed) == 2
        assert synced[-2:] == [newest, str(tmp_path)]
        synced.clear()
        db.put(b"again", b"v", nosync)
        ws.sync()
        assert (len(listed), synced) == (2, [newest])
    finally:
        ws.close()
        db.close()


def test_syncs_the_current_log_and_follows_a_switch(tmp_path: Path, synced: list[str]) -> None:
    db = _open(tmp_path)
    nosync = rocksdict.WriteOptions()
    ws = wal.WalSync(tmp_path)
    try:
        db.put(b"a", b"1", nosync)
        ws.sync()
        first = _logs(tmp_path)
        assert len(first) == 1
        # The log, then the directory (the first time a log is seen).
        assert synced == [first[0], str(tmp_path)]

        synced.clear()
        db.put(b"b", b"2", nosync)
        ws.sync()
        assert synced == [first[0]], "the same log again, and no directory sync"

        # A flush switches RocksDB to a new log; a write after it lands there.
        db.flush()
        db.put(b"c", b"3", nosync)
        synced.clear()
        ws.sync()
        now = _logs(tmp_path)
        newest = now[-1]
        assert newest not in first
        # Every log from the one synced last up (the old one, if RocksDB has
        # not removed it yet), the new one, then the directory for its name.
        assert synced[-2:] == [newest, str(tmp_path)]
        assert set(synced[:-2]) <= set(first)

        synced.clear()
        db.put(b"d", b"4", nosync)
        ws.sync()
        assert synced == [newest], "older logs are not synced again"
    finally:
        ws.close()
        db.close()


def test_a_commit_survives_reopening(tmp_path: Path) -> None:
    """The store's group commit writes without RocksDB's sync and syncs the
    log itself: what it acknowledged is there after a reopen."""

    async def main() -> None:
        store = ReplicaStore(tmp_path, NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            for i in range(20):
                v = ObjectVersion("b", f"k{i}", Stamp(1_000 + i, 0, 1, 1), inline=b"x", size=1)
                await store.commit(Change.of(v))
        finally:
            store.close()
        again = ReplicaStore(tmp_path, NodeSection(), lambda: 2_000)
        again.start(asyncio.get_running_loop())
        try:
            for i in range(20):
                got = await again.read_meta("b", f"k{i}")
                assert got is not None and got.stamp == Stamp(1_000 + i, 0, 1, 1)
        finally:
            again.close()

    asyncio.run(main())


def test_unsafe_no_fsync_syncs_nothing(tmp_path: Path, synced: list[str]) -> None:
    """``[node] unsafe_no_fsync``: the store's commits reach the log and are
    never synced (what tests/robustness/test_power_loss.py must catch)."""

    async def main() -> None:
        store = ReplicaStore(tmp_path, NodeSection(unsafe_no_fsync=True), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            synced.clear()  # the new store's own first record is synced by RocksDB
            v = ObjectVersion("b", "k", Stamp(1_000, 0, 1, 1), inline=b"x", size=1)
            await store.commit(Change.of(v))
            assert await store.read_meta("b", "k") is not None
        finally:
            store.close()

    asyncio.run(main())
    assert synced == []
