"""Two clusters replicating to each other (and one way) on real processes:
changes of tags and ACL reach the replicas, a change made to a replica comes
back only with replica-modification sync on, and concurrent writes to the same
keys on both sides, under load, settle on the same current version on both."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.integration.cluster import DevCluster, all_versions, wait_until
from tristore import errors
from tristore.model import ObjectInfo
from tristore.replication import Destination, Rule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _versioned(c, name: str) -> str:  # type: ignore[no-untyped-def]
    c.create_bucket(name)
    c.put_bucket_versioning(name, "Enabled")
    return name


def _tags(c, bucket: str, key: str, version_id: str) -> dict[str, str] | None:  # type: ignore[no-untyped-def]
    try:
        return dict(c.get_object_tagging(bucket, key, version_id=version_id).tags)
    except errors.TristoreError:
        return None


def _acl(c, bucket: str, key: str, version_id: str) -> str | None:  # type: ignore[no-untyped-def]
    try:
        return str(c.get_object_acl(bucket, key, version_id=version_id).acl)
    except errors.TristoreError:
        return None


def _status(c, bucket: str, key: str, version_id: str) -> str:  # type: ignore[no-untyped-def]
    return str(c.head_object(bucket, key, version_id=version_id).replication_status)


def _targets(c, bucket: str, key: str, version_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A version's replication status by destination."""
    (v,) = [
        v
        for v in c.list_object_versions(bucket, prefix=key).versions
        if v.key == key and v.version_id == version_id
    ]
    return dict(v.replication_targets)


def _current(c, bucket: str, key: str) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
    try:
        info = c.head_object(bucket, key)
    except errors.TristoreError:
        return None
    return info.version_id, info.etag


