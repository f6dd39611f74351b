"""Histories of concurrent clients under faults, checked for linearizability.

Clients are pinned to different coordinators and work a few hot keys (some
writes go through multipart upload), recording
each operation's invocation and completion; a nemesis SIGKILLs and restarts
nodes (with clocks skewed by seconds) and witnesses. Every history must check,
and the same workload against the deliberately broken mode (reads served from
the cache without asking the witness) must be caught.

Bounded: a fixed number of operations per client and a time limit; longer runs
with TRISTORE_LONG=1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import DevCluster, start_cluster
from tests.linearizability import READ, WRITE, Op, check
from tristore import errors
from tristore.client import Client
from tristore.model import ObjectInfo

pytestmark = [pytest.mark.robustness, pytest.mark.timeout(600)]

LONG = os.environ.get("TRISTORE_LONG") == "1"
BUCKET = "lin"
KEYS = ("x", "y", "z")


class Recorder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)


def client_loop(
    cluster: DevCluster,
    endpoint: str,
    ident: int,
    rec: Recorder,
    ops: int,
    deadline: float,
    writer: bool,
    bucket: str = BUCKET,
    acked: dict[str, str] | None = None,
) -> None:
    with cluster.client(endpoint) as c:
        for seq in range(ops):
            if time.monotonic() > deadline:
                return
            key = KEYS[seq % len(KEYS)]
            started = rec.now()
            if writer and seq % 2 == 0:
                deleting = seq % 10 == 4
                value = None if deleting else f"{ident}-{seq}"
                try:
                    if deleting:
                        c.delete_object(bucket, key)
                    else:
                        assert value is not None
                        info = (
                            _multipart_put(c, bucket, key, value.encode())
                            if seq % 6 == 2
                            else c.put_object(bucket, key, value.encode())
                        )
                        if acked is not None:
                            acked[info.version_id] = f"{key}={value}"
                except errors.TristoreError:
                    rec.add(Op(key, WRITE, value, started, ok=False, client=ident))
                else:
                    rec.add(Op(key, WRITE, value, started, rec.now(), client=ident))
            else:
                try:
                    got: str | None = c.get_object(bucket, key).decode()
                except errors.NoSuchKey:
                    got = None
                except errors.TristoreError:
                    continue  # a failed read constrains nothing
                rec.add(Op(key, READ, got, started, rec.now(), client=ident))


def _multipart_put(c: Client, bucket: str, key: str, body: bytes) -> ObjectInfo:
    """A write through multipart upload: one (last, so small) part, then complete."""
    up = c.create_multipart_upload(bucket, key)
    part = c.upload_part(bucket, key, up.upload_id, 1, body)
    return c.complete_multipart_upload(bucket, key, up.upload_id, [(1, part.etag)])


def run_workload(
    cluster: DevCluster,
    seconds: float,
    ops_per_client: int,
    nemesis: Callable[[float], None] | None = None,
    bucket: str = BUCKET,
    acked: dict[str, str] | None = None,
) -> list[Op]:
    rec = Recorder()
    nodes = [n.grpc for n in cluster.config.nodes]
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=client_loop,
            args=(
                cluster,
                nodes[i % len(nodes)],
                i,
                rec,
                ops_per_client,
                deadline,
                i % 2 == 0,
                bucket,
                acked,
            ),
            daemon=True,
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    if nemesis is not None:
        nemesis(deadline)
    for t in threads:
        t.join(seconds + 120)
        assert not t.is_alive(), "a client did not stop by itself"
    return rec.ops


def assert_linearizable(ops: list[Op], where: Path) -> None:
    """Check a history; on failure keep it whole beside the cluster's logs."""
    verdict = check(ops)
    if verdict.ok:
        return
    dump = where / f"history-{int(time.time())}.json"
    dump.write_text(json.dumps([dataclasses.asdict(o) for o in ops]))
    raise AssertionError(
        f"{verdict.explanation}\nwhole history: {dump}\n" + "\n".join(map(str, verdict.ops[:40]))
    )


