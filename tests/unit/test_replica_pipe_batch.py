"""A peer's pipe batch on a replica (ReplicaServicer.answer) on a real
RocksDB: the unconditional commits go to the writer as one request, each
keeps its own outcome, and the answers come back in the batch's order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from node.replica_store import ReplicaStore, _Commit, _Commits
from node.servicer import ReplicaServicer
from tristore.config import NodeSection
from tristore.convert import change_to_pb
from tristore.errors import StorageFull
from tristore.model import Change, ObjectVersion
from tristore.pb import replica_pb2
from tristore.stamps import ZERO, Stamp

pytestmark = pytest.mark.unit

BUCKET = "bench"


def _version(key: str, ms: int, **kw: Any) -> ObjectVersion:
    return ObjectVersion(
        BUCKET, key, Stamp(ms, 0, 1, 1), inline=b"x" * 8, size=8, null_version=True, **kw
    )


def _commit(change: Change) -> replica_pb2.BatchOp:
    return replica_pb2.BatchOp(commit=change_to_pb(change))


def _start(tmp_path: Path) -> tuple[ReplicaStore, ReplicaServicer, list[str]]:
    store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 1_000)
    store.start(asyncio.get_running_loop())
    requests: list[str] = []
    submit = store._submit

    async def counted(op: Any) -> Any:
        requests.append(type(op).__name__)
        return await submit(op)

    store._submit = counted  # type: ignore[method-assign]
    return store, ReplicaServicer(store, None), requests  # type: ignore[arg-type]


def test_plain_commits_are_one_request_and_keep_their_own_outcomes(tmp_path: Path) -> None:
    async def go() -> None:
        store, servicer, requests = _start(tmp_path)
        heard: list[str] = []

        async def hear_az(bucket: str, key: str) -> Stamp:
            heard.append(key)
            return ZERO

        store.hear_az = hear_az
        try:
            await store.commit(Change.of(_version("old", 5_000)))
            requests.clear()
            bodiless = ObjectVersion(BUCKET, "nobody", Stamp(2_000, 0, 1, 1), size=10)
            batch = replica_pb2.PipeRequest(
                id=7,
                ops=[
                    _commit(Change.of(_version("a", 2_000))),
                    # Older than the record held: not applied, told what is current.
                    _commit(Change.of(_version("old", 1_000))),
                    # A conditional create: decided after hearing the AZ, on its own.
                    _commit(Change.of(_version("c", 2_000), expect=ZERO)),
                    # Fails in the writer (a record without its body): only it.
                    _commit(Change.of(bodiless)),
                    # Fails its check before the writer: only it.
                    replica_pb2.BatchOp(
                        commit=change_to_pb(
                            Change.of(ObjectVersion("b", "k", Stamp(2_000, 0, 1, 1)))
                        )
                    ),
                    replica_pb2.BatchOp(
                        read_meta=replica_pb2.ReadMetaRequest(bucket=BUCKET, key="old")
                    ),
                    _commit(Change.of(_version("b", 2_000))),
                ],
            )
            resp = await servicer.answer(batch)
            assert resp.id == 7
            kinds = [r.WhichOneof("result") for r in resp.results]
            assert kinds == ["commit", "commit", "commit", "error", "error", "read_meta", "commit"]
            a, old, c, bodiless_r, bad, meta, b = resp.results
            assert a.commit.applied and b.commit.applied and c.commit.applied
            assert not old.commit.applied
            assert old.commit.current.physical_ms == 5_000
            assert bodiless_r.error.code == "InternalError"
            assert "without its body" in bodiless_r.error.message
            assert bad.error.code == "InvalidBucketName"
            assert meta.read_meta.found and meta.read_meta.version.stamp.physical_ms == 5_000
            # a, old, the bodiless one and b went to the writer as one request;
            # the conditional one alone, after the AZ was heard.
            assert sorted(requests) == ["_Commit", "_Commits"]
            assert heard == ["c"]
            for key in ("a", "b", "c", "old"):
                assert await store.read_meta_record(BUCKET, key) is not None, key
            assert await store.read_meta_record(BUCKET, "nobody") is None
        finally:
            store.close()

    asyncio.run(go())


def test_a_full_disk_refuses_every_plain_commit_of_the_batch(tmp_path: Path) -> None:
    async def go() -> None:
        store, servicer, requests = _start(tmp_path)
        try:

            class Full:
                def refuse_if_full(self, what: str) -> None:
                    raise StorageFull(f"no room for {what}")

            store.disk = Full()  # type: ignore[assignment]
            batch = replica_pb2.PipeRequest(
                id=1, ops=[_commit(Change.of(_version(k, 2_000))) for k in ("a", "b")]
            )
            resp = await servicer.answer(batch)
            assert [r.error.code for r in resp.results] == ["StorageFull"] * 2
            assert requests == []
            store.disk = None
            assert await store.read_meta_record(BUCKET, "a") is None
        finally:
            store.close()

    asyncio.run(go())


def test_a_group_commit_is_bounded_by_writes_not_requests(tmp_path: Path) -> None:
    """``group_commit_max`` counts the commits a peer's message carries, each."""
    store = ReplicaStore(tmp_path / "n", replace(NodeSection(), group_commit_max=4), lambda: 1)
    store._loop = object()  # type: ignore[assignment]  # the writer is run here, by hand
    sizes: list[list[int]] = []
    store._write_batch = lambda batch, loop: sizes.append([op.writes for op, _ in batch])  # type: ignore[method-assign]

    def one(key: str) -> _Commit:
        return _Commit(Change.of(_version(key, 2_000)), "")

    for op in (_Commits([one("a"), one("b"), one("c")]), one("d"), one("e")):
        store._queue.put((op, None))  # type: ignore[arg-type]  # no waiter
    store._queue.put(None)
    try:
        store._write_loop()
        assert sizes == [[3, 1], [1]]
    finally:
        store.close()