def test_tag_and_acl_changes_reach_the_replica_and_never_reorder_versions(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    east, west = pair
    with east.client() as e, west.client() as w:
        _versioned(e, "mod-src")
        _versioned(w, "mod-dst")
        e.put_bucket_replication("mod-src", [Rule("all", (Destination("west", "mod-dst"),))])
        old = e.put_object("mod-src", "k", b"old", tags={"v": "1"})
        new = e.put_object("mod-src", "k", b"new")
        wait_until(
            lambda: (
                _status(e, "mod-src", "k", new.version_id) == "COMPLETED"
                and _status(e, "mod-src", "k", old.version_id) == "COMPLETED"
            ),
            60,
            what="both versions replicated",
        )
        # Tags of the noncurrent version change, then the ACL of the current one.
        e.put_object_tagging("mod-src", "k", {"v": "2", "team": "blue"}, version_id=old.version_id)
        e.put_object_acl("mod-src", "k", "public-read", version_id=new.version_id)
        wait_until(
            lambda: (
                _tags(w, "mod-dst", "k", old.version_id) == {"v": "2", "team": "blue"}
                and _acl(w, "mod-dst", "k", new.version_id) == "public-read"
            ),
            60,
            what="the tag and ACL changes on west",
        )
        wait_until(
            lambda: _status(e, "mod-src", "k", old.version_id) == "COMPLETED",
            60,
            what="the source version COMPLETED again",
        )
        # A change to an older version never makes it current anywhere.
        assert _current(w, "mod-dst", "k") == (new.version_id, new.etag)
        assert _current(e, "mod-src", "k") == (new.version_id, new.etag)
        # Replicas stay replicas; bodies and ids are the source's.
        assert _status(w, "mod-dst", "k", old.version_id) == "REPLICA"
        assert w.get_object("mod-dst", "k", version_id=old.version_id) == b"old"
        # A tag removal travels too.
        e.delete_object_tagging("mod-src", "k", version_id=old.version_id)
        wait_until(
            lambda: _tags(w, "mod-dst", "k", old.version_id) == {},
            60,
            what="the tag removal on west",
        )


def _two_way(e, w, bucket: str, replica_modifications: bool) -> None:  # type: ignore[no-untyped-def]
    _versioned(e, bucket)
    _versioned(w, bucket)
    for c, other in ((e, "west"), (w, "east")):
        c.put_bucket_replication(
            bucket,
            [
                Rule(
                    f"to-{other}",
                    (Destination(other, bucket),),
                    replica_modifications=replica_modifications,
                    delete_markers=True,
                )
            ],
        )


@pytest.mark.parametrize("sync", [True, False], ids=["sync-on", "sync-off"])
def test_a_change_made_to_a_replica_comes_back_only_with_replica_modification_sync(
    pair: tuple[DevCluster, DevCluster], sync: bool
) -> None:
    east, west = pair
    bucket = f"rms-{'on' if sync else 'off'}"
    with east.client() as e, west.client() as w:
        _two_way(e, w, bucket, replica_modifications=sync)
        v = e.put_object(bucket, "doc", b"body", tags={"state": "draft"})
        # On west, and its status back on east (the replicator records it
        # after the apply: it may come a moment later).
        wait_until(
            lambda: (
                _tags(w, bucket, "doc", v.version_id) == {"state": "draft"}
                and _status(e, bucket, "doc", v.version_id) == "COMPLETED"
            ),
            60,
            what="the version on west, COMPLETED on east",
        )
        if sync:
            # East's replicators paused: a change applied from west that were
            # queued to go back would stay PENDING there for this test to see
            # (sent, it would read COMPLETED again and prove nothing).
            with east.paused(*east.replicator_names):
                w.put_object_tagging(bucket, "doc", {"state": "final"}, version_id=v.version_id)
                w.put_object_acl(bucket, "doc", "public-read", version_id=v.version_id)
                wait_until(
                    lambda: (
                        _tags(e, bucket, "doc", v.version_id) == {"state": "final"}
                        and _acl(e, bucket, "doc", v.version_id) == "public-read"
                    ),
                    60,
                    what="west's change of its replica back on east",
                )
                # ... and it does not bounce back: nothing queued for west.
                assert _targets(e, bucket, "doc", v.version_id) == {f"west/{bucket}": "COMPLETED"}
            assert _tags(w, bucket, "doc", v.version_id) == {"state": "final"}
        else:
            w.put_object_tagging(bucket, "doc", {"state": "final"}, version_id=v.version_id)
            w.put_object_acl(bucket, "doc", "public-read", version_id=v.version_id)
            # Not queued for east, in the very commits that made the changes:
            # with nothing queued nothing can travel (a replica has no
            # destination until a change of it is queued for one).
            assert _targets(w, bucket, "doc", v.version_id) == {}
            assert _tags(e, bucket, "doc", v.version_id) == {"state": "draft"}
            assert _acl(e, bucket, "doc", v.version_id) != "public-read"
        for c in (e, w):
            assert len(c.list_object_versions(bucket, prefix="doc").versions) == 1
        assert _status(w, bucket, "doc", v.version_id) == "REPLICA"
        assert _status(e, bucket, "doc", v.version_id) == "COMPLETED"
        # Later changes on the source still win over the replica's older one.
        e.put_object_tagging(bucket, "doc", {"state": "archived"}, version_id=v.version_id)
        wait_until(
            lambda: _tags(w, bucket, "doc", v.version_id) == {"state": "archived"},
            60,
            what="east's newer change on west",
        )


def test_concurrent_writes_on_both_sides_converge_under_load(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """Writers on east and west overwrite (and now and then delete) the same
    few keys at once; when they stop, both clusters hold the same versions and
    the same current version of every key: the newest by version stamp."""
    east, west = pair
    bucket = "both-ways"
    keys = [f"hot{i}" for i in range(6)]
    acked: dict[str, list[ObjectInfo]] = {"east": [], "west": []}
    errors_seen: list[BaseException] = []
    with east.client() as e, west.client() as w:
        _two_way(e, w, bucket, replica_modifications=True)

        def writer(name: str, c) -> None:  # type: ignore[no-untyped-def]
            rnd = random.Random(name)
            deadline = time.monotonic() + 20
            for i in range(60):
                if time.monotonic() > deadline:
                    break
                key = rnd.choice(keys)
                try:
                    if i % 10 == 9:
                        c.delete_object(bucket, key)
                    else:
                        acked[name].append(c.put_object(bucket, key, f"{name}-{i}".encode()))
                except errors.TristoreError as exc:  # a real failure fails the test below
                    errors_seen.append(exc)

        with east.client() as e2, west.client() as w2:
            threads = [
                threading.Thread(target=writer, args=(n, c))
                for n, c in (("east", e2), ("west", w2))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert not errors_seen, errors_seen[:3]
        assert len(acked["east"]) > 20 and len(acked["west"]) > 20

        last: list[object] = []

        def same() -> bool:
            currents = {k: (_current(e, bucket, k), _current(w, bucket, k)) for k in keys}
            ev, wv = all_versions(e, bucket), all_versions(w, bucket)
            last[:] = [
                {k: c for k, c in currents.items() if c[0] != c[1]},
                sorted(ev - wv),
                sorted(wv - ev),
            ]
            return not any(last)

        try:
            wait_until(same, 120, interval=1.0, what="both clusters to hold the same versions")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: currents, east only, west only: {last}") from None
        # Every acknowledged write is on both sides, and the current version of
        # each key is its newest version (delete markers included) on both.
        held = all_versions(e, bucket)
        for infos in acked.values():
            for info in infos:
                assert (info.key, info.version_id, info.etag) in held
        for k in keys:
            versions = [v for v in e.list_object_versions(bucket, prefix=k).versions if v.key == k]
            newest = max(versions, key=lambda v: v.version_id)  # hex of the version stamp
            latest = [v for v in versions if v.is_latest]
            assert [v.version_id for v in latest] == [newest.version_id], k
            if not newest.delete_marker:  # and its body is whole on both sides
                body = e.get_object(bucket, k)
                assert body == w.get_object(bucket, k) and body.decode().endswith(
                    tuple(f"-{i}" for i in range(60))
                )
