"""Nodes and AZs killed with SIGKILL: acknowledged writes survive, the cluster
keeps working, hints drain back (DESIGN.md invariants 1 and 4)."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from tests.integration.cluster import DevCluster, wait_until
from tristore import errors
from tristore.client import RetryPolicy

pytestmark = pytest.mark.integration

BUCKET = "faults"
#: Keys whose PUT was refused with QuorumUnavailable: it may have taken effect.
MAYBE = ("az/new", "az/new-big", "az/cli")


class Writer(threading.Thread):
    """Writes distinct keys one after another, recording what was acknowledged."""

    def __init__(self, cluster: DevCluster, prefix: str, limit: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.prefix = prefix
        self.limit = limit
        self.deadline = time.monotonic() + seconds
        self.acked: dict[str, bytes] = {}
        self.failed: list[tuple[str, str]] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        with self.cluster.client() as c:
            for i in range(self.limit):
                if self.stop_flag.is_set() or time.monotonic() > self.deadline:
                    return
                key = f"{self.prefix}/{i:05d}"
                body = f"{key} {i}".encode() * (1 + i % 5)
                if i % 40 == 0:
                    body = body * 40_000  # some staged (chunked) bodies too
                try:
                    c.put_object(BUCKET, key, body)
                except errors.TristoreError as exc:
                    self.failed.append((key, f"{exc.code}: {exc}"))
                else:
                    self.acked[key] = body


def test_sigkill_one_node_during_writes(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    victim = "a1"
    with cluster.client() as c:
        c.create_bucket(BUCKET)
    writer = Writer(cluster, "kill1", limit=600, seconds=60)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 60, 30, what="writes before the kill")
    cluster.kill(victim, "KILL")
    acked_at_kill = len(writer.acked)
    wait_until(
        lambda: len(writer.acked) >= acked_at_kill + 150 or not writer.is_alive(),
        45,
        what="writes after the kill",
    )
    writer.stop_flag.set()
    writer.join(30)
    assert not writer.is_alive()

    # Writes kept succeeding with the node gone: the SDK retries what was in
    # flight at the kill, so hardly anything may fail at all.
    assert len(writer.acked) >= acked_at_kill + 150
    assert len(writer.failed) <= 2, writer.failed

    with cluster.client() as c:
        for key, body in writer.acked.items():
            assert c.get_object(BUCKET, key) == body, key

    # Some keys written while the victim was down have it as their home: those
    # are the ones that must come back through hints.
    written_while_down = list(writer.acked)[acked_at_kill + 1 :]
    missed = [k for k in written_while_down if victim in cluster.homes(BUCKET, k)]
    assert missed, "the test must cover keys whose home was the dead node"
    assert cluster.hints_pending() > 0

    cluster.start(victim)
    cluster.wait_hints_drained()

    # The node's own data, read straight from its RocksDB: every key it is home
    # for is there, at the acknowledged content.
    held = cluster.node_versions(victim)
    for key, body in writer.acked.items():
        if victim in cluster.homes(BUCKET, key):
            rec = held.get((BUCKET, key))
            assert rec is not None, f"{victim} lacks {key}"
            assert rec.etag == hashlib.md5(body).hexdigest(), key
    # And the stand-in copies on the other node of its AZ are gone again.
    fallback = cluster.node_versions("a2")
    assert not [
        k for k in missed if (BUCKET, k) in fallback and "a2" not in cluster.homes(BUCKET, k)
    ]


def test_whole_az_down_reads_work_writes_fail_fast(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        bodies = {f"az/{i}": f"body {i}".encode() for i in range(40)}
        bodies["az/big"] = b"B" * (3 * 1024 * 1024)
        for key, body in bodies.items():
            c.put_object(BUCKET, key, body)

    cluster.kill("b1", "KILL")
    cluster.kill("b2", "KILL")
    endpoint = ",".join(n.grpc for n in cluster.config.nodes if n.az != "az-b")
    with cluster.client(endpoint) as c:
        for key, body in bodies.items():
            assert c.get_object(BUCKET, key) == body
        listed = {e.key for e in c.list_objects(BUCKET, prefix="az/").contents}
        assert listed == set(bodies)
        with pytest.raises(errors.QuorumUnavailable) as info:
            c.put_object(BUCKET, "az/new", b"x")
        assert "az-b" in str(info.value)
        with pytest.raises(errors.QuorumUnavailable):
            c.put_object(BUCKET, "az/new-big", b"y" * (2 * 1024 * 1024))

    # What the CLI user sees: one line naming the code and the AZ, exit 1.
    proc = cluster.cli("cp", "-", f"s3://{BUCKET}/az/cli", input=b"data", check=False)
    assert proc.returncode == 1
    line = proc.stderr.decode().strip().splitlines()[-1]
    assert line.startswith("QuorumUnavailable:") and "az-b" in line

    cluster.start("b1")
    cluster.start("b2")

    def write_works() -> bool:
        try:
            with cluster.client() as c:
                c.put_object(BUCKET, "az/after", b"back")
            return True
        except errors.QuorumUnavailable:
            return False

    wait_until(write_works, 30, interval=0.5, what="writes to work again")
    with cluster.client() as c:
        assert c.get_object(BUCKET, "az/after") == b"back"
        for key, body in bodies.items():
            assert c.get_object(BUCKET, key) == body
    for name in ("b1", "b2"):
        assert all(
            (BUCKET, k) in cluster.node_versions(name)
            for k in bodies
            if name in cluster.homes(BUCKET, k)
        )

    # A listing is complete or refused: it scans two whole AZs (a version a
    # read finished is in two of its key's three AZs), so with one node of
    # two AZs down it is refused rather than merged from the nodes left.
    a2 = next(n.grpc for n in cluster.config.nodes if n.name == "a2")
    # az-b's hints handed back first: an AZ keys are still moving into is
    # never relied on for a listing.
    cluster.wait_hints_drained()
    # ... and a2 (the coordinator below) sees az-b's nodes up again, or it
    # takes no AZ for whole.
    every = len(cluster.config.nodes)
    wait_until(
        lambda: cluster.metric("a2", "tristore_cluster_nodes_up") == every,
        30,
        what="a2 to see every node up",
    )
    cluster.kill("a1", "KILL")
    with cluster.client(a2) as c:
        listed = {e.key for e in c.list_objects(BUCKET, prefix="az/").contents}
        # az-b and az-c are whole: their scans hold every key. (The PUTs
        # refused above may have reached two AZs; a refusal says so, and a
        # later read may finish them.)
        assert {*bodies, "az/after"} <= listed <= {*bodies, "az/after", *MAYBE}
    cluster.kill("c1", "KILL")
    with cluster.client(a2, retry=RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(errors.ServiceUnavailable) as refused:
            c.list_objects(BUCKET, prefix="az/")
        assert "every node" in str(refused.value)
    for name in ("a1", "c1"):
        cluster.start(name)
    with cluster.client() as c:
        listed = {e.key for e in c.list_objects(BUCKET, prefix="az/").contents}
        assert {*bodies, "az/after"} <= listed <= {*bodies, "az/after", *MAYBE}


def test_whole_cluster_restart_keeps_everything(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    bodies = {f"restart/{i}": f"r{i}".encode() * i for i in range(100)}
    bodies["restart/big"] = bytes(range(256)) * 20_000
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        for key, body in bodies.items():
            c.put_object(BUCKET, key, body)
        c.delete_object(BUCKET, "restart/5")
    del bodies["restart/5"]

    # SIGKILL everything at once: no process gets to flush anything.
    for spec in cluster.config.nodes:
        cluster.kill(spec.name, "KILL")
    assert not cluster.up_names()
    cluster.dev("up")
    assert cluster.up_names() == {n.name for n in cluster.config.nodes}

    with cluster.client() as c:
        assert BUCKET in {b.name for b in c.list_buckets()}
        for key, body in bodies.items():
            assert c.get_object(BUCKET, key) == body
        with pytest.raises(errors.NoSuchKey):
            c.get_object(BUCKET, "restart/5")
        listed = [e.key for e in c.list_objects(BUCKET, prefix="restart/").contents]
        assert sorted(listed) == sorted(bodies)


def test_a_listing_through_an_az_that_was_away_sees_what_a_read_finished(
    own_cluster: DevCluster,
) -> None:
    """Found by the 30-minute soak: with AZ b cut off, a PUT of a new key
    reached AZs a and c and failed; a read finished it there (two of the
    key's AZs, its first among them) and returned it. Back, a node of AZ b
    listed the key as absent: a listing scanned one whole AZ, its own, which
    is enough for acknowledged writes (in all three AZs) but not for a
    version a read finished (in two). A listing now scans two whole AZs."""
    cluster = own_cluster
    bucket = "faults-listing"
    key = next(
        k
        for k in (f"new/{i}" for i in range(200))
        if cluster.config.node_named(cluster.homes(bucket, k)[0]).az != "az-b"
    )
    with cluster.client() as c:
        c.create_bucket(bucket)
    cluster.kill("b1", "KILL")
    cluster.kill("b2", "KILL")
    once = RetryPolicy(max_attempts=1)
    with cluster.client(cluster.config.node_named("a1").grpc, retry=once) as c:
        with pytest.raises(errors.QuorumUnavailable):
            c.put_object(bucket, key, b"finished by a read")
        assert c.get_object(bucket, key) == b"finished by a read"
    cluster.start("b2")
    cluster.start("b1")  # after b2: it finds its own AZ whole from the start
    with cluster.client(cluster.config.node_named("b1").grpc) as c:
        wait_until(lambda: all(n.up for n in c.cluster_status().nodes), 60, what="every node up")
        listed = [o.key for o in c.list_objects(bucket, prefix="new/").contents]
        assert listed == [key]
        assert c.get_object(bucket, key) == b"finished by a read"