@pytest.fixture
def lin_cluster(tmp_path: Path) -> Iterator[DevCluster]:
    cluster = start_cluster(tmp_path)
    try:
        with cluster.client() as c:
            c.create_bucket(BUCKET)
        yield cluster
    finally:
        cluster.down()


def test_histories_under_node_witness_kills_and_clock_skew_are_linearizable(
    lin_cluster: DevCluster,
) -> None:
    cluster = lin_cluster
    rounds: list[str] = []

    def nemesis(deadline: float) -> None:
        # One fault at a time, each healed before the next; skewed clocks stay.
        steps = [
            ("a1", {"TRISTORE_NODE_CLOCK_OFFSET_MS": "3000"}),
            ("w1", {}),
            ("b2", {"TRISTORE_NODE_CLOCK_OFFSET_MS": "-4000"}),
            ("w2", {}),
            ("c1", {"TRISTORE_NODE_CLOCK_OFFSET_MS": "2500"}),
            ("w3", {}),
        ]
        for name, env in steps * (3 if LONG else 1):
            if time.monotonic() > deadline - 2:
                return
            time.sleep(1.0)
            cluster.kill(name, "KILL")
            time.sleep(0.5)
            cluster.start(name, extra_env=env)
            rounds.append(name)

    ops = run_workload(cluster, 60 if LONG else 25, 4000 if LONG else 400, nemesis)
    assert len(rounds) >= 3, "the nemesis must have done something"
    writes = [o for o in ops if o.kind == WRITE and o.ok]
    reads = [o for o in ops if o.kind == READ]
    assert len(writes) > 50 and len(reads) > 50, (len(writes), len(reads))
    assert_linearizable(ops, cluster.dir)

    # Durable: the last acknowledged state of every key is still readable.
    with cluster.client() as c:
        final = []
        for key in KEYS:
            try:
                got: str | None = c.get_object(BUCKET, key).decode()
            except errors.NoSuchKey:
                got = None
            final.append(Op(key, READ, got, 1e9, 1e9 + 1))
    assert check([*ops, *final]).ok


def test_versioned_histories_are_linearizable_and_keep_every_version(
    lin_cluster: DevCluster,
) -> None:
    """In a versioned bucket DELETE makes delete markers and every PUT a version:
    GET latest must still behave as one register (never a superseded version),
    and every acknowledged version must stay readable by its id."""
    cluster = lin_cluster
    bucket = "lin-versioned"
    with cluster.client() as c:
        c.create_bucket(bucket)
        c.put_bucket_versioning(bucket, "Enabled")
    acked: dict[str, str] = {}

    def nemesis(deadline: float) -> None:
        for name in ("b1", "w2"):
            if time.monotonic() > deadline - 2:
                return
            time.sleep(1.5)
            cluster.kill(name, "KILL")
            time.sleep(0.5)
            cluster.start(name)

    ops = run_workload(cluster, 40 if LONG else 15, 2000 if LONG else 300, nemesis, bucket, acked)
    assert sum(1 for o in ops if o.kind == WRITE and o.ok) > 30
    assert_linearizable(ops, cluster.dir)
    with cluster.client() as c:
        for vid, kv in acked.items():
            key, value = kv.split("=", 1)
            assert c.get_object(bucket, key, version_id=vid).decode() == value, (vid, kv)
        listed = {v.version_id for p in c.iter_object_versions(bucket) for v in p.versions}
    assert set(acked) <= listed


def test_the_checker_catches_reads_that_skip_the_witness(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path, extra_env={"TRISTORE_NODE_UNSAFE_SKIP_WITNESS": "true"})
    try:
        with cluster.client() as c:
            c.create_bucket(BUCKET)
        caught = False
        # Stale cache entries show up within a few rounds; bounded all the same.
        for _ in range(5):
            ops = run_workload(cluster, 10, 300)
            if not check(ops).ok:
                caught = True
                break
        assert caught, "reads that skip the witness must produce a non-linearizable history"
    finally:
        cluster.down()
