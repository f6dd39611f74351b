"""Cross-cluster replication on two real clusters (`dev up --clusters 2`): rules
and filters, what arrives (same version id, ETag, Last-Modified, metadata, tags),
statuses on both sides, delete markers, per-key order under overwrites, a
replicator SIGKILLed mid-stream, failures reported, lag back to 0 when idle."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.request
from collections import Counter

import pytest

from tests.integration.cluster import DevCluster, all_versions, wait_until
from tests.integration.test_events import collect, start_cursor
from tristore import errors
from tristore.model import ObjectInfo
from tristore.replication import Destination, Rule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REPLICATORS = ("r1", "r2")


def _versioned(c, name: str) -> str:  # type: ignore[no-untyped-def]
    c.create_bucket(name)
    c.put_bucket_versioning(name, "Enabled")
    return name


def _arrived(w, bucket: str, key: str, info: ObjectInfo) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(w.head_object(bucket, key, version_id=info.version_id).etag == info.etag)
    except errors.TristoreError:
        return False


def test_one_way_with_filters_statuses_and_delete_markers(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-src")
        _versioned(w, "rep-dst")
        _versioned(w, "rep-tagged")
        with pytest.raises(errors.InvalidArgument):
            e.put_bucket_replication("rep-src", [Rule("r", (Destination("nowhere", "xyz"),))])
        e.put_bucket_replication(
            "rep-src",
            [
                Rule(
                    "logs", (Destination("west", "rep-dst"),), prefix="logs/", delete_markers=True
                ),
                Rule(
                    "tagged",
                    (Destination("west", "rep-tagged", storage_class="GLACIER"),),
                    tags={"copy": "yes"},
                ),
            ],
        )
        assert [r.id for r in e.get_bucket_replication("rep-src")] == ["logs", "tagged"]
        with pytest.raises(errors.InvalidRequest):
            e.put_bucket_versioning("rep-src", "Suspended")

        sent = {
            f"logs/{i}": e.put_object(
                "rep-src", f"logs/{i}", os.urandom(100 + i), "text/plain", {"n": str(i)}
            )
            for i in range(10)
        }
        sent["logs/big"] = e.put_object("rep-src", "logs/big", os.urandom(3 * 1024 * 1024))
        # A multipart object: its ETag is of its parts' MD5s (no MD5 of the
        # whole body is computed, on either side), its checksum of its parts'.
        mp_parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
        up = e.create_multipart_upload("rep-src", "logs/mp")
        done = [
            e.upload_part("rep-src", "logs/mp", up.upload_id, n, d)
            for n, d in enumerate(mp_parts, 1)
        ]
        sent["logs/mp"] = e.complete_multipart_upload("rep-src", "logs/mp", up.upload_id, done)
        assert sent["logs/mp"].etag.endswith("-2")
        tagged = e.put_object("rep-src", "data/t", b"tagged", tags={"copy": "yes"})
        untouched = e.put_object("rep-src", "data/plain", b"stays home")
        assert e.head_object("rep-src", "data/plain").replication_status == ""

        wait_until(
            lambda: (
                all(_arrived(w, "rep-dst", k, i) for k, i in sent.items())
                and _arrived(w, "rep-tagged", "data/t", tagged)
            ),
            60,
            what="every matching version on west",
        )
        for key, info in sent.items():
            got = w.head_object("rep-dst", key)
            assert (got.version_id, got.etag, got.last_modified, got.size) == (
                info.version_id,
                info.etag,
                info.last_modified,
                info.size,
            )
            # The flexible checksum travels with the version (CRC-64/NVME here).
            assert (got.checksum_algorithm, got.checksum) == ("crc64nvme", info.checksum)
            assert got.replication_status == "REPLICA"
        assert w.get_object("rep-dst", "logs/3") == e.get_object("rep-src", "logs/3")
        assert w.get_object("rep-dst", "logs/mp") == b"".join(mp_parts)
        assert w.head_object("rep-dst", "logs/3").metadata == {"n": "3"}
        assert w.head_object("rep-tagged", "data/t").storage_class == "GLACIER"
        assert w.get_object_tagging("rep-tagged", "data/t").tags == {"copy": "yes"}
        for bucket, key in (("rep-dst", "data/plain"), ("rep-tagged", "data/plain")):
            with pytest.raises(errors.NoSuchKey):
                w.head_object(bucket, key)
        assert untouched.version_id

        def completed() -> bool:
            return all(e.head_object("rep-src", k).replication_status == "COMPLETED" for k in sent)

        wait_until(completed, 30, what="COMPLETED on the source versions")

        # A delete marker follows the rule that asks for it ...
        marker = e.delete_object("rep-src", "logs/1")
        wait_until(lambda: _gone(w, "rep-dst", "logs/1"), 30, what="the delete marker on west")
        versions = w.list_object_versions("rep-dst", prefix="logs/1").versions
        assert any(v.version_id == marker.version_id and v.delete_marker for v in versions)
        # ... and deleting a specific version is never replicated (S3). A later
        # write of the key comes after the delete in every change log holding
        # the key: once it is on west and east's replicators have nothing in
        # flight, a delete they had taken up would have landed.
        e.delete_object("rep-src", "logs/2", version_id=sent["logs/2"].version_id)
        later = e.put_object("rep-src", "logs/2", b"later")
        wait_until(lambda: _arrived(w, "rep-dst", "logs/2", later), 30, what="logs/2's next write")
        wait_until(east.replicators_idle, 30, what="east's replicators to finish")
        kept = w.head_object("rep-dst", "logs/2", version_id=sent["logs/2"].version_id)
        assert kept.etag == sent["logs/2"].etag


def _gone(w, bucket: str, key: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        w.head_object(bucket, key)
        return False
    except errors.NoSuchKey:
        return True


def test_overwrites_arrive_in_order_and_a_killed_replicator_loses_nothing(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-order")
        _versioned(w, "rep-order-dst")
        e.put_bucket_replication(
            "rep-order", [Rule("all", (Destination("west", "rep-order-dst"),))]
        )
        seen: list[str] = []
        stop = threading.Event()

        def watch() -> None:
            with west.client() as ww:
                for _ in range(2000):
                    if stop.is_set():
                        return
                    with contextlib.suppress(errors.TristoreError):
                        seen.append(ww.head_object("rep-order-dst", "hot").version_id)
                    time.sleep(0.01)

        # r1's statuses wait long to share a call, so the kill below finds some
        # not recorded yet for versions already applied.
        east.kill("r1", "KILL")
        east.start("r1", extra_env={"TRISTORE_REPLICATOR_STATUS_LINGER_S": "2"})
        watcher = threading.Thread(target=watch)
        watcher.start()
        written: list[ObjectInfo] = []
        others: dict[str, ObjectInfo] = {}
        try:
            for i in range(60):
                written.append(e.put_object("rep-order", "hot", f"v{i}".encode()))
                others[f"k{i}"] = e.put_object("rep-order", f"k{i}", f"o{i}".encode())
                if i == 20:
                    east.kill("r1", "KILL")
                if i == 40:
                    east.start("r1")
            wait_until(
                lambda: (
                    _arrived(w, "rep-order-dst", "hot", written[-1])
                    and w.head_object("rep-order-dst", "hot").version_id == written[-1].version_id
                ),
                60,
                what="the last overwrite to be current on west",
            )
            wait_until(
                lambda: all(_arrived(w, "rep-order-dst", k, i) for k, i in others.items()),
                60,
                what="every key written while r1 was down",
            )
        finally:
            stop.set()
            watcher.join(30)
        # Version ids sort by their stamps: west's current version never went back.
        assert seen == sorted(seen), "west showed an older version after a newer one"
        assert w.get_object("rep-order-dst", "hot") == b"v59"
        listed = [
            v.version_id for v in w.list_object_versions("rep-order-dst", prefix="hot").versions
        ]
        assert sorted(listed) == sorted(i.version_id for i in written)

        # A status r1 had not recorded when it was killed (they wait to share
        # a call) is recorded after its restart: its durable cursor had not
        # passed the versions, so it sends them again.
        def completed() -> bool:
            return all(
                e.head_object("rep-order", k, version_id=i.version_id).replication_status
                == "COMPLETED"
                for k, i in [*(("hot", i) for i in written), *others.items()]
            )

        wait_until(completed, 60, what="COMPLETED on every source version, r1's too")
        # Fresh writes are pipelined: no batch of them waited for its statuses.
        assert east.metric("r1", "tristore_replication_paced_batches_total") == 0


def test_failures_are_reported_and_lag_returns_to_zero(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-fail")
        w.create_bucket("rep-unversioned")  # a destination refuses replicas without versioning
        e.put_bucket_replication(
            "rep-fail", [Rule("bad", (Destination("west", "rep-unversioned"),))]
        )
        e.put_object("rep-fail", "k", b"x")
        wait_until(
            lambda: e.head_object("rep-fail", "k").replication_status == "FAILED",
            60,
            what="FAILED after the attempts run out",
        )
        parked = sum(east.metric(r, "tristore_replication_dlq_entries") for r in REPLICATORS)
        assert parked >= 1
    # Idle and caught up: every replicator's lag is 0 again.
    wait_until(
        lambda: all(east.metric(r, "tristore_replication_lag_seconds") == 0 for r in REPLICATORS),
        30,
        what="lag back to 0",
    )


def test_two_way_replicas_are_not_sent_back(pair: tuple[DevCluster, DevCluster]) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-both")
        _versioned(w, "rep-both")
        e.put_bucket_replication("rep-both", [Rule("to-west", (Destination("west", "rep-both"),))])
        w.put_bucket_replication("rep-both", [Rule("to-east", (Destination("east", "rep-both"),))])
        from_east = e.put_object("rep-both", "from-east", b"e")
        from_west = w.put_object("rep-both", "from-west", b"w")
        wait_until(
            lambda: (
                _arrived(w, "rep-both", "from-east", from_east)
                and _arrived(e, "rep-both", "from-west", from_west)
            ),
            60,
            what="each side's write on the other",
        )
        # A replica is stored with no destination at all (in the same commit
        # that applies it): one queued to go back would show one, PENDING
        # until sent and COMPLETED after, so this needs no waiting.
        for c, key in ((w, "from-east"), (e, "from-west")):
            (replica,) = c.list_object_versions("rep-both", prefix=key).versions
            assert replica.replication_status == "REPLICA", replica
            assert replica.replication_targets == {}, replica
        for c, key in ((e, "from-east"), (w, "from-west")):
            (source,) = c.list_object_versions("rep-both", prefix=key).versions
            assert len(source.replication_targets) == 1, source  # the other side only


def test_a_replica_is_an_event_on_the_destination(pair: tuple[DevCluster, DevCluster]) -> None:
    """A version replication brings is ObjectCreated:Put on the destination,
    with its version id (its record, stamped here above the source's version
    stamp, has the form of an edit, which is no event): a new key's replica,
    an overwrite's, and an older version arriving after a newer one."""
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-events")
        _versioned(w, "rep-events")
        start = start_cursor(w, "rep-events")
        e.put_bucket_replication(
            "rep-events", [Rule("to-west", (Destination("west", "rep-events"),))]
        )
        written = [e.put_object("rep-events", k, k.encode()) for k in ("a", "b", "a")]
        expected = {("ObjectCreated:Put", i.key, i.version_id) for i in written}
        events, _ = collect(
            w,
            "rep-events",
            lambda got: expected <= {(x.name, x.key, x.version_id) for x in got},
            cursor=start,
            timeout=60,
        )
        assert expected <= {(x.name, x.key, x.version_id) for x in events}


