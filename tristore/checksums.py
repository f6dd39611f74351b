"""S3's flexible checksums of an object's body: CRC-32, CRC-32C, CRC-64/NVME,
SHA-1 and SHA-256, as base64 of the big-endian digest.

A version stores one (``ObjectVersion.checksum_algorithm``, ``checksum_type``,
``checksum``), as S3 does, and the S3 API returns it on GET and HEAD when asked
(``x-amz-checksum-mode: ENABLED``). Two kinds, S3's ``x-amz-checksum-type``:

- ``FULL_OBJECT``: the checksum of the whole body. Every single PUT and copy;
  a multipart object whose parts carry CRCs, combined without reading the
  body again (a CRC of a concatenation follows from the parts' CRCs and sizes).
- ``COMPOSITE``: a multipart object's checksum of its parts' checksums
  (their raw digests concatenated), with ``-N`` for N parts.

The CRCs and their combination come from awscrt (C, with the CPU's carry-less
multiply where it has one), the SHAs from hashlib. Both let go of the GIL
over a large buffer: a body's checksum is computed in the thread that also
computes its MD5 (node/objects.py), off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from awscrt import checksums as crt

from tristore.errors import BadDigest, InvalidRequest

FULL_OBJECT = "FULL_OBJECT"
COMPOSITE = "COMPOSITE"
#: What a body gets when its writer named no checksum (S3's default since 2025).
DEFAULT = "crc64nvme"


class Hasher(Protocol):
    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    def __init__(self, fn: Callable[[bytes, int], int], size: int) -> None:
        self.fn = fn
        self.digest_size = size
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = self.fn(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self.digest_size, "big")


#: Algorithm (lower case, as in ``x-amz-checksum-<name>``) -> a fresh hasher.
ALGORITHMS: dict[str, Callable[[], Hasher]] = {
    "crc32": lambda: _Crc(crt.crc32, 4),
    "crc32c": lambda: _Crc(crt.crc32c, 4),
    "crc64nvme": lambda: _Crc(crt.crc64nvme, 8),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
}
#: CRC -> (combine(crc1, crc2, len2), digest bytes): what FULL_OBJECT multipart needs.
_COMBINE: dict[str, tuple[Callable[[int, int, int], int], int]] = {
    "crc32": (crt.combine_crc32, 4),
    "crc32c": (crt.combine_crc32c, 4),
    "crc64nvme": (crt.combine_crc64nvme, 8),
}


@dataclass
class Checksum:
    """One flexible checksum of a body being written: the algorithm, the value
    its writer declared (base64; may come only at the body's end, in an
    aws-chunked trailer), and the value computed over the body by whoever
    stores it (:meth:`hasher`, then :meth:`finish`, which checks it against
    the declared one), before the write that stores it commits."""

    name: str
    declared: str = ""
    #: Set by :meth:`finish`; or known before the body is read (a copy keeps
    #: its source's), or set by the body's iterator when it ends (``of_parts``).
    computed: str = ""
    type: str = FULL_OBJECT
    #: A multipart object's: combined from its parts' checksums by the body's
    #: iterator when the body ends, never computed over the body.
    of_parts: bool = False

    def hasher(self) -> Hasher | None:
        """A fresh hasher to compute this checksum over the body; None when
        there is nothing to compute (no algorithm, a value already known, or
        one combined from the parts)."""
        if not self.name or self.computed or self.of_parts:
            return None
        return ALGORITHMS[self.name]()

    def finish(self, hasher: Hasher) -> None:
        """Take the value ``hasher`` computed over the whole body; one that is
        not the value declared is refused (the body must not be stored)."""
        computed = encode(hasher.digest())
        if self.declared and self.declared != computed:
            raise BadDigest(
                f"The {self.name.upper()} you specified did not match the calculated "
                f"checksum: the body's is {computed}, the request declared {self.declared} "
                f"(x-amz-checksum-{self.name}); nothing was stored"
            )
        self.computed = computed


def check_algorithm(name: str) -> str:
    """``name`` in lower case; InvalidRequest unless offered."""
    algorithm = name.strip().lower()
    if algorithm not in ALGORITHMS:
        raise InvalidRequest(
            f"checksum algorithm {name!r} is not supported; supported: "
            + ", ".join(a.upper() for a in ALGORITHMS)
        )
    return algorithm


def check_type(algorithm: str, kind: str) -> str:
    """A multipart upload's checksum type (S3's ``x-amz-checksum-type``) for
    ``algorithm``, its default when ``kind`` is empty: CRC-64/NVME only whole
    (FULL_OBJECT), SHAs only COMPOSITE, CRC-32 and CRC-32C either (COMPOSITE
    by default)."""
    kind = kind.strip().upper()
    if not kind:
        return FULL_OBJECT if algorithm == "crc64nvme" else COMPOSITE
    if kind not in (FULL_OBJECT, COMPOSITE):
        raise InvalidRequest(f"checksum type must be FULL_OBJECT or COMPOSITE, not {kind!r}")
    if not algorithm:
        raise InvalidRequest("a checksum type needs a checksum algorithm")
    if kind == FULL_OBJECT and algorithm not in _COMBINE:
        raise InvalidRequest(f"the {algorithm.upper()} checksum type must be COMPOSITE")
    if kind == COMPOSITE and algorithm == "crc64nvme":
        raise InvalidRequest("the CRC64NVME checksum type must be FULL_OBJECT")
    return kind


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


#: The digest size of each algorithm, in bytes (its hasher's).
DIGEST_SIZES = {name: make().digest_size for name, make in ALGORITHMS.items()}


def well_formed(algorithm: str, value: str) -> bool:
    """Whether ``value`` can be a checksum of ``algorithm``: base64 of a
    digest of its size (S3 refuses any other as invalid, not as a mismatch)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return len(raw) == DIGEST_SIZES[algorithm]


def digest_of(algorithm: str, data: bytes) -> str:
    """The base64 checksum of ``data`` whole."""
    h = ALGORITHMS[algorithm]()
    h.update(data)
    return encode(h.digest())


def _raw(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"checksum {value!r} is not base64") from None


def combined(algorithm: str, kind: str, parts: list[tuple[str, int]]) -> str:
    """A multipart object's checksum from its parts' (checksum, size), in order:
    the whole body's CRC (FULL_OBJECT), or the checksum of the parts' digests
    with ``-N`` (COMPOSITE)."""
    if kind == COMPOSITE:
        h = ALGORITHMS[algorithm]()
        h.update(b"".join(_raw(value) for value, _ in parts))
        return f"{encode(h.digest())}-{len(parts)}"
    combine, size = _COMBINE[algorithm]
    crc = 0
    for i, (value, length) in enumerate(parts):
        part = int.from_bytes(_raw(value), "big")
        crc = part if i == 0 else combine(crc, part, length)
    return encode(crc.to_bytes(size, "big"))
