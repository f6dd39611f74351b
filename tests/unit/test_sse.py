"""The ciphers of encryption at rest (tristore/sse.py): chunks bound to their
place, data-key wrapping, SSE-C checks as S3 answers them, stored sizes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
from dataclasses import replace
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.encryption import Encryption
from tristore import errors, sse
from tristore.model import SSE_TAG, BucketInfo, ObjectVersion
from tristore.stamps import ZERO

pytestmark = pytest.mark.unit


def test_chunks_open_only_in_their_place() -> None:
    dk = sse.new_key()
    c = sse.ChunkCipher(dk, "b", "k")
    sealed = [c.seal(i, b"chunk %d" % i) for i in range(3)]
    assert [c.open(i, s) for i, s in enumerate(sealed)] == [b"chunk 0", b"chunk 1", b"chunk 2"]
    assert all(len(s) == len(b"chunk 0") + SSE_TAG for s in sealed)
    with pytest.raises(errors.KeyUnavailable):
        c.open(1, sealed[0])  # swapped
    with pytest.raises(errors.KeyUnavailable):
        sse.ChunkCipher(dk, "b", "other").open(0, sealed[0])  # another object
    with pytest.raises(errors.KeyUnavailable):
        sse.ChunkCipher(sse.new_key(), "b", "k").open(0, sealed[0])  # another version's key
    flipped = bytes([sealed[2][0] ^ 1]) + sealed[2][1:]
    with pytest.raises(errors.KeyUnavailable):
        c.open(2, flipped)


def test_data_keys_wrap_for_one_object() -> None:
    kek, dk = sse.new_key(), sse.new_key()
    wrapped = sse.wrap_data_key(sse.SCHEME_BUCKET_KEY, kek, dk, "b", "k")
    assert dk not in wrapped and sse.scheme_of(wrapped) == sse.SCHEME_BUCKET_KEY
    assert sse.unwrap_data_key(wrapped, kek, "b", "k") == dk
    with pytest.raises(errors.KeyUnavailable):
        sse.unwrap_data_key(wrapped, kek, "b", "k2")
    with pytest.raises(errors.KeyUnavailable):
        sse.unwrap_data_key(wrapped, sse.new_key(), "b", "k")
    # A wrapped key cannot be passed off as the other scheme.
    other = sse.SCHEME_CUSTOMER_KEY + wrapped[1:]
    with pytest.raises(errors.KeyUnavailable):
        sse.unwrap_data_key(other, kek, "b", "k")


def test_customer_keys_are_checked_as_s3_does() -> None:
    key = os.urandom(32)
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    ck = sse.customer_key("AES256", key, md5)
    assert ck is not None and ck.key_md5 == md5
    assert key.hex() not in repr(ck)
    assert sse.customer_key("", b"", "") is None
    with pytest.raises(errors.InvalidArgument, match="AES256"):
        sse.customer_key("AES128", key, "")
    with pytest.raises(errors.InvalidArgument, match="32 bytes"):
        sse.customer_key("AES256", key[:16], "")
    with pytest.raises(errors.InvalidArgument, match="MD5"):
        sse.customer_key("AES256", key, base64.b64encode(b"x" * 16).decode())
    stored = sse.customer_hmac(ck)
    assert key not in stored and len(stored) == 16 + 32
    assert sse.customer_hmac(ck) != stored  # salted: the same key stores differently
    assert sse.check_customer_key(stored, ck, "o") is ck
    with pytest.raises(errors.SSECustomerKeyRequired):
        sse.check_customer_key(stored, None, "o")  # no key: 400 InvalidRequest, told apart
    other = sse.customer_key("AES256", os.urandom(32), "")
    with pytest.raises(errors.AccessDenied):
        sse.check_customer_key(stored, other, "o")  # another key: 403
    with pytest.raises(errors.InvalidRequest) as refused:
        sse.check_customer_key(b"", ck, "o")  # not an SSE-C object
    assert type(refused.value) is errors.InvalidRequest  # not a missing key
    assert sse.check_customer_key(b"", None, "o") is None


@given(size=st.integers(0, 10_000), chunk=st.integers(1, 3000))
def test_stored_size_counts_a_tag_a_chunk(size: int, chunk: int) -> None:
    v = ObjectVersion(
        "b", "k", ZERO, size=size, chunk_size=sse.stored_chunk_size(chunk), sse_key=b"S..."
    )
    chunks = max(1, -(-size // chunk))
    assert v.body_size == size + SSE_TAG * chunks
    assert ObjectVersion("b", "k", ZERO, size=size, chunk_size=chunk).body_size == size


@given(first=st.integers(0, 5000), length=st.integers(1, 5000), chunk=st.integers(1, 700))
def test_chunk_span_covers_the_range(first: int, length: int, chunk: int) -> None:
    i, j = sse.chunk_span(first, first + length - 1, chunk)
    assert i * chunk <= first < (i + 1) * chunk
    assert j * chunk <= first + length - 1 < (j + 1) * chunk


def test_an_sse_c_replica_opens_under_the_bucket_it_was_sealed_in() -> None:
    """A replica in a bucket of another name keeps its source's ciphertext and
    wrapped key: it opens under ``sse_bucket`` (and the same key name), only
    with the customer's key; an SSE-S3 body never takes another bucket."""
    enc = Encryption(cast(Any, None), cast(Any, None), cast(Any, None), cast(Any, None))
    ck = sse.customer_key("AES256", os.urandom(32), "")
    other = sse.customer_key("AES256", os.urandom(32), "")
    assert ck is not None and other is not None

    async def run() -> None:
        bucket = BucketInfo("src", dt.datetime.now(dt.UTC))
        v, cipher = await enc.sealer(ObjectVersion("src", "k", ZERO, sse_bucket="x"), bucket, ck)
        assert cipher is not None and v.sse_bucket == ""  # a new version is bound to its own
        sealed = cipher.seal(0, b"secret body")
        replica = replace(v, bucket="dst", sse_bucket="src", inline=sealed)
        opened = await enc.opener(replica, ck)
        assert opened is not None and opened.open(0, sealed) == b"secret body"
        with pytest.raises(errors.KeyUnavailable):  # bound to "src", not to "dst"
            await enc.opener(replace(replica, sse_bucket=""), ck)
        with pytest.raises(errors.KeyUnavailable):  # nor to another key name
            await enc.opener(replace(replica, key="k2"), ck)
        with pytest.raises(errors.InvalidRequest):
            await enc.opener(replica, None)
        with pytest.raises(errors.AccessDenied):
            await enc.opener(replica, other)
        with pytest.raises(errors.KeyUnavailable):  # altered on the way
            opened.open(0, bytes([sealed[0] ^ 1]) + sealed[1:])
        s3 = replace(
            replica,
            sse="AES256",
            sse_key=sse.SCHEME_BUCKET_KEY + replica.sse_key[1:],
            sse_customer_hmac=b"",
        )
        with pytest.raises(errors.KeyUnavailable, match="only an SSE-C body"):
            await enc.opener(s3, None)

    asyncio.run(run())
