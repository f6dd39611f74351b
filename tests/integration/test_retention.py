"""Bounded state on a real cluster: the change log is trimmed once its entries
are older than ``[node] changelog_retention_s`` (and read by every replicator
that needs them); an event cursor older than what is kept gets CursorExpired,
saying what to do; a fresh subscription carries on. Multipart uploads nobody
ends are aborted once older than ``[node] multipart_expiry_s``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from node import keys
from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tests.integration.test_events import collect, have_all, start_cursor
from tristore import errors
from tristore.events import CREATED_PUT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXPIRY_S = 4


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    env = {
        "TRISTORE_NODE_CHANGELOG_RETENTION_S": "2",
        "TRISTORE_NODE_CHANGELOG_TRIM_INTERVAL_S": "0.5",
        "TRISTORE_NODE_MULTIPART_EXPIRY_S": str(EXPIRY_S),
        "TRISTORE_NODE_MULTIPART_EXPIRY_CHECK_S": "0.3",
    }
    cluster = start_cluster(tmp_path_factory.mktemp("retention"), extra_env=env)
    try:
        yield cluster
    finally:
        cluster.down()


def _entries(cluster: DevCluster) -> float:
    return sum(
        cluster.metric(n.name, "tristore_node_changelog_entries") for n in cluster.config.nodes
    )


def test_change_log_is_trimmed_and_old_cursors_expire(short: DevCluster) -> None:
    with short.client() as c:
        c.create_bucket("trim")
        cursor = start_cursor(c, "trim")
        first = c.put_object("trim", "first", b"1")
        _, cursor = collect(
            c, "trim", have_all({("first", first.version_id, CREATED_PUT)}), cursor=cursor
        )
        for i in range(40):
            c.put_object("trim", f"k{i % 10}", b"x" * i)  # overwrites: the log grows anyway
        # Nothing reads these entries (no replication rules): past the
        # retention every node's log empties.
        wait_until(lambda: _entries(short) == 0, 60, interval=0.5, what="change logs trimmed")
        trimmed = sum(
            short.metric(n.name, "tristore_node_changelog_trimmed_total")
            for n in short.config.nodes
        )
        assert trimmed >= 3 * 41  # every write is in three AZs' logs
        with pytest.raises(errors.CursorExpired, match="subscribe afresh"):
            collect(c, "trim", lambda events: False, cursor=cursor, timeout=20)
        # A new subscription, and one from the start of what is kept, go on.
        fresh = start_cursor(c, "trim")
        after = c.put_object("trim", "after", b"2")
        want = have_all({("after", after.version_id, CREATED_PUT)})
        assert collect(c, "trim", want, cursor=fresh)[0]
        assert collect(c, "trim", want, from_start=True)[0]
        # Objects are untouched by the trim.
        assert c.get_object("trim", "k9") == b"x" * 39
        assert c.get_object("trim", "first") == b"1"


def test_uploads_nobody_ends_are_aborted_once_old(short: DevCluster) -> None:
    with short.client() as c:
        c.create_bucket("stale")
        old = c.create_multipart_upload("stale", "old").upload_id
        c.upload_part("stale", "old", old, 1, b"p" * 1000)
        time.sleep(EXPIRY_S / 2)
        young = c.create_multipart_upload("stale", "young").upload_id

        def listed() -> set[str]:
            return {u.upload_id for u in c.list_multipart_uploads("stale").uploads}

        assert listed() == {old, young}
        deadline = time.monotonic() + 60
        while old in (now := listed()):
            assert time.monotonic() < deadline, "the old upload was never aborted"
            time.sleep(0.2)
        # The same listing that no longer has the old upload still has the
        # young one (created EXPIRY_S / 2 later).
        assert now == {young}
        with pytest.raises(errors.NoSuchUpload):
            c.upload_part("stale", "old", old, 2, b"late")
        with pytest.raises(errors.NoSuchUpload):
            c.list_parts("stale", "old", old)
    expired = sum(
        short.metric(n.name, "tristore_node_multipart_uploads_expired_total")
        for n in short.config.nodes
    )
    assert expired >= 1
    # The part's record is removed on every node that held it.
    for n in short.config.nodes:
        for (bucket, key), v in short.node_versions(n.name).items():
            if bucket == keys.UPLOADS and key.startswith(f"p/{old}/"):
                assert v.deleted, (n.name, key)
