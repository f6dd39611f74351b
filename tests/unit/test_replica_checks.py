"""What a destination checks in a replica before it stores it
(node/replication_apply.py ``check_replica``): the rules of a PUT, plus a
stamp no further ahead than the clocks may disagree."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.replication_apply import check_replica
from tristore import errors
from tristore.model import ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit

NOW = 1_800_000_000_000
SKEW = 1000
GOOD = ObjectVersion(
    "dst",
    "k",
    Stamp(NOW, 0, 2, 101),
    size=2,
    etag=hashlib.md5(b"ok").hexdigest(),
    content_type="text/plain",
    metadata={"a": "b"},
    tags={"t": "v"},
    acl="public-read",
    storage_class="STANDARD_IA",
    sse="AES256",
)


def test_a_well_formed_replica_passes() -> None:
    check_replica(GOOD, "east", NOW, SKEW)
    check_replica(replace(GOOD, etag=GOOD.etag + "-12"), "east", NOW, SKEW)  # multipart
    check_replica(replace(GOOD, stamp=Stamp(NOW + SKEW, 5, 2, 101)), "east", NOW, SKEW)
    marker = ObjectVersion("dst", "k", Stamp(NOW - 5, 0, 2, 101), delete_marker=True, deleted=True)
    check_replica(marker, "west-2", NOW, SKEW)


@pytest.mark.parametrize(
    ("change", "origin", "error"),
    [
        ({"bucket": "Bad_Bucket"}, "east", errors.InvalidBucketName),
        ({"key": ""}, "east", errors.InvalidArgument),
        ({"key": "k" * 1025}, "east", errors.KeyTooLongError),
        ({"metadata": {f"k{i}": "v" * 20 for i in range(200)}}, "east", errors.MetadataTooLarge),
        ({"metadata": {"X-Amz-Meta-A": "b"}}, "east", errors.InvalidArgument),
        ({"metadata": {"a": "b\r\nc"}}, "east", errors.InvalidArgument),
        ({"tags": {f"t{i}": "v" for i in range(11)}}, "east", errors.InvalidTag),
        ({"content_type": "a\r\nb"}, "east", errors.InvalidArgument),
        ({"acl": "bogus-acl"}, "east", errors.InvalidArgument),
        ({"storage_class": "BOGUS"}, "east", errors.InvalidStorageClass),
        ({"sse": "rot13"}, "east", errors.InvalidArgument),
        ({"etag": "zz"}, "east", errors.InvalidArgument),
        ({"etag": ""}, "east", errors.InvalidArgument),
        ({"size": -1}, "east", errors.InvalidArgument),
        ({"owner": "o" * 129}, "east", errors.InvalidArgument),
        ({"stamp": Stamp(NOW + SKEW + 1, 0, 2, 101)}, "east", errors.InvalidArgument),
        ({"version_stamp": Stamp(NOW + 60_000, 0, 2, 101)}, "east", errors.InvalidArgument),
        ({"meta_stamp": Stamp(NOW + 60_000, 0, 2, 101)}, "east", errors.InvalidArgument),
        ({"deleted": True}, "east", errors.InvalidArgument),
        ({"delete_marker": True}, "east", errors.InvalidArgument),  # with a size and ETag
        ({}, "", errors.InvalidArgument),
        ({}, "east\r\n", errors.InvalidArgument),
        ({}, "e" * 64, errors.InvalidArgument),
    ],
)
def test_what_a_put_would_refuse_is_refused(
    change: dict[str, Any], origin: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_replica(replace(GOOD, **change), origin, NOW, SKEW)


@given(ahead=st.integers(min_value=-(10**9), max_value=10**9))
def test_stamps_are_refused_exactly_beyond_the_skew(ahead: int) -> None:
    v = replace(GOOD, stamp=Stamp(NOW + ahead, 0, 2, 101))
    if ahead > SKEW:
        with pytest.raises(errors.InvalidArgument, match="max_clock_skew_ms"):
            check_replica(v, "east", NOW, SKEW)
    else:
        check_replica(v, "east", NOW, SKEW)
