"""Replication while its parts fail, on two real clusters (`dev up --clusters
2`) whose nodes collect superseded bodies 2 s after they are replaced (so a
body wrongly taken for superseded is gone within the test): the same version
applied twice at once, what the lag says while the destination is down, and
versions whose source AZ is down when they are read."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.integration.cluster import DevCluster, signed_channel, two_clusters, wait_until
from tristore import errors, stamps
from tristore.convert import version_to_pb
from tristore.model import ObjectVersion
from tristore.pb import objects_pb2, objects_pb2_grpc
from tristore.replication import Destination, Rule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GC_GRACE_S = 2.0
#: The ETag of the one-byte body b"x".
MD5_X = hashlib.md5(b"x").hexdigest()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, DevCluster]]:
    yield from two_clusters(
        tmp_path_factory.mktemp("pair-faults"),
        {
            "TRISTORE_NODE_GC_GRACE_S": str(GC_GRACE_S),
            "TRISTORE_NODE_GC_INTERVAL_S": "0.5",
            "TRISTORE_REPLICATOR_RETRY_BACKOFF_S": "0.1",
            "TRISTORE_REPLICATOR_MAX_BACKOFF_S": "1",
        },
    )


def _versioned(c, name: str) -> str:  # type: ignore[no-untyped-def]
    c.create_bucket(name)
    c.put_bucket_versioning(name, "Enabled")
    return name


def _apply(address: str, v: ObjectVersion, body: bytes) -> bool:
    """One ApplyReplica stream, as a replicator of east sends a large version."""
    header = objects_pb2.ApplyReplicaHeader(
        version=version_to_pb(v, with_inline=False), origin_cluster="east"
    )
    requests = [objects_pb2.ApplyReplicaRequest(header=header)]
    requests += [
        objects_pb2.ApplyReplicaRequest(data=body[i : i + 65536])
        for i in range(0, len(body), 65536)
    ]
    with signed_channel(address) as ch:
        return bool(
            objects_pb2_grpc.ObjectServiceStub(ch).ApplyReplica(iter(requests), timeout=60).applied
        )


def test_one_version_applied_twice_at_once_keeps_its_body_and_newest_tags(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """Two applies of one version at once (what a replicator sends when the
    version's tags change while its first send is in flight, or when it is
    killed mid-stream and sends again), through two coordinators of a key
    that has an older version already: the second to commit found the
    version current and stored its own copy of the body as the version's
    record, and the collector then took the body the current record held (a
    GET of it failed with 'chunk 0 of body ... is missing', for good); and
    its tags were those of whichever copy committed last, not the newest
    change. Now the version keeps a body, and the tags changed last."""
    _, west = pair
    east_id = west.config.cluster.id + 1
    nodes = [n.grpc for n in west.config.nodes]
    with west.client() as w:
        _versioned(w, "dup-dst")
        cases = []
        for i in range(6):
            now = int(time.time() * 1000)
            key = f"k{i}"
            old = os.urandom(5000)
            older = ObjectVersion(
                "dup-dst",
                key,
                stamp=stamps.Stamp(now - 1000, 0, east_id, 101),
                size=len(old),
                etag=hashlib.md5(old).hexdigest(),
            )
            assert _apply(nodes[0], older, old)
            body = os.urandom(2 * 1024 * 1024)
            vstamp = stamps.Stamp(now, 0, east_id, 101)
            plain = ObjectVersion(
                "dup-dst", key, stamp=vstamp, size=len(body), etag=hashlib.md5(body).hexdigest()
            )
            changed = stamps.Stamp(now + 5, 0, east_id, 101)
            tagged = replace(
                plain, stamp=changed, version_stamp=vstamp, tags={"t": "new"}, meta_stamp=changed
            )
            threads = [
                threading.Thread(target=_apply, args=(nodes[1 + j], v, body))
                for j, v in enumerate((plain, tagged))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            cases.append((key, vstamp.version_id, body))
        time.sleep(GC_GRACE_S + 3)  # past the grace: a body taken for superseded is gone
        for key, vid, body in cases:
            assert w.head_object("dup-dst", key).version_id == vid
            assert w.get_object("dup-dst", key) == body, key
            assert w.get_object("dup-dst", key, version_id=vid) == body, key
            assert w.get_object_tagging("dup-dst", key, version_id=vid).tags == {"t": "new"}, key


def _apply_held_back(address: str, v: ObjectVersion, body: bytes, go: threading.Event) -> bool:
    """:func:`_apply`, its body held back after the first 64 KiB until ``go``:
    the destination has looked for the version and staged part of the body,
    and commits only once the rest arrives."""
    header = objects_pb2.ApplyReplicaHeader(
        version=version_to_pb(v, with_inline=False), origin_cluster="east"
    )

    def requests() -> Iterator[objects_pb2.ApplyReplicaRequest]:
        yield objects_pb2.ApplyReplicaRequest(header=header)
        for i in range(0, len(body), 65536):
            if i == 65536:
                assert go.wait(60)
            yield objects_pb2.ApplyReplicaRequest(data=body[i : i + 65536])

    with signed_channel(address) as ch:
        stub = objects_pb2_grpc.ObjectServiceStub(ch)
        return bool(stub.ApplyReplica(requests(), timeout=120).applied)


def _apply_batch(address: str, items: list[tuple[ObjectVersion, bytes]]) -> None:
    """One ApplyReplicas call, as a replicator of east sends small versions."""
    request = objects_pb2.ApplyReplicasRequest(
        items=[
            objects_pb2.ApplyReplicaItem(
                header=objects_pb2.ApplyReplicaHeader(
                    version=version_to_pb(v, with_inline=False), origin_cluster="east"
                ),
                data=body,
            )
            for v, body in items
        ]
    )
    with signed_channel(address) as ch:
        reply = objects_pb2_grpc.ObjectServiceStub(ch).ApplyReplicas(request, timeout=60)
    errors = [r.error for r in reply.results if r.HasField("error")]
    assert not errors, errors


def _run_at_once(*calls: tuple[object, ...]) -> None:
    """Each (function, *args) in a thread of its own, all at once; an error
    in one fails the test."""
    failed: list[BaseException] = []

    def run(fn, *args) -> None:  # type: ignore[no-untyped-def]
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            failed.append(exc)

    threads = [threading.Thread(target=run, args=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    assert not failed, failed


def test_a_noncurrent_version_applied_twice_keeps_the_tags_changed_last(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """Two applies of one version older than the key's current one (so
    added as a noncurrent version), one of them carrying a later change of
    its tags. Each was added unconditionally, and the record committed last
    stayed (a version record keeps the newest record stamp): a copy that
    looked for the version before the other added it, and committed after,
    replaced it with its older tags, for good. Sent so (the older copy's
    body held back), at once (either copy first), and at once in two
    ApplyReplicas calls (small bodies, and a delete marker): every version
    keeps the tags changed last, and a body that reads whole past the
    collector's grace."""
    _, west = pair
    east_id = west.config.cluster.id + 1
    nodes = [n.grpc for n in west.config.nodes]
    with west.client() as w:
        _versioned(w, "dup-old")
        now = int(time.time() * 1000)
        cases: list[tuple[str, str, bytes]] = []

        def versions(key: str, size: int, i: int) -> tuple[ObjectVersion, ObjectVersion, bytes]:
            """The key's current version (applied here), and two copies of an
            older version: as first sent, and after a change of its tags."""
            t = now - 10_000 + 10 * i
            newest = ObjectVersion(
                "dup-old", key, stamp=stamps.Stamp(t + 5, 0, east_id, 101), size=1, etag=MD5_X
            )
            _apply_batch(nodes[0], [(newest, b"x")])
            body = os.urandom(size)
            vstamp = stamps.Stamp(t, 0, east_id, 101)
            plain = ObjectVersion(
                "dup-old", key, stamp=vstamp, size=size, etag=hashlib.md5(body).hexdigest()
            )
            changed = stamps.Stamp(t + 1, 0, east_id, 101)
            tagged = replace(
                plain, stamp=changed, version_stamp=vstamp, tags={"t": "new"}, meta_stamp=changed
            )
            cases.append((key, vstamp.version_id, body))
            return plain, tagged, body

        # The first copy looks (the version is not there yet), the second adds
        # it, then the first one's body ends and it commits.
        for i in range(2):
            plain, tagged, body = versions(f"held{i}", 2 * 1024 * 1024, i)
            go = threading.Event()
            held = threading.Thread(target=_apply_held_back, args=(nodes[1], plain, body, go))
            held.start()
            try:
                time.sleep(1.5)
                assert _apply(nodes[2], tagged, body)
            finally:
                go.set()
                held.join(timeout=120)
        for i in range(4):
            plain, tagged, body = versions(f"both{i}", 2 * 1024 * 1024, 10 + i)
            copies = (plain, tagged) if i % 2 else (tagged, plain)
            _run_at_once(*((_apply, nodes[1 + j], v, body) for j, v in enumerate(copies)))
        first: list[tuple[ObjectVersion, bytes]] = []
        then: list[tuple[ObjectVersion, bytes]] = []
        for i in range(12):
            plain, tagged, body = versions(f"small{i}", 1000, 20 + i)
            first.append((plain, body))
            then.append((tagged, body))
        # And a delete marker older than small0's current version, sent twice.
        at = first[0][0].vstamp.physical_ms + 3
        marker = ObjectVersion(
            "dup-old",
            "small0",
            stamp=stamps.Stamp(at, 0, east_id, 101),
            deleted=True,
            delete_marker=True,
        )
        first.append((marker, b""))
        then.append((marker, b""))
        _run_at_once((_apply_batch, nodes[1], first), (_apply_batch, nodes[2], then))
        time.sleep(GC_GRACE_S + 3)  # past the grace: a body taken for superseded is gone
        for key, vid, body in cases:
            assert w.get_object("dup-old", key, version_id=vid) == body, key
            tags = w.get_object_tagging("dup-old", key, version_id=vid).tags
            assert tags == {"t": "new"}, (key, tags)
        listed = w.list_object_versions("dup-old", prefix="small0").versions
        assert [v.version_id for v in listed if v.delete_marker] == [marker.version_id]
        assert len(listed) == 3, listed  # the marker, the version applied twice, the newest


