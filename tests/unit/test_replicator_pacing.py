"""Which logged versions a replicator paces (replicator/worker.py
``is_requeued``): those queued again by a backfill or a replay, told from a
write, a change of tags or ACL and a status recorded for one destination
while another is still PENDING by the records alone. Each record is built as
``Objects.update_version`` builds it: a new stamp over the version's, and a
change that modifies the version (tags, ACL) stamped as such. And, at the
source, which statuses of a call go into one write (node/replication_apply.py
``_status_groups``): those of one version's destinations, so that no record
still PENDING for the others is logged again between them."""

from __future__ import annotations

import pytest

from node.replication_apply import StatusUpdate, _status_groups
from replicator.worker import is_requeued
from tristore.model import ObjectVersion, evolve
from tristore.replication import COMPLETED, FAILED, PENDING
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

AFTER_MS = 5_000
T0 = 1_700_000_000_000


def _stamp(ms: int) -> Stamp:
    return Stamp(T0 + ms, 0, 7, 1)


WRITTEN = ObjectVersion(
    "photos",
    "cat.jpg",
    _stamp(0),
    size=5,
    etag="e" * 32,
    replication_status=PENDING,
    replication_targets={"west/a": PENDING, "west/b": PENDING},
)


def _edited(v: ObjectVersion, ms: int, modifies: bool = False, **kw: object) -> ObjectVersion:
    """``v`` changed in place ``ms`` after the epoch of these tests."""
    out = evolve(v, stamp=_stamp(ms), version_stamp=v.vstamp, **kw)  # type: ignore[arg-type]
    return evolve(out, meta_stamp=out.stamp) if modifies else out


def test_a_write_is_not_paced() -> None:
    assert not is_requeued(WRITTEN, AFTER_MS)


def test_a_requeue_long_after_the_write_is_paced() -> None:
    done = _edited(WRITTEN, 300, replication_targets={"west/a": COMPLETED, "west/b": COMPLETED})
    again = _edited(done, 60_000, replication_targets={"west/a": PENDING, "west/b": COMPLETED})
    assert is_requeued(again, AFTER_MS)
    assert is_requeued(again, 60_000) and not is_requeued(again, 60_001)


def test_a_status_while_another_destination_is_pending_is_not_paced() -> None:
    half = _edited(WRITTEN, 400, replication_targets={"west/a": COMPLETED, "west/b": PENDING})
    assert not is_requeued(half, AFTER_MS)


def test_a_change_of_tags_is_not_paced_however_late() -> None:
    tagged = _edited(WRITTEN, 60_000, modifies=True, tags={"team": "blue"})
    assert tagged.meta_stamp == tagged.stamp
    assert not is_requeued(tagged, AFTER_MS)
    # Queued again by a backfill after that change: paced.
    again = _edited(tagged, 120_000)
    assert again.meta_stamp is not None and again.meta_stamp < again.stamp
    assert is_requeued(again, AFTER_MS)


# --- statuses of one version's destinations, put in one write -------------------------


def _update(
    dest: str, status: str = COMPLETED, stamp_ms: int = 0, key: str = "cat.jpg"
) -> StatusUpdate:
    return StatusUpdate("photos", key, "v1", dest, status, "", _stamp(stamp_ms))


def test_statuses_of_one_entry_are_grouped_by_version() -> None:
    items = [
        _update("west/a"),
        _update("west/a", key="dog.jpg"),
        _update("west/b", FAILED),
        _update("west/a"),  # the same destination again: a group of its own, ...
        _update("west/c", stamp_ms=5),  # another change-log entry of the version
        _update("west/b", PENDING),  # a requeue: always alone
        _update("west/c"),  # ... which the next destination joins
    ]
    assert _status_groups(items) == [[0, 2], [1], [3, 6], [4], [5]]
