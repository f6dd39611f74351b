"""Replication rules: validation, which destinations a version goes to, statuses."""

from __future__ import annotations

import pytest

from tristore import errors
from tristore.replication import (
    COMPLETED,
    FAILED,
    PENDING,
    Destination,
    Rule,
    check_rules,
    destinations_for,
    overall_status,
    rule_from_json,
)

pytestmark = pytest.mark.unit

WEST = Destination("west", "backup")
EU = Destination("eu", "archive", storage_class="GLACIER")


def test_matching_by_prefix_and_every_tag() -> None:
    rules = [Rule("logs", (WEST,), prefix="logs/", tags={"keep": "yes"})]
    assert destinations_for(rules, "logs/a", {"keep": "yes", "x": "1"}) == [WEST]
    assert destinations_for(rules, "logs/a", {"keep": "no"}) == []
    assert destinations_for(rules, "data/a", {"keep": "yes"}) == []


def test_disabled_rules_and_delete_markers() -> None:
    rules = [
        Rule("off", (WEST,), enabled=False),
        Rule("markers", (EU,), delete_markers=True),
    ]
    assert destinations_for(rules, "k", {}) == [EU]
    assert destinations_for(rules, "k", {}, delete_marker=True) == [EU]
    assert destinations_for([Rule("r", (WEST,))], "k", {}, delete_marker=True) == []


def test_the_highest_priority_rule_decides_a_shared_destination() -> None:
    low = Rule("low", (Destination("west", "backup", storage_class="STANDARD_IA"),), priority=1)
    high = Rule("high", (Destination("west", "backup", storage_class="GLACIER"),), priority=5)
    (d,) = destinations_for([low, high], "k", {})
    assert d.storage_class == "GLACIER"
    assert len(destinations_for([low, Rule("eu", (EU,))], "k", {})) == 2


def test_check_rules_refuses_what_s3_refuses() -> None:
    good = [Rule("r1", (WEST,))]
    assert check_rules(good, ["west"], "Enabled") == tuple(good)
    with pytest.raises(errors.InvalidRequest):
        check_rules(good, ["west"], "Suspended")
    with pytest.raises(errors.InvalidArgument, match="not a known remote"):
        check_rules([Rule("r1", (EU,))], ["west"], "Enabled")
    with pytest.raises(errors.InvalidArgument, match="unique"):
        check_rules([Rule("r", (WEST,)), Rule("r", (WEST,))], ["west"], "Enabled")
    with pytest.raises(errors.InvalidArgument, match="no destination"):
        check_rules([Rule("r", ())], ["west"], "Enabled")
    with pytest.raises(errors.InvalidArgument):
        check_rules([], ["west"], "Enabled")
    with pytest.raises(errors.InvalidArgument):
        check_rules([Rule("bad id!", (WEST,))], ["west"], "Enabled")
    with pytest.raises(errors.InvalidBucketName):
        check_rules([Rule("r", (Destination("west", "B!"),))], ["west"], "Enabled")
    with pytest.raises(errors.InvalidTag):
        check_rules([Rule("r", (WEST,), tags={"aws:x": "1"})], ["west"], "Enabled")


def test_overall_status_is_failed_if_any_failed_and_completed_if_all() -> None:
    assert overall_status({}) == ""
    assert overall_status({"a": PENDING, "b": COMPLETED}) == PENDING
    assert overall_status({"a": COMPLETED, "b": COMPLETED}) == COMPLETED
    assert overall_status({"a": f"{FAILED}: timeout", "b": COMPLETED}) == FAILED


def test_json_round_trip_and_malformed_input() -> None:
    rule = Rule("r1", (WEST, EU), priority=3, prefix="p/", tags={"t": "1"}, delete_markers=True)
    assert rule_from_json(rule.to_json()) == rule
    for bad in ({}, {"id": "r", "destinations": "west"}, {"id": "r", "status": "On"}):
        with pytest.raises(errors.InvalidArgument):
            rule_from_json(bad)