def _lag(east: DevCluster) -> float:
    """The largest replication lag east's replicators report."""
    return max(
        east.metric(r.name, "tristore_replication_lag_seconds") for r in east.config.replicators
    )


def test_lag_keeps_growing_while_the_destination_cannot_take_writes(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """West's az-c SIGKILLed (west refuses every write), east writes: the lag
    its replicators report, by metric and in `admin status`, is the age of
    the oldest change still to send, and grows while west is down. It was
    set once, to the age of a version when its first try began (a few ms),
    and reset to 0 by any change log found caught up, so `admin status` said
    'replication lag 7ms' 20 s into the outage. Back to 0 once west is back,
    and only then: it read 0 between two batches of a change log while the
    versions written during the outage waited unread."""
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "lag-src")
        _versioned(w, "lag-dst")
        e.put_bucket_replication("lag-src", [Rule("all", (Destination("west", "lag-dst"),))])
        west.kill("c1", "KILL")
        west.kill("c2", "KILL")
        try:
            for i in range(6):
                e.put_object("lag-src", f"k{i}", os.urandom(100 if i % 2 else 20000))
            time.sleep(3)
            first = _lag(east)
            time.sleep(4)
            later = _lag(east)
            assert first >= 2.5, first
            assert later >= first + 3, (first, later)
            status = json.loads(east.cli("admin", "status", "--json").stdout)
            assert status["replication_lag_seconds"]["west/lag-dst"] >= later, status
            assert e.head_object("lag-src", "k0").replication_status == "PENDING"
        finally:
            west.start("c1")
            west.start("c2")
        # Polled without pause: the lag may read 0 only once every version is
        # through, not between two batches while one waits unread.
        wait_until(lambda: _lag(east) == 0, 120, 0.0, what="lag back to 0 once west is back")
        for i in range(6):
            assert e.head_object("lag-src", f"k{i}").replication_status == "COMPLETED"


