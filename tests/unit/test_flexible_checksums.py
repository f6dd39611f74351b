"""S3's flexible checksums (tristore/checksums.py): each algorithm's check
value, streaming, a multipart object's checksum of the whole body (CRCs
combined from the parts') and of the parts' checksums (``-N``), and the
checksum types an upload may ask for."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from tristore import checksums
from tristore.errors import BadDigest, InvalidRequest

pytestmark = pytest.mark.unit

#: The CRC catalogue's check values: each CRC of b"123456789".
CHECK = {"crc32": 0xCBF43926, "crc32c": 0xE3069283, "crc64nvme": 0xAE8B14860A799888}


def _int(value: str) -> int:
    return int.from_bytes(base64.b64decode(value), "big")


def test_check_values() -> None:
    for name, want in CHECK.items():
        assert _int(checksums.digest_of(name, b"123456789")) == want, name
    sha = checksums.digest_of("sha256", b"abc")
    assert base64.b64decode(sha) == hashlib.sha256(b"abc").digest()
    assert len(base64.b64decode(checksums.digest_of("crc64nvme", b""))) == 8


def test_a_checksum_is_computed_in_pieces_and_checked_against_the_declared() -> None:
    pieces = [os.urandom(1000) for _ in range(5)]
    whole = b"".join(pieces)
    for name in checksums.ALGORITHMS:
        want = checksums.digest_of(name, whole)
        for declared in ("", want):
            c = checksums.Checksum(name, declared)
            h = c.hasher()
            assert h is not None
            for p in pieces:
                h.update(p)
            assert not c.computed  # only once the body has ended
            c.finish(h)
            assert c.computed == want, name
        c = checksums.Checksum(name, checksums.digest_of(name, b"another body"))
        h = c.hasher()
        assert h is not None
        h.update(whole)
        with pytest.raises(BadDigest, match="nothing was stored"):
            c.finish(h)
        assert not c.computed
    # Nothing to compute: a value known already, one of parts, no algorithm.
    assert checksums.Checksum("crc32", computed="AAAAAA==").hasher() is None
    assert checksums.Checksum("crc32", of_parts=True).hasher() is None
    assert checksums.Checksum("").hasher() is None


def test_multipart_checksums() -> None:
    parts = [os.urandom(n) for n in (5000, 1, 0, 777)]
    whole = b"".join(parts)
    for name in ("crc32", "crc32c", "crc64nvme"):
        sums = [(checksums.digest_of(name, p), len(p)) for p in parts]
        full = checksums.combined(name, checksums.FULL_OBJECT, sums)
        assert full == checksums.digest_of(name, whole), name
    sums = [(checksums.digest_of("sha256", p), len(p)) for p in parts]
    raw = b"".join(hashlib.sha256(p).digest() for p in parts)
    want = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    assert checksums.combined("sha256", checksums.COMPOSITE, sums) == f"{want}-4"
    with pytest.raises(InvalidRequest):
        checksums.combined("crc32", checksums.COMPOSITE, [("not base64!", 1)])


def test_checksum_types() -> None:
    assert checksums.check_type("crc64nvme", "") == checksums.FULL_OBJECT
    assert checksums.check_type("crc32", "") == checksums.COMPOSITE
    assert checksums.check_type("crc32c", "full_object") == checksums.FULL_OBJECT
    assert checksums.check_type("sha1", "COMPOSITE") == checksums.COMPOSITE
    for algorithm, kind in (
        ("sha256", "FULL_OBJECT"),
        ("crc64nvme", "COMPOSITE"),
        ("crc32", "PARTIAL"),
        ("", "COMPOSITE"),
    ):
        with pytest.raises(InvalidRequest):
            checksums.check_type(algorithm, kind)
    assert checksums.check_algorithm("SHA256") == "sha256"
    with pytest.raises(InvalidRequest):
        checksums.check_algorithm("md5")