def _current(c, bucket: str, key: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return str(c.head_object(bucket, key).version_id)
    except errors.TristoreError:
        return None


def test_kills_on_both_sides_during_load_then_everything_converges(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """A source node SIGKILLed, then a whole destination AZ, then a witness on
    each side, while writes go on: every version east acknowledged is still
    there with its body, on east and on west, and `replication verify` finds
    no difference. A PUT may fail only as a fault explains, and few do."""
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-kill")
        _versioned(w, "rep-kill-dst")
        e.put_bucket_replication("rep-kill", [Rule("all", (Destination("west", "rep-kill-dst"),))])
        last: dict[str, ObjectInfo] = {}
        acked: dict[tuple[str, str], bytes] = {}  # (key, version id) -> body
        failed: Counter[str] = Counter()
        try:
            for i in range(90):
                key = f"k{i % 30}"
                try:
                    last[key] = e.put_object("rep-kill", key, f"{i}".encode())
                except errors.TristoreError as exc:  # unacknowledged: its outcome is unknown
                    failed[exc.code] += 1
                else:
                    acked[(key, last[key].version_id)] = f"{i}".encode()
                if i == 10:
                    east.kill("b1", "KILL")
                if i == 30:
                    east.start("b1")
                if i == 40:
                    west.kill("c1", "KILL")
                    west.kill("c2", "KILL")  # west cannot take a write until az-c is back
                if i == 70:
                    west.start("c1")
                    west.start("c2")
                if i == 75:
                    east.kill("w1", "KILL")
                    west.kill("w2", "KILL")
                if i == 85:
                    east.start("w1")
                    west.start("w2")
        finally:
            for name, cluster, role in (
                ("b1", east, "node"),
                ("c1", west, "node"),
                ("c2", west, "node"),
                ("w1", east, "witness"),
                ("w2", west, "witness"),
            ):
                if name not in cluster.up_names(role):
                    cluster.start(name)
        assert len(last) == 30
        assert set(failed) <= {"ServiceUnavailable", "QuorumUnavailable", "SlowDown"}, failed
        assert sum(failed.values()) <= 15, failed  # east lost one node and a witness, no AZ
        # A PUT that failed as a node died may still have landed (its outcome is
        # unknown, and a read finishes it): east's current version, not the last
        # acknowledged one, is what west must converge on.
        wait_until(
            lambda: all(
                _current(w, "rep-kill-dst", k) == _current(e, "rep-kill", k) is not None
                for k in last
            ),
            120,
            what="west to converge on east's current version of every key",
        )
        wait_until(
            # (West may also hold a version a failed PUT left on some of east's AZs.)
            lambda: all_versions(e, "rep-kill") <= all_versions(w, "rep-kill-dst"),
            60,
            what="every version east holds to be on west",
        )

        def verified() -> bool:
            proc = east.cli(
                "replication", "verify", "s3://rep-kill", "--to-endpoint",
                f"west={west.endpoint}", check=False,
            )  # fmt: skip
            return proc.returncode == 0 and b"no differences" in proc.stdout

        wait_until(verified, 60, interval=1, what="replication verify to find no difference")
        for (key, vid), body in acked.items():
            assert e.get_object("rep-kill", key, version_id=vid) == body, (key, vid)
            assert w.get_object("rep-kill-dst", key, version_id=vid) == body, (key, vid)


def test_one_version_to_several_destinations_with_a_status_each(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rep-fan")
        _versioned(w, "rep-fan-a")
        _versioned(w, "rep-fan-b")
        w.create_bucket("rep-fan-plain")  # no versioning: it refuses replicas
        dests = ("west/rep-fan-a", "west/rep-fan-b", "west/rep-fan-plain")
        e.put_bucket_replication(
            "rep-fan",
            [Rule("fan", tuple(Destination(*d.split("/")) for d in dests))],
        )
        paced = _paced(east)
        edits = _status_edits(east)
        info = e.put_object("rep-fan", "k", b"to three places")
        for i in range(FAN_MORE):
            e.put_object("rep-fan", f"m/{i}", b"x")
        for bucket in ("rep-fan-a", "rep-fan-b"):
            wait_until(
                lambda b=bucket: _arrived(w, b, "k", info), 60, what=f"the version in {bucket}"
            )

        def entry():  # type: ignore[no-untyped-def]
            (v,) = e.list_object_versions("rep-fan", prefix="k").versions
            return v

        wait_until(
            lambda: entry().replication_targets.get("west/rep-fan-plain", "").startswith("FAILED"),
            60,
            what="the refusing destination FAILED",
        )
        v = entry()
        assert v.replication_targets["west/rep-fan-a"] == "COMPLETED"
        assert v.replication_targets["west/rep-fan-b"] == "COMPLETED"
        assert "versioning" in v.replication_targets["west/rep-fan-plain"]
        assert v.replication_status == "FAILED"  # S3: FAILED when any destination failed
        assert e.head_object("rep-fan", "k").replication_status == "FAILED"
        status = east.cli("replication", "status", "s3://rep-fan/k").stdout.decode()
        for d in dests:
            assert d in status

        def settled() -> bool:
            listed = e.list_object_versions("rep-fan", prefix="m/").versions
            return len(listed) == FAN_MORE and all(
                [v.replication_targets.get(d, "")[:6] for d in dests]
                == ["COMPLE", "COMPLE", "FAILED"]
                for v in listed
            )

        wait_until(settled, 60, what="every version's three statuses recorded")
        # A status recorded while other destinations are PENDING changes the
        # record, and the change log has it again: that is no requeue, and
        # the writes' batches went unpaced.
        assert _paced(east) == paced
        # The two COMPLETED of a version share one write (their replicator
        # sends them in one call): no record PENDING for the other is logged
        # between them and sent again. One write each, and the versions sent
        # again, made 94 here; together, 47.
        assert _status_edits(east) - edits < 3 * (FAN_MORE + 1)


#: Versions beside "k" that go to three destinations, one refusing.
FAN_MORE = 20


def _status_edits(cluster: DevCluster) -> float:
    """Status updates the cluster's nodes began (tristore_update_guesses_total)."""
    return sum(
        cluster.metric(n.name, "tristore_update_guesses_total") for n in cluster.config.nodes
    )


def _paced(cluster: DevCluster) -> float:
    """Change-log batches the cluster's replicators paced (requeues)."""
    return sum(
        cluster.metric(r.name, "tristore_replication_paced_batches_total")
        for r in cluster.config.replicators
    )


def _read_log_answers(cluster: DevCluster) -> float:
    """ReadLog calls the cluster's nodes answered (replicators tailing their logs)."""
    total = 0.0
    for n in cluster.config.nodes:
        with urllib.request.urlopen(f"http://{n.metrics}/metrics", timeout=5) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith("tristore_rpc_handled_total{") and 'method="ReadLog"' in line:
                    total += float(line.rsplit(" ", 1)[1])
    return total


def test_writes_nobody_replicates_cost_the_replicators_nothing(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    # Replicators read only change-log entries with a version awaiting
    # replication (the node's index of them): a stream of writes to a bucket
    # without rules wakes no replicator and moves no entry between processes.
    east, west = pair
    with east.client() as e, west.client() as w:
        e.create_bucket("no-rules")
        _versioned(e, "some-rules")
        _versioned(w, "some-rules-dst")
        e.put_bucket_replication(
            "some-rules", [Rule("all", (Destination("west", "some-rules-dst"),))]
        )
        # Keys of the replicated bucket whose homes cover every node.
        probes: list[str] = []
        covered: set[str] = set()
        for i in range(200):
            homes = set(east.homes("some-rules", f"p{i}"))
            if not homes <= covered:
                probes.append(f"p{i}")
                covered |= homes
        assert covered == {n.name for n in east.config.nodes}
        before = _read_log_answers(east)
        for i in range(60):
            e.put_object("no-rules", f"k{i}", b"x" * 100)
        # Then a write every node must hand its replicators: each log has it
        # after the 60, so once all have arrived every replicator has been
        # answered past them.
        sent = [e.put_object("some-rules", k, b"y") for k in probes]
        wait_until(
            lambda: all(_arrived(w, "some-rules-dst", i.key, i) for i in sent),
            60,
            what="the writes that are replicated",
        )
        after = _read_log_answers(east)
    # Per (node, replicator): a long poll that happened to end meanwhile, and
    # the answer with the probe's entry (each key on 3 nodes, the nodes covered
    # once or twice); one answer per write would be 60 and more.
    bound = len(east.config.nodes) * len(REPLICATORS) + 3 * len(probes) * len(REPLICATORS)
    assert after - before <= bound, (before, after, bound)


def _creates_refused(cluster: DevCluster) -> float:
    return sum(
        cluster.metric(n.name, "tristore_creates_refused_total") for n in cluster.config.nodes
    )


def test_a_replica_of_a_key_the_witnesses_do_not_know_is_tried_as_a_create(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    # A replica of a key new at the destination is written as a create, which
    # the key's first AZ decides (no read of every node first). One whose key
    # is there but unknown to the witnesses (they restarted) is refused as a
    # create, and the apply goes on as before: read, then last writer wins
    # by version id.
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "rc-src")
        _versioned(w, "rc-dst")
        e.put_bucket_replication("rc-src", [Rule("all", (Destination("west", "rc-dst"),))])
        refused = _creates_refused(west)
        fresh = e.put_object("rc-src", "fresh", b"new on west")
        wait_until(lambda: _arrived(w, "rc-dst", "fresh", fresh), 60, what="the new key")
        assert w.get_object("rc-dst", "fresh") == b"new on west"
        assert _creates_refused(west) == refused  # taken as a create

        with east.paused(*east.replicator_names):
            older = e.put_object("rc-src", "taken", b"east's, older")
            newer = w.put_object("rc-dst", "taken", b"west's own, newer")
            for name in [x.name for x in west.config.witnesses]:
                west.kill(name)
                west.start(name)  # a new incarnation: it knows no key
        wait_until(lambda: _arrived(w, "rc-dst", "taken", older), 60, what="east's older version")
        assert _creates_refused(west) > refused
        # West's own version stays current; east's is there as an older one.
        assert w.get_object("rc-dst", "taken") == b"west's own, newer"
        assert w.head_object("rc-dst", "taken").version_id == newer.version_id
        ids = [v.version_id for v in w.list_object_versions("rc-dst", prefix="taken").versions]
        assert sorted(ids) == sorted([older.version_id, newer.version_id])