def _replicated(w, bucket: str, keys: list[str]) -> bool:  # type: ignore[no-untyped-def]
    for key in keys:
        try:
            w.head_object(bucket, key)
        except errors.NoSuchKey:
            return False
    return True


def test_changes_an_az_down_cannot_bring_arrive_from_the_other_azs_logs(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """Versions written while east's replicators were down, then both nodes
    of one AZ SIGKILLed and the replicators started again: every version is
    in a node of each AZ's change log, so the other two AZs' logs bring each
    one to west, though no log of the dead AZ answers. Once that AZ is back,
    each is COMPLETED at east (its status update needs all three AZs)."""
    east, west = pair
    dead_az = sorted({n.az for n in east.config.nodes})[0]
    dead = [n.name for n in east.config.nodes if n.az == dead_az]
    with east.client() as e, west.client() as w:
        _versioned(e, "az-down-src")
        _versioned(w, "az-down-dst")
        e.put_bucket_replication(
            "az-down-src", [Rule("all", (Destination("west", "az-down-dst"),))]
        )
        keys = [f"k{i:02d}" for i in range(12)]
        for name in east.replicator_names:
            east.kill(name, "KILL")
        try:
            for key in keys:
                e.put_object("az-down-src", key, key.encode())
            for name in dead:
                east.kill(name, "KILL")
        finally:
            for name in east.replicator_names:
                east.start(name)
        try:
            wait_until(
                lambda: _replicated(w, "az-down-dst", keys),
                60,
                0.5,
                what="every version at west from the other AZs' logs",
            )
            for key in keys:
                assert w.get_object("az-down-dst", key) == key.encode()
            assert e.head_object("az-down-src", keys[0]).replication_status == "PENDING"
        finally:
            for name in dead:
                east.start(name)

        def completed() -> bool:
            return all(
                e.head_object("az-down-src", k).replication_status == "COMPLETED" for k in keys
            )

        wait_until(completed, 120, 0.5, what="every version COMPLETED at east")
