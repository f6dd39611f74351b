"""Request bodies of the S3 HTTP API, streamed: aws-chunked decoding (with
each chunk's signature checked), the payload's SHA-256 and the flexible
checksums (``x-amz-checksum-*``, in a header or an aws-chunked trailer).

Everything here is a wrapper around an async iterator of byte pieces: the body
reaches the coordinator's PUT as it arrives and is never held whole. A check
that can only be made at the end (a digest, a trailer) raises from the
iterator before it ends, so the PUT it feeds fails and stores nothing (the
coordinator commits only after the body's last piece). The flexible checksum
is computed by the coordinator's PUT, which checks it against the value
declared here (:class:`tristore.checksums.Checksum`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from tristore import checksums, sigv4
from tristore.checksums import Checksum
from tristore.errors import (
    IncompleteBody,
    InvalidArgument,
    InvalidRequest,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)

#: A chunk's header line is short (size in hex, a signature); more is an attack.
MAX_CHUNK_LINE = 4096
#: The largest chunk taken in one piece (clients send 64 KiB to 8 MiB chunks).
MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_TRAILER_BYTES = 16 * 1024
#: A piece of a body at least this large has its SHA-256 computed in a thread
#: (hashlib lets go of the GIL over it), off the event loop, as the store
#: computes MD5s and flexible checksums; a smaller one costs less to hash
#: than the hop to a thread (the store's own line is its inline_max, 64 KiB).
OFF_LOOP_MIN = 64 * 1024


class Reader(Protocol):
    """What the decoder reads from (aiohttp's and asyncio's stream readers)."""

    async def readline(self) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...


# -- checksums ---------------------------------------------------------------------

CHECKSUM_PREFIX = "x-amz-checksum-"


def checksum_name(header: str) -> str:
    """``x-amz-checksum-crc32`` -> ``crc32``; refuses an algorithm not offered."""
    name = header.lower().removeprefix(CHECKSUM_PREFIX)
    if not header.lower().startswith(CHECKSUM_PREFIX) or name not in checksums.ALGORITHMS:
        offered = ", ".join(CHECKSUM_PREFIX + n for n in checksums.ALGORITHMS)
        raise InvalidRequest(f"checksum {header!r} is not supported; supported: {offered}")
    return name


def checksum_header(name: str) -> str:
    """``crc32`` -> ``x-amz-checksum-crc32``."""
    return CHECKSUM_PREFIX + name


async def checked(
    body: AsyncIterator[bytes],
    checksum: Checksum | None = None,
    sha256_hex: str = "",
) -> AsyncIterator[bytes]:
    """``body``, checked at its end against the SHA-256 the signature covers
    (``x-amz-content-sha256``), and for a flexible checksum, that its value
    came (a trailer's is filled by the decoder before the end). The checksum
    itself is computed, and compared with that value, where the body is
    stored (:meth:`node.objects.Objects.store`: with the MD5, in one pass off
    the event loop), before anything commits. The SHA-256 of a large piece
    is computed in a thread while the piece goes on to the store; the next
    piece waits for it (one hasher, fed in order)."""
    sha = hashlib.sha256() if sha256_hex else None
    hashing: asyncio.Future[None] | None = None
    try:
        async for piece in body:
            if sha is not None:
                if hashing is not None:
                    await hashing
                    hashing = None
                if len(piece) >= OFF_LOOP_MIN:
                    hashing = asyncio.ensure_future(asyncio.to_thread(sha.update, piece))
                else:
                    sha.update(piece)
            yield piece
        if hashing is not None:
            await hashing
            hashing = None
    finally:
        if hashing is not None:  # the body was abandoned: nobody wants the hash
            hashing.cancel()
    if sha is not None and sha.hexdigest() != sha256_hex.lower():
        raise XAmzContentSHA256Mismatch(
            "the body's SHA-256 is not the x-amz-content-sha256 the request was signed with; "
            "nothing was stored"
        )
    if checksum is not None and not checksum.declared:
        raise InvalidRequest(f"the body ended without its {checksum_header(checksum.name)} trailer")


# -- aws-chunked -------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkSigner:
    """What checks each chunk's signature: the request's signing key, date,
    scope and seed signature (the request's own)."""

    key: bytes
    amz_date: str
    scope: str
    seed: str


async def _line(reader: Reader, what: str) -> bytes:
    line = await reader.readline()
    if not line.endswith(b"\n"):
        raise IncompleteBody(f"the aws-chunked body ended inside {what}")
    if len(line) > MAX_CHUNK_LINE:
        raise InvalidArgument(f"an aws-chunked {what} line is longer than {MAX_CHUNK_LINE} bytes")
    return line.rstrip(b"\r\n")


async def aws_chunked(
    reader: Reader,
    signer: ChunkSigner | None = None,
    trailer: Checksum | None = None,
    trailer_signed: bool = False,
) -> AsyncIterator[bytes]:
    """The payload of an aws-chunked body (``Content-Encoding: aws-chunked``)::

        <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
        [<trailer name>:<value>\\r\\n ... [x-amz-trailer-signature:<sig>\\r\\n]]\\r\\n

    With ``signer``, every chunk's signature is checked (chained from the
    request's) before its data is passed on. ``trailer``: the checksum whose
    value the trailer carries (set on it when read)."""
    previous = signer.seed if signer is not None else ""
    while True:
        header = await _line(reader, "a chunk header")
        size_hex, _, ext = header.partition(b";")
        try:
            size = int(size_hex, 16)
        except ValueError:
            raise InvalidArgument(
                f"an aws-chunked chunk size is not hex: {size_hex[:20]!r}"
            ) from None
        if size < 0 or size > MAX_CHUNK_BYTES:
            raise InvalidArgument(
                f"an aws-chunked chunk of {size} bytes (at most {MAX_CHUNK_BYTES})"
            )
        data = await _read(reader, size) if size else b""
        if signer is not None:
            name, _, sig = ext.decode("latin-1").partition("=")
            if name.strip() != "chunk-signature" or not sig:
                raise SignatureDoesNotMatch("an aws-chunked chunk carries no chunk-signature")
            want = sigv4.chunk_signature(
                signer.key,
                signer.amz_date,
                signer.scope,
                previous,
                await _sha256_hex(data),
            )
            if not sigv4.matches(want, sig.strip()):
                raise SignatureDoesNotMatch(
                    "an aws-chunked chunk's signature does not match its data; nothing was stored"
                )
            previous = want
        if size == 0:
            break
        if await _read(reader, 2) != b"\r\n":
            raise InvalidArgument("an aws-chunked chunk does not end with CRLF")
        yield data
    await _trailer(reader, signer, previous, trailer, trailer_signed)


async def _sha256_hex(data: bytes) -> str:
    """A chunk's SHA-256 (what its signature covers); a large one's in a thread."""
    if len(data) < OFF_LOOP_MIN:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


async def _read(reader: Reader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except (asyncio.IncompleteReadError, EOFError):
        raise IncompleteBody("the aws-chunked body ended inside a chunk") from None


async def _trailer(
    reader: Reader,
    signer: ChunkSigner | None,
    previous: str,
    trailer: Checksum | None,
    trailer_signed: bool,
) -> None:
    """The trailing headers after the last (empty) chunk, up to the empty line."""
    lines: list[bytes] = []
    total = 0
    signature = ""
    while True:
        line = await reader.readline()
        if not line:  # the body may end without the final empty line
            break
        total += len(line)
        if total > MAX_TRAILER_BYTES:
            raise InvalidArgument(f"the aws-chunked trailer is over {MAX_TRAILER_BYTES} bytes")
        text = line.rstrip(b"\r\n")
        if not text:
            break
        name, _, value = text.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            signature = value.strip()
            continue
        lines.append(text)
        if trailer is not None and name == checksum_header(trailer.name):
            trailer.declared = value.strip()
    if trailer_signed and signer is not None:
        if not signature:
            raise SignatureDoesNotMatch(
                "the aws-chunked trailer carries no x-amz-trailer-signature"
            )
        canonical = b"".join(line + b"\n" for line in lines)
        want = sigv4.trailer_signature(
            signer.key, signer.amz_date, signer.scope, previous, canonical
        )
        if not sigv4.matches(want, signature):
            raise SignatureDoesNotMatch("the aws-chunked trailer's signature does not match")
