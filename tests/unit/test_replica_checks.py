"""What a destination checks in a replica before it stores it
(node/replication_apply.py ``check_replica``): the rules of a PUT, plus a
stamp no further ahead than the clocks may disagree, and the form of an
SSE-C replica shipped as stored (it cannot be opened there)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.replication_apply import check_replica
from tristore import errors, sse
from tristore.config import MAX_CHUNK_SIZE
from tristore.model import SSE_TAG, ObjectVersion
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


def _sse_c(**change: Any) -> ObjectVersion:
    """GOOD as an SSE-C replica shipped as stored (tristore/sse.py)."""
    ck = sse.customer_key("AES256", os.urandom(32), "")
    assert ck is not None
    wrapped = sse.wrap_data_key(sse.SCHEME_CUSTOMER_KEY, ck.key, sse.new_key(), "src", "k")
    fields: dict[str, Any] = {
        "sse": "",
        "sse_key": wrapped,
        "sse_customer_hmac": sse.customer_hmac(ck),
        "sse_bucket": "src",
        "chunk_size": 64 * 1024 + SSE_TAG,
    }
    return replace(GOOD, **(fields | change))


def test_an_sse_c_replica_of_the_right_form_passes() -> None:
    check_replica(_sse_c(), "east", NOW, SKEW)
    check_replica(_sse_c(sse_bucket="", chunk_size=0), "east", NOW, SKEW)  # inline, same bucket
    check_replica(_sse_c(chunk_size=MAX_CHUNK_SIZE + SSE_TAG), "east", NOW, SKEW)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        # A data key wrapped under the source cluster's bucket key (SSE-S3): meaningless here.
        ({"sse_key": sse.SCHEME_BUCKET_KEY + os.urandom(sse.WRAPPED_KEY_SIZE - 1)}, "wrapped"),
        ({"sse_key": sse.SCHEME_CUSTOMER_KEY + os.urandom(20)}, "wrapped"),
        ({"sse_key": b""}, "wrapped"),  # an HMAC without a key
        ({"sse_customer_hmac": b""}, "HMAC"),
        ({"sse_customer_hmac": os.urandom(sse.CUSTOMER_HMAC_SIZE + 1)}, "HMAC"),
        ({"sse": "AES256"}, "sse"),
        ({"sse_bucket": "Bad_Bucket"}, "bucket"),
        ({"chunk_size": SSE_TAG}, "chunks"),
        ({"chunk_size": MAX_CHUNK_SIZE + SSE_TAG + 1}, "chunks"),
    ],
)
def test_an_sse_c_replica_of_another_form_is_refused(change: dict[str, Any], error: str) -> None:
    with pytest.raises((errors.InvalidArgument, errors.InvalidBucketName), match=f"(?i){error}"):
        check_replica(_sse_c(**change), "east", NOW, SKEW)


def test_a_delete_marker_carries_no_encryption_fields() -> None:
    marker = ObjectVersion(
        "dst", "k", Stamp(NOW, 0, 2, 101), delete_marker=True, deleted=True, sse_bucket="src"
    )
    with pytest.raises(errors.InvalidArgument, match="delete marker"):
        check_replica(marker, "east", NOW, SKEW)
