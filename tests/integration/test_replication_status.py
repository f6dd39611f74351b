"""A replicator's COMPLETED for a change is recorded on that change, not on an
older record of the version a coordinator still holds (two real clusters,
`dev up --clusters 2`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.integration.cluster import DevCluster, two_clusters, wait_until
from tristore.config import NodeSpec
from tristore.placement import Placer
from tristore.replication import Destination, Rule

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, DevCluster]]:
    yield from two_clusters(
        tmp_path_factory.mktemp("pair-status"),
        {
            "TRISTORE_REPLICATOR_RETRY_BACKOFF_S": "0.1",
            "TRISTORE_REPLICATOR_MAX_BACKOFF_S": "1",
        },
    )


def _slow_az_home(east: DevCluster, bucket: str, key: str) -> NodeSpec:
    """The home of the key's second AZ: a change's commit waits for it (then
    for its fallback) after the first AZ, whose change log has the entry."""
    return Placer(east.config).place(bucket, key).azs[1].home


def test_status_of_a_tag_change_still_in_flight_is_not_lost(
    pair: tuple[DevCluster, DevCluster],
) -> None:
    """A tag change whose commit is slow in one AZ (its home SIGSTOPped: the
    change waits replica_timeout_s, then goes to the AZ's fallback) is in the
    first AZ's change log before it is acknowledged: the replicator sends it
    and records COMPLETED meanwhile. That record was made on the version as
    the coordinator still knew it (the last status update left it COMPLETED
    in its cache, vouched for by the witness, which had not heard of the
    change), so it changed nothing, and the change's own record stayed
    PENDING for good (a fault probe's rf-src/sr12, a tag change while a node
    was down). Now the status names the change it is for and waits for it."""
    east, west = pair
    bucket, dst = "status-src", "status-dst"
    with east.client() as e, west.client() as w:
        for c, b in ((e, bucket), (w, dst)):
            c.create_bucket(b)
            c.put_bucket_versioning(b, "Enabled")
        e.put_bucket_replication(bucket, [Rule("all", (Destination("west", dst),))])
        keys = [f"k{i}" for i in range(3)]
        for key in keys:
            e.put_object(bucket, key, b"first")
        for key in keys:
            wait_until(
                lambda key=key: e.head_object(bucket, key).replication_status == "COMPLETED",
                60,
                what=f"{key} replicated",
            )
        for i, key in enumerate(keys):
            # Every coordinator caches the version as it is now (COMPLETED),
            # as a busy cluster's do.
            for node in east.config.nodes:
                with east.client(node.grpc) as c:
                    assert c.head_object(bucket, key).replication_status == "COMPLETED"
            slow = _slow_az_home(east, bucket, key)
            done = threading.Event()
            errors: list[BaseException] = []

            def tag(
                key: str = key,
                i: int = i,
                done: threading.Event = done,
                errors: list[BaseException] = errors,
            ) -> None:
                try:
                    with east.client() as c:
                        c.put_object_tagging(bucket, key, {"t": str(i)})
                except BaseException as exc:  # noqa: BLE001 - checked below
                    errors.append(exc)
                finally:
                    done.set()

            with east.paused(slow.name):
                t = threading.Thread(target=tag, daemon=True)
                t.start()
                wait_until(
                    lambda key=key, i=i: w.get_object_tagging(dst, key).tags == {"t": str(i)},
                    90,
                    what=f"the tag change of {key} on west",
                )
                done.wait(30)
            t.join(30)
            assert not errors, errors
        for key in keys:
            wait_until(
                lambda key=key: e.head_object(bucket, key).replication_status == "COMPLETED",
                30,
                what=f"{key}'s tag change marked COMPLETED",
            )
