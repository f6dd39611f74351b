"""The witness as a read barrier (DESIGN.md invariants 2 and 3), on real processes."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from node.witness_client import UNKNOWN, witness_key
from tests.integration.cluster import DevCluster, wait_until
from tristore import errors
from tristore.client import RetryPolicy
from tristore.pb import witness_pb2, witness_pb2_grpc
from tristore.server import cluster_channel
from tristore.stamps import Stamp

pytestmark = pytest.mark.integration

BUCKET = "witnessed"


def _witness_names(cluster: DevCluster) -> list[str]:
    return [w.name for w in cluster.config.witnesses]


def _restart_witnesses(cluster: DevCluster) -> dict[str, int]:
    """SIGKILL every witness, start each again; their new incarnations."""
    witnesses = _witness_names(cluster)
    for w in witnesses:
        cluster.kill(w, "KILL")
    for w in witnesses:
        cluster.start(w)
    return {w: int(cluster.metric(w, "tristore_witness_incarnation")) for w in witnesses}


def _on_pipe(
    cluster: DevCluster,
    witness: str,
    me: str,
    wkey: bytes,
    record: tuple[Stamp, int] | None = None,
) -> witness_pb2.WitnessPipeResponse:
    """One message on ``witness``'s Pipe as the node ``me`` sends it (its
    internal port, mutual TLS with ``me``'s certificate): a record of
    ``wkey`` at (stamp, incarnation) if given, and a check of ``wkey``,
    which the witness answers after the record."""
    cfg = cluster.config
    req = witness_pb2.WitnessPipeRequest(id=1, check=witness_pb2.CheckRequest(keys=[wkey]))
    if record is not None:
        stamp, incarnation = record
        req.record.keys.append(wkey)
        req.record.stamps = stamp.encode()
        req.record.incarnations.append(incarnation)

    async def call() -> witness_pb2.WitnessPipeResponse:
        async with cluster_channel(cfg, me, cfg.witness_named(witness).grpc) as ch:
            stream = witness_pb2_grpc.WitnessServiceStub(ch).Pipe(timeout=10)
            await stream.write(req)
            resp = await stream.read()
            await stream.done_writing()
            assert await stream.read() is grpc.aio.EOF
        assert isinstance(resp, witness_pb2.WitnessPipeResponse), resp
        assert not resp.error_code, resp
        return resp

    return asyncio.run(call())


def _sum(cluster: DevCluster, names: list[str], metric: str) -> float:
    return sum(cluster.metric(n, metric) for n in names)


def test_reads_are_served_from_the_cache_once_the_witness_confirms(cluster: DevCluster) -> None:
    nodes = [n.name for n in cluster.config.nodes]
    with cluster.client(cluster.config.nodes[0].grpc) as c:
        c.create_bucket(BUCKET)
        c.put_object(BUCKET, "hot", b"value")
        hits = _sum(cluster, nodes, "tristore_cache_hits_total")
        for _ in range(20):
            assert c.get_object(BUCKET, "hot") == b"value"
        assert _sum(cluster, nodes, "tristore_cache_hits_total") >= hits + 20
        # A write through another coordinator makes this coordinator's entry
        # stale; the witness says so, and the read goes to the replicas.
        with cluster.client(cluster.config.nodes[-1].grpc) as other:
            other.put_object(BUCKET, "hot", b"newer")
        assert c.get_object(BUCKET, "hot") == b"newer"
        other_delete = cluster.client(cluster.config.nodes[-1].grpc)
        with other_delete:
            other_delete.delete_object(BUCKET, "hot")
        with pytest.raises(errors.NoSuchKey):
            c.get_object(BUCKET, "hot")
        assert "hot" not in {e.key for e in c.list_objects(BUCKET).contents}
    checks = _sum(cluster, _witness_names(cluster), "tristore_witness_checks_total")
    assert checks > 0


def test_restarting_every_witness_costs_speed_not_correctness(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    witnesses = _witness_names(cluster)
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        for i in range(30):
            c.put_object(BUCKET, f"k{i}", f"v1-{i}".encode())
        for i in range(30):
            c.put_object(BUCKET, f"k{i}", f"v2-{i}".encode())
        c.delete_object(BUCKET, "k0")

        before = {w: cluster.metric(w, "tristore_witness_incarnation") for w in witnesses}
        for w in witnesses:
            cluster.kill(w, "KILL")
        for w in witnesses:
            cluster.start(w)
        after = {w: cluster.metric(w, "tristore_witness_incarnation") for w in witnesses}
        assert all(before[w] != after[w] for w in witnesses), "a restart is a new incarnation"
        # The operator sees the same through admin status.
        shown = {w.name: w for w in c.cluster_status().witnesses}
        assert set(shown) == set(witnesses)
        assert all(shown[w].up and shown[w].incarnation == int(after[w]) for w in witnesses)
        text = cluster.cli("admin", "status").stdout.decode()
        assert all(f"{int(after[w]):x}" in text for w in witnesses)

        # The witnesses know nothing now: every read falls back to the replicas
        # and still sees the newest acknowledged version, never an older one.
        nodes = [n.name for n in cluster.config.nodes]
        unknown = _sum(cluster, nodes, "tristore_witness_unknown_answers_total")
        with pytest.raises(errors.NoSuchKey):
            c.get_object(BUCKET, "k0")
        for i in range(1, 30):
            assert c.get_object(BUCKET, f"k{i}") == f"v2-{i}".encode()
        assert _sum(cluster, nodes, "tristore_witness_unknown_answers_total") > unknown
        listed = {e.key for e in c.list_objects(BUCKET).contents}
        assert listed == {f"k{i}" for i in range(1, 30)}
        # Reads re-taught the witnesses: each key is known at a majority of its
        # group again. Which majority is up to timing: a member whose new
        # incarnation the reading coordinator had not heard of yet refuses
        # that record (the incarnation fence), and the others make the majority.
        (group,) = cluster.config.witness_groups
        known = _sum(cluster, [w.name for w in group], "tristore_witness_keys")
        assert known >= (len(group) // 2 + 1) * 29


def test_the_incarnation_fence_keeps_a_late_record_from_a_stale_read(
    own_cluster: DevCluster,
) -> None:
    """A record sent before every witness restarted, of a stamp older than
    one they acknowledged, arrives after the restart (queued behind a call to
    the dead process, or from a slow coordinator: a timing no test can make
    from outside, so it is sent by hand, as the coordinator that wrote the
    older version sends it). The new incarnations refuse it: they stay
    unknown, and a coordinator that cached the older version reads the
    newest. Taken (what a witness without the fence does: the same record
    under the incarnation it has), it makes the witnesses vouch for the older
    stamp, and that coordinator serves the older version from its cache
    after the newer one was acknowledged: a stale read (docs/architecture.md,
    fenced records)."""
    cluster = own_cluster
    cfg = cluster.config
    witnesses = _witness_names(cluster)
    grpc_of = {n.name: n.grpc for n in cfg.nodes}
    first, writer, b, c = "a1", "a2", "b1", "c1"
    key = "fenced"
    wkey = witness_key(BUCKET, key)
    hits = "tristore_cache_hits_total"

    # v1 through a1; read through b1 and c1, each of which caches it and then
    # serves it from its cache (the key and its bucket: two hits a GET) while
    # the witnesses vouch for it.
    with cluster.client(grpc_of[first]) as cl:
        cl.create_bucket(BUCKET)
        cl.put_object(BUCKET, key, b"v1")
    homes = cluster.homes(BUCKET, key)
    s1 = cluster.node_versions(homes[0])[(BUCKET, key)].stamp
    for reader in (b, c):
        with cluster.client(grpc_of[reader]) as cl:
            assert cl.get_object(BUCKET, key) == b"v1"
            before = cluster.metric(reader, hits)
            for _ in range(3):
                assert cl.get_object(BUCKET, key) == b"v1"
        assert cluster.metric(reader, hits) >= before + 6, reader

    # v2 through a2: acknowledged, so in all three AZs and at a witness majority.
    with cluster.client(grpc_of[writer]) as cl:
        cl.put_object(BUCKET, key, b"v2")
    s2 = cluster.node_versions(homes[0])[(BUCKET, key)].stamp
    assert s2 > s1
    assert all(cluster.node_versions(h)[(BUCKET, key)].stamp == s2 for h in homes)
    told = {w: _on_pipe(cluster, w, first, wkey).check for w in witnesses}
    assert sum(told[w].stamps == s2.encode() for w in witnesses) >= 2, told
    old = {w: told[w].incarnation for w in witnesses}

    # Every witness restarted: new incarnations that know nothing. v1's late
    # record, fenced by the incarnations a1 knew when v1 began, is refused
    # by each, which still answers unknown for the key.
    new = _restart_witnesses(cluster)
    assert all(new[w] != old[w] for w in witnesses), "a restart is a new incarnation"
    for w in witnesses:
        refused = cluster.metric(w, "tristore_witness_records_refused_total")
        resp = _on_pipe(cluster, w, first, wkey, record=(s1, old[w]))
        assert list(resp.record.refused) == [0], (w, resp)
        assert resp.record.incarnation == new[w]
        assert resp.check.stamps == UNKNOWN, (w, resp)
        assert cluster.metric(w, "tristore_witness_records_refused_total") == refused + 1
    # So b1, which cached v1, reads the replicas: v2. So does every other
    # coordinator but c1, kept with v1 cached for what follows.
    with cluster.client(grpc_of[b]) as cl:
        assert cl.get_object(BUCKET, key) == b"v2"
    for n in cfg.nodes:
        if n.name != c:
            with cluster.client(n.grpc) as cl:
                assert cl.get_object(BUCKET, key) == b"v2", n.name

    # Without the fence: every witness restarted again, and the same late
    # record under the incarnation each has now is taken...
    new = _restart_witnesses(cluster)
    for w in witnesses:
        recorded = cluster.metric(w, "tristore_witness_records_total")
        resp = _on_pipe(cluster, w, first, wkey, record=(s1, new[w]))
        assert list(resp.record.refused) == [], (w, resp)
        assert resp.check.stamps == s1.encode(), (w, resp)
        assert cluster.metric(w, "tristore_witness_records_total") == recorded + 1

    def sees_every_witness(node: str) -> bool:
        with cluster.client(grpc_of[node]) as cl:
            shown = {x.name: x for x in cl.cluster_status().witnesses}
        return all(shown[w].up and shown[w].incarnation == new[w] for w in witnesses)

    # (c1 reconnected to the restarted witnesses: a check that failed would
    # send its read to the replicas, and the test would prove nothing.)
    wait_until(lambda: sees_every_witness(c), 30, what=f"{c} to reach every new witness")
    # ...so the witnesses vouch for v1's stamp, and c1 serves v1 from its
    # cache, after v2 was acknowledged and read: the stale read the fence
    # stands against. (No replica holds v1 as current any more: only a cache
    # could answer it.) b1, whose cache holds v2, serves v2 from it.
    before = cluster.metric(c, hits)
    with cluster.client(grpc_of[c]) as cl:
        assert cl.get_object(BUCKET, key) == b"v1"
    assert cluster.metric(c, hits) >= before + 1
    with cluster.client(grpc_of[b]) as cl:
        assert cl.get_object(BUCKET, key) == b"v2"


def test_an_interrupted_write_is_finished_by_the_next_read(own_cluster: DevCluster) -> None:
    cluster = own_cluster
    # The first writes go through a1 and every read through b2: a coordinator
    # that cached "old" may rightly serve it (the failed write's outcome is
    # unknown); b2 has nothing cached, so its read finds the newer version.
    writer = cluster.config.node_named("a1").grpc
    reader = cluster.config.node_named("b2").grpc
    with cluster.client(writer) as c:
        c.create_bucket(BUCKET)
        c.put_object(BUCKET, "half", b"old")
        c.put_object(BUCKET, "half-big", b"O" * (2 * 1024 * 1024))
    # With AZ c gone, a write reaches AZs a and b and then fails: it is on disk
    # with a stamp the witness never saw.
    cluster.kill("c1", "KILL")
    cluster.kill("c2", "KILL")
    endpoint = ",".join(n.grpc for n in cluster.config.nodes if n.az != "az-c")
    with cluster.client(endpoint) as c:
        with pytest.raises(errors.QuorumUnavailable):
            c.put_object(BUCKET, "half", b"new")
        with pytest.raises(errors.QuorumUnavailable):
            c.put_object(BUCKET, "half-big", b"N" * (2 * 1024 * 1024))
    cluster.start("c1")
    cluster.start("c2")
    homes_c = {
        k: next(h for h in cluster.homes(BUCKET, k) if h.startswith("c"))
        for k in ("half", "half-big")
    }
    # AZ c still holds the old version (on its home, or as a hint on the other node).
    in_c = {**cluster.node_versions("c2"), **cluster.node_versions("c1")}
    assert in_c[(BUCKET, "half")].size == len(b"old")

    nodes = [n.name for n in cluster.config.nodes]
    write_backs = _sum(cluster, nodes, "tristore_write_backs_total")

    def readable() -> bool:
        try:
            with cluster.client(reader) as c:
                c.head_object(BUCKET, "half")
            return True
        except errors.TristoreError:
            return False

    # AZ c back for every coordinator before anything reads: a read while one
    # still takes AZ c for down would finish the write in AZs a and b only
    # (docs/architecture.md, "Limits of what is built").
    cluster.wait_every_node_seen_up()
    wait_until(readable, 30, what="AZ c to be back")
    with cluster.client(reader) as c:
        # The failed write's outcome was unknown; once a read returned it, it
        # is the value for good, on every AZ, for every reader.
        first = c.get_object(BUCKET, "half")
        assert first in (b"old", b"new")
        assert first == b"new", "the newest version on the replicas is finished, not hidden"
        for _ in range(5):
            assert c.get_object(BUCKET, "half") == first
        # A streamed body is refused before any byte is staged when an AZ has
        # no node up: nothing of it was written, so the old body stands.
        big = c.get_object(BUCKET, "half-big")
        assert big == b"O" * (2 * 1024 * 1024)
    assert _sum(cluster, nodes, "tristore_write_backs_total") > write_backs
    # The write-back reached AZ c: on its home directly, or through a hint on
    # the other node of the AZ if the home still looked down at that moment.
    import hashlib

    cluster.wait_hints_drained()

    held = cluster.node_versions(homes_c["half"])[(BUCKET, "half")]
    assert held.etag == hashlib.md5(b"new").hexdigest()
    held_big = cluster.node_versions(homes_c["half-big"])[(BUCKET, "half-big")]
    assert held_big.etag == hashlib.md5(b"O" * (2 * 1024 * 1024)).hexdigest()


def test_a_read_the_witness_cannot_vouch_for_needs_two_azs(own_cluster: DevCluster) -> None:
    """A read that must finish a write relies on the AZs that answer: with one
    of the key's AZs answering it is refused, not finished there alone (a
    version finished in one AZ could vanish from a later read that hears
    another AZ and a witness that missed its record: the protocol model's
    trace). A read the witness vouches for needs only one AZ."""
    cluster = own_cluster
    with cluster.client(cluster.config.node_named("a1").grpc) as c:
        c.create_bucket(BUCKET)
        c.put_object(BUCKET, "settled", b"acknowledged")
        c.put_object(BUCKET, "half", b"old")
    # With AZ c gone, a write reaches AZs a and b and fails: unfinished.
    cluster.kill("c1", "KILL")
    cluster.kill("c2", "KILL")
    a_and_b = ",".join(n.grpc for n in cluster.config.nodes if n.az != "az-c")
    with cluster.client(a_and_b) as c, pytest.raises(errors.QuorumUnavailable):
        c.put_object(BUCKET, "half", b"new")
    cluster.kill("b1", "KILL")
    cluster.kill("b2", "KILL")
    # a2 has cached nothing of these keys: its reads go to the AZs.
    reader = cluster.config.node_named("a2").grpc
    with cluster.client(reader) as c:
        assert c.get_object(BUCKET, "settled") == b"acknowledged"
        with pytest.raises(errors.QuorumUnavailable) as info:
            c.get_object(BUCKET, "half")
        assert "needs 2 of the key's 3 AZs" in str(info.value)
    assert cluster.node_versions("a1").get((BUCKET, "half")) or cluster.node_versions("a2").get(
        (BUCKET, "half")
    )
    cluster.start("b1")
    cluster.start("b2")

    def finished() -> bytes | None:
        try:
            with cluster.client(reader) as c:
                return c.get_object(BUCKET, "half")
        except errors.QuorumUnavailable:
            return None  # AZ b not seen up yet

    wait_until(lambda: finished() is not None, 30, what="AZ b to be back for a2")
    # Two AZs answer: the unfinished write is finished in both and returned,
    # and stays the value.
    with cluster.client(reader) as c:
        assert c.get_object(BUCKET, "half") == b"new"
    cluster.start("c1")
    cluster.start("c2")
    with cluster.client(a_and_b) as c:
        assert c.get_object(BUCKET, "half") == b"new"


def test_one_witness_down_changes_nothing_two_down_fail_writes_clearly(
    own_cluster: DevCluster,
) -> None:
    cluster = own_cluster
    w1, w2, _w3 = _witness_names(cluster)
    with cluster.client() as c:
        c.create_bucket(BUCKET)
        c.put_object(BUCKET, "k", b"1")
        cluster.kill(w1, "KILL")
        c.put_object(BUCKET, "k", b"2")
        assert c.get_object(BUCKET, "k") == b"2"
        assert [e.key for e in c.list_objects(BUCKET).contents] == ["k"]
        cluster.kill(w2, "KILL")
        with pytest.raises(errors.QuorumUnavailable) as info:
            c.put_object(BUCKET, "k", b"3")
        assert "witness group" in str(info.value)
        cluster.start(w1)
        cluster.start(w2)
        # w1 and w2 came back empty: the group answers "unknown" until reads or
        # writes teach it again, and nothing older than "3" (which is durable on
        # the nodes, its outcome unknown to the client) may be returned now.
        value = c.get_object(BUCKET, "k")
        assert value in (b"2", b"3")
        c.put_object(BUCKET, "k", b"4")
        assert c.get_object(BUCKET, "k") == b"4"


def test_a_deleted_bucket_is_gone_through_every_coordinator_at_once(cluster: DevCluster) -> None:
    """Bucket existence is read like any key: no coordinator keeps a stale 'yes'."""
    bucket = "short-lived"
    first, last = cluster.config.nodes[0].grpc, cluster.config.nodes[-1].grpc
    with cluster.client(first) as a, cluster.client(last) as b:
        a.create_bucket(bucket)
        a.put_object(bucket, "k", b"v")  # coordinator a has now seen the bucket
        assert [e.key for e in a.list_objects(bucket).contents] == ["k"]
        b.delete_object(bucket, "k")
        b.delete_bucket(bucket)
        with pytest.raises(errors.NoSuchBucket):
            a.list_objects(bucket)
        with pytest.raises(errors.NoSuchBucket):
            a.put_object(bucket, "k", b"v")
        with pytest.raises(errors.NoSuchBucket):
            a.get_object(bucket, "k")
        with pytest.raises(errors.NoSuchBucket):
            a.head_object(bucket, "k")
        assert bucket not in {x.name for x in a.list_buckets()}
        # Created again through b, it is there through a at once.
        b.create_bucket(bucket)
        assert a.list_objects(bucket).contents == []


def test_a_read_the_witness_cannot_vouch_for_asks_every_node_of_each_az(
    own_cluster: DevCluster,
) -> None:
    """A key's homes back from the dead before they collected their hints,
    and witnesses that forgot the key: the read asks every node of each AZ,
    so it finds the acknowledged version the fallbacks hold, not the older
    one the homes answer. Then, with the fallbacks gone, the AZs are only
    partly heard: QuorumUnavailable naming them, never the older version
    (docs/architecture.md, the read path)."""
    cluster = own_cluster
    key = "hinted"
    homes = cluster.homes(BUCKET, key)
    fallbacks = [
        next(
            n.name
            for n in cluster.config.nodes
            if n.az == cluster.config.node_named(h).az and n.name != h
        )
        for h in homes
    ]
    nodes = [n.name for n in cluster.config.nodes]

    def all_up_for(name: str) -> bool:
        return cluster.metric(name, "tristore_cluster_nodes_up") == len(nodes)

    # The fallbacks hand their hints back only after 10 minutes.
    for f in fallbacks:
        cluster.kill(f, "KILL")
        cluster.start(f, extra_env={"TRISTORE_NODE_HINT_INTERVAL_S": "600"})
    with cluster.client(cluster.config.node_named(homes[0]).grpc) as c:
        c.create_bucket(BUCKET)
        c.put_object(BUCKET, key, b"old")
    for h in homes:
        cluster.kill(h, "KILL")
    with cluster.client(cluster.config.node_named(fallbacks[0]).grpc) as c:
        c.put_object(BUCKET, key, b"new")  # on the fallbacks, with hints
    for h in homes:
        cluster.start(h)
    wait_until(lambda: all(all_up_for(n) for n in nodes), 30, what="every node to see every node")
    assert all(cluster.node_versions(h)[(BUCKET, key)].size == len(b"old") for h in homes)
    for w in _witness_names(cluster):
        cluster.kill(w, "KILL")
        cluster.start(w)

    # A home coordinates: one node an AZ would be the three homes, all "old".
    reader = cluster.config.node_named(homes[1]).grpc
    with cluster.client(reader) as c:
        assert c.get_object(BUCKET, key) == b"new"
        assert c.get_object(BUCKET, key) == b"new"

    # Every AZ without the node that holds its hint: none is heard whole.
    for f in fallbacks:
        cluster.kill(f, "KILL")
    for w in _witness_names(cluster):
        cluster.kill(w, "KILL")
        cluster.start(w)
    with (
        cluster.client(reader, retry=RetryPolicy(max_attempts=1)) as c,
        pytest.raises(errors.QuorumUnavailable) as info,
    ):
        c.get_object(BUCKET, key)
    message = str(info.value)
    assert "needs 2 of the key's 3 AZs" in message, message
    assert sum(f"AZ {cluster.config.node_named(h).az}" in message for h in homes) >= 2, message
    for f in fallbacks:
        cluster.start(f)
    cluster.wait_hints_drained()

    def read_back() -> bytes | None:
        try:
            with cluster.client(reader) as c:
                return c.get_object(BUCKET, key)
        except errors.QuorumUnavailable:
            return None  # the fallbacks not seen up yet

    wait_until(lambda: read_back() is not None, 30, what="the fallbacks to be back for the reader")
    assert read_back() == b"new"


def test_a_hung_witness_is_asked_last_by_checks(own_cluster: DevCluster) -> None:
    """A witness that stops answering (SIGSTOP) is asked last by the checks of
    the nodes that find it so: reads and writes go on through the other two,
    whose records hold every key, without queueing more checks for it
    (node/witness_client.py)."""
    cluster, bucket, ops = own_cluster, "hung-witness", 30
    names = _witness_names(cluster)
    node = cluster.config.nodes[0]
    # The member this node's checks ask first (its id picks it): one of the two
    # every check of this node would wait on if nothing moved it last.
    hung = names[node.id % len(names)]

    def checks() -> float:
        return cluster.metric(hung, "tristore_witness_checks_total")

    with cluster.client(node.grpc) as c:
        c.create_bucket(bucket)
        for i in range(ops):
            c.put_object(bucket, f"k{i}", b"v")
        before = checks()
        with cluster.paused(hung):
            for i in range(ops):
                assert c.get_object(bucket, f"k{i}") == b"v"
                c.put_object(bucket, f"k{i}", b"while hung")
        # Once resumed, it answers what was sent to it before the node found it
        # hung: the one message in flight then (a key and its bucket's record),
        # not a check for each of the reads and writes that would otherwise
        # each have waited out the hedge on it (15 keys here without that;
        # its count taken once it stands still).
        last: list[float] = []

        def settled() -> bool:
            last.append(checks())
            return len(last) > 1 and last[-1] == last[-2]

        wait_until(settled, 10, interval=0.5, what=f"{hung} to answer what was queued for it")
        assert last[-1] - before <= 2, (before, last)
        assert [c.get_object(bucket, f"k{i}") for i in range(ops)] == [b"while hung"] * ops
