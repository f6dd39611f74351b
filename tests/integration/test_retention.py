"""Bounded state on a real cluster: the change log is trimmed once its entries
are older than ``[node] changelog_retention_s`` (and read by every replicator
that needs them); an event cursor older than what is kept gets CursorExpired,
saying what to do; a fresh subscription carries on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.cluster import DevCluster, start_cluster, wait_until
from tests.integration.test_events import collect, have_all, start_cursor
from tristore import errors
from tristore.events import CREATED_PUT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    env = {
        "TRISTORE_NODE_CHANGELOG_RETENTION_S": "2",
        "TRISTORE_NODE_CHANGELOG_TRIM_INTERVAL_S": "0.5",
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
