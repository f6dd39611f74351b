"""What anti-entropy repair writes back where (node/repair.py's plan_key and the
commit it builds), from hand-made records of one key in three AZs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.repair import AzHeld, AzPlan, _change, plan_key
from tristore.model import ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

AZS = ("az-a", "az-b", "az-c")


def _stamp(ms: int, node: int = 1) -> Stamp:
    return Stamp(1_700_000_000_000 + ms, 0, 7, node)


def _version(ms: int, **kw: object) -> ObjectVersion:
    fields: dict[str, object] = {"size": 5, "etag": "e" * 32, "inline": b"hello"}
    fields.update(kw)
    return ObjectVersion("photos", "cat.jpg", _stamp(ms), **fields)  # type: ignore[arg-type]


def _edited(v: ObjectVersion, ms: int, **kw: object) -> ObjectVersion:
    """``v`` changed later in place (tags, status): same version, higher record stamp."""
    return replace(v, stamp=_stamp(ms), version_stamp=v.vstamp, **kw)  # type: ignore[arg-type]


def _everywhere(head: ObjectVersion | None, *versions: ObjectVersion) -> dict[str, AzHeld]:
    return {az: AzHeld(head, versions) for az in AZS}


def _by_az(plans: list[AzPlan]) -> dict[str, AzPlan]:
    return {p.az: p for p in plans}


def test_nothing_to_do_when_every_az_holds_the_same() -> None:
    v1, v2 = _version(1), _version(2)
    assert plan_key(_everywhere(v2, v2, v1)) == []
    assert plan_key(_everywhere(None)) == []


def test_an_az_that_lost_its_disk_gets_every_version_and_the_head() -> None:
    v1, v2 = _version(1), _version(2)
    marker = ObjectVersion("photos", "cat.jpg", _stamp(3), deleted=True, delete_marker=True)
    held = _everywhere(marker, marker, v2, v1)
    held["az-b"] = AzHeld(None, ())
    [plan] = plan_key(held)
    assert plan.az == "az-b"
    assert plan.head == marker
    assert plan.versions == (v1, v2, marker)  # oldest first
    assert plan.missing == 3  # the head is one of the versions: counted once


def test_an_older_record_of_a_version_is_stale() -> None:
    v1, v2 = _version(1), _version(2)
    tagged = _edited(v1, 5, tags={"k": "v"})  # a noncurrent version's tags changed later
    held = _everywhere(v2, v2, tagged)
    held["az-c"] = AzHeld(v2, (v2, v1))
    [plan] = plan_key(held)
    assert (plan.az, plan.head, plan.versions, plan.missing) == ("az-c", None, (tagged,), 1)


def test_a_noncurrent_version_stamped_later_never_becomes_the_head() -> None:
    # The tagged noncurrent version has the highest record stamp of the key; the
    # lost AZ must still get v2 as its current record (one merge commit with the
    # head given apart), never the tagged version.
    v1, v2 = _version(1), _version(2)
    tagged = _edited(v1, 9, tags={"k": "v"})
    held = _everywhere(v2, v2, tagged)
    held["az-a"] = AzHeld(None, ())
    [plan] = plan_key(held)
    assert plan.head == v2
    change = _change("photos", "cat.jpg", plan)
    assert change.head == v2
    assert change.merge and change.expect is None
    assert {v.vstamp: v for v in change.versions} == {v1.vstamp: tagged, v2.vstamp: v2}
    assert change.stamp == tagged.stamp


def test_a_stale_current_record_alone_is_written_back() -> None:
    v1 = _version(1)
    tagged = _edited(v1, 4, tags={"k": "v"})  # the current version's tags changed
    held = _everywhere(tagged, tagged)
    held["az-b"] = AzHeld(v1, (tagged,))  # its version record is new, its head is not
    [plan] = plan_key(held)
    assert (plan.head, plan.versions, plan.missing) == (tagged, (), 1)
    change = _change("photos", "cat.jpg", plan)
    assert change.head == tagged and change.versions == (tagged,)


def test_an_unfinished_write_in_one_az_is_spread() -> None:
    v1, v2 = _version(1), _version(2)
    held = _everywhere(v1, v1)
    held["az-a"] = AzHeld(v2, (v2, v1))
    plans = _by_az(plan_key(held))
    assert set(plans) == {"az-b", "az-c"}
    assert all(p.head == v2 and p.versions == (v2,) and p.missing == 1 for p in plans.values())


def test_a_version_removed_for_good_somewhere_never_comes_back() -> None:
    v1, v2 = _version(1), _version(2)
    held = _everywhere(v2, v2)
    held["az-a"] = AzHeld(v2, (v2, v1))  # missed the removal of v1
    assert {p.az for p in plan_key(held)} == {"az-b", "az-c"}
    assert plan_key(held, removed={v1.vstamp}) == []


def test_the_removals_a_current_record_carries_count_too() -> None:
    v1, v2 = _version(1), _version(2)
    promoted = _edited(v1, 3, removed=(v2.vstamp,))  # v2 deleted: v1 current again
    held = _everywhere(promoted, promoted)
    held["az-c"] = AzHeld(v2, (v2, v1))  # behind: still holds v2 as current
    [plan] = plan_key(held)
    assert plan.az == "az-c"
    assert plan.head == promoted
    assert plan.versions == (promoted,)
    change = _change("photos", "cat.jpg", plan)
    assert change.removed == (v2.vstamp,)


def test_a_removed_head_is_not_written_back() -> None:
    v1 = _version(1)
    held = _everywhere(None)
    held["az-a"] = AzHeld(v1, (v1,))
    assert plan_key(held, removed={v1.vstamp}) == []


def test_older_null_versions_are_left_alone() -> None:
    old = _version(1, null_version=True)
    new = _version(2, null_version=True)
    held = _everywhere(new, new)
    held["az-b"] = AzHeld(old, (old,))  # a stale AZ
    [plan] = plan_key(held)
    assert (plan.az, plan.head, plan.versions) == ("az-b", new, (new,))
    # The others never get the older null version: a replica drops it anyway.


def test_an_unversioned_delete_goes_back_as_the_current_record() -> None:
    tomb = ObjectVersion("photos", "cat.jpg", _stamp(2), deleted=True, null_version=True)
    old = _version(1, null_version=True)
    held = _everywhere(tomb)  # the null version is gone, only the tombstone is left
    held["az-c"] = AzHeld(old, (old,))
    [plan] = plan_key(held)
    assert (plan.az, plan.head, plan.versions, plan.missing) == ("az-c", tomb, (), 1)
    change = _change("photos", "cat.jpg", plan)
    # Like the DELETE's own commit: the tombstone is also the key's null version.
    assert change.head == tomb and change.versions == (tomb,)


def test_only_the_azs_that_answered_are_compared() -> None:
    v1 = _version(1)
    held = {"az-a": AzHeld(v1, (v1,)), "az-b": AzHeld(None, ())}
    assert [p.az for p in plan_key(held)] == ["az-b"]


def test_a_chunked_body_travels_by_reference() -> None:
    big = _version(1, size=5 << 20, inline=None, data_id=b"d" * 16, chunk_size=1 << 20)
    held = _everywhere(big, big)
    held["az-a"] = AzHeld(None, ())
    [plan] = plan_key(held)
    assert plan.versions == (big,)
    assert _change("photos", "cat.jpg", plan).versions == (big,)
