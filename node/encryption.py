"""Encryption at rest: which key seals a version's body, and the bodies'
plaintext for the coordinator (the ciphers are tristore/sse.py's).

A coordinator encrypts a body before it leaves for the replicas and decrypts
it after it comes back: every replica, staged chunk, hint, change-log entry
and inline body holds ciphertext only, and repair, hinted handoff and rebuild
copy it as is. So does replication for an SSE-C version: its ciphertext,
wrapped data key and key HMAC are shipped and stored as they are
(node/replication_apply.py), and the replica opens with the customer's key.

Keys, from the bottom up:

- **master keys** are the key provider's (tristore/kms.py; ``[kms] key_file``);
  they never leave it. Each call to it is counted in
  ``tristore_node_kms_calls_total{op}``;
- a **bucket key** per bucket, made with the bucket (or on its first encrypted
  write, for a bucket made without one), sealed under the current master key
  and kept in the bucket's record. A node opens it once and keeps it in
  memory, so the provider is called once per bucket and node (and again
  after a rotation), not once per object;
- a **data key** per version (SSE-S3: wrapped under the bucket key; SSE-C:
  under the customer's key, of which only a salted HMAC is stored).

Rotation (:meth:`Encryption.rotate`) adds a master key and re-wraps every
bucket key under it; data keys and bodies stay as they are.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from node.buckets import Buckets
from node.metrics import KMS_CALLS
from node.peers import Replica
from node.quorum import Quorum
from tristore import sse
from tristore.config import ClusterConfig
from tristore.errors import KeyUnavailable, TristoreError
from tristore.kms import LocalKeyFile
from tristore.model import SSE_TAG, BucketInfo, KeyRotation, ObjectVersion, evolve

log = logging.getLogger(__name__)

#: Bucket keys kept open in memory (cleared, and opened again, beyond it).
_OPENED_MAX = 100_000

#: Chunks at least this large are sealed and opened in a thread, off the event loop.
_THREAD_MIN = 64 * 1024


def _context(bucket: str) -> bytes:
    return b"bucket-key:" + bucket.encode()


async def seal_chunk(cipher: sse.ChunkCipher, index: int, plain: bytes) -> bytes:
    if len(plain) >= _THREAD_MIN:
        return await asyncio.to_thread(cipher.seal, index, plain)
    return cipher.seal(index, plain)


async def open_chunk(cipher: sse.ChunkCipher, index: int, sealed: bytes) -> bytes:
    if len(sealed) >= _THREAD_MIN:
        return await asyncio.to_thread(cipher.open, index, sealed)
    return cipher.open(index, sealed)


class Encryption:
    """The keys of one coordinator."""

    def __init__(
        self,
        cfg: ClusterConfig,
        buckets: Buckets,
        quorum: Quorum,
        list_buckets: Callable[[], Awaitable[list[BucketInfo]]],
    ) -> None:
        self.cfg = cfg
        self.buckets = buckets
        self.quorum = quorum
        self.list_buckets = list_buckets
        self._provider: LocalKeyFile | None = None
        #: Sealed bucket key -> the bucket key (opened once per node).
        self._opened: dict[bytes, bytes] = {}
        #: Bucket -> its key as last seen, to open data keys without reading the
        #: bucket's record each time (read again if a data key does not open).
        self._last: dict[str, bytes] = {}
        self._making: dict[str, asyncio.Future[bytes]] = {}

    def provider(self) -> LocalKeyFile:
        if self._provider is None:
            self._provider = LocalKeyFile(self.cfg.kms_key_file)
        return self._provider

    # -- bucket keys -------------------------------------------------------------

    def _open_sealed(self, bucket: str, sealed: bytes) -> bytes:
        key = self._opened.get(sealed)
        if key is None:
            KMS_CALLS.labels("open").inc()
            key = self.provider().open(sealed, _context(bucket))
            if len(self._opened) >= _OPENED_MAX:
                self._opened.clear()
            self._opened[sealed] = key
        self._last[bucket] = key
        return key

    async def bucket_key(self, bucket: str, sealed: bytes = b"") -> bytes:
        """The bucket's key (made and sealed into its record on first use)."""
        if not sealed:
            sealed = (await self.buckets.bucket_record(bucket)).sse_key
        if not sealed:
            making = self._making.get(bucket)
            if making is None:
                making = asyncio.ensure_future(self._make_bucket_key(bucket))
                self._making[bucket] = making
                making.add_done_callback(lambda _f: self._making.pop(bucket, None))
            sealed = await asyncio.shield(making)
        return self._open_sealed(bucket, sealed)

    def new_bucket_key(self, bucket: str) -> bytes:
        """A fresh bucket key sealed for ``bucket``, for its record at creation
        (so that racing first writes do not each make one); empty when the key
        provider is not there (the key is then made on first use, or that use
        fails with the provider's error)."""
        try:
            KMS_CALLS.labels("seal").inc()
            return self.provider().seal(sse.new_key(), _context(bucket))
        except TristoreError as exc:
            log.warning("bucket %s: made without a bucket key (%s)", bucket, exc.message)
            return b""

    async def _make_bucket_key(self, bucket: str) -> bytes:
        def seal() -> bytes:
            KMS_CALLS.labels("seal").inc()
            return self.provider().seal(sse.new_key(), _context(bucket))

        record = await self.buckets.set_bucket_key(bucket, seal)
        log.info("bucket %s: made its bucket key", bucket)
        return record.sse_key

    # -- sealing and opening versions ------------------------------------------------

    async def sealer(
        self,
        v: ObjectVersion,
        bucket: BucketInfo,
        ck: sse.CustomerKey | None,
    ) -> tuple[ObjectVersion, sse.ChunkCipher | None]:
        """``v`` with the encryption its body gets (the request's SSE-C key, its
        ``sse``, or the bucket's default), and the cipher to seal it with; no
        cipher for a body stored in plaintext. ``bucket`` holds the bucket key
        (the target bucket's, for the parts of a multipart upload)."""
        if ck is not None:
            dk = sse.new_key()
            wrapped = sse.wrap_data_key(sse.SCHEME_CUSTOMER_KEY, ck.key, dk, v.bucket, v.key)
            sealed = evolve(
                v,
                sse="",
                sse_key=wrapped,
                sse_customer_hmac=sse.customer_hmac(ck),
                sse_bucket="",
            )
            return sealed, sse.ChunkCipher(dk, v.bucket, v.key)
        algorithm = v.sse or bucket.default_sse
        if not algorithm:
            return evolve(v, sse_key=b"", sse_customer_hmac=b"", sse_bucket=""), None
        bk = await self.bucket_key(bucket.name, bucket.sse_key)
        dk = sse.new_key()
        wrapped = sse.wrap_data_key(sse.SCHEME_BUCKET_KEY, bk, dk, v.bucket, v.key)
        sealed = evolve(v, sse=algorithm, sse_key=wrapped, sse_customer_hmac=b"", sse_bucket="")
        return sealed, sse.ChunkCipher(dk, v.bucket, v.key)

    async def opener(
        self, v: ObjectVersion, ck: sse.CustomerKey | None, key_bucket: str = ""
    ) -> sse.ChunkCipher | None:
        """The cipher that opens ``v``'s body (None: plaintext), after S3's SSE-C
        checks (tristore.sse.check_customer_key). ``key_bucket`` names the
        bucket whose key wraps it, when not ``v``'s own (multipart parts).
        An SSE-C replica opens under the bucket its ciphertext is bound to
        (``v.sse_bucket``: its source bucket, when named otherwise)."""
        what = f"{v.bucket}/{v.key}" if not key_bucket else "the upload's part"
        given = sse.check_customer_key(v.sse_customer_hmac, ck, what)
        if not v.sse_key:
            return None
        if sse.scheme_of(v.sse_key) == sse.SCHEME_CUSTOMER_KEY:
            if given is None:
                raise KeyUnavailable(f"{what}: an SSE-C data key without its key's HMAC")
            bound = v.sse_bucket or v.bucket
            dk = sse.unwrap_data_key(v.sse_key, given.key, bound, v.key)
            return sse.ChunkCipher(dk, bound, v.key)
        if v.sse_bucket:
            # SSE-S3 stays bound to the version's own bucket (replicas are sealed again).
            raise KeyUnavailable(f"{what}: only an SSE-C body may be bound to another bucket")
        name = key_bucket or v.bucket
        last = self._last.get(name)
        try:
            if last is None:
                raise KeyUnavailable("not seen yet")
            dk = sse.unwrap_data_key(v.sse_key, last, v.bucket, v.key)
        except KeyUnavailable:
            # The bucket was made again since (a new key): its record says.
            bk = await self.bucket_key(name)
            dk = sse.unwrap_data_key(v.sse_key, bk, v.bucket, v.key)
        return sse.ChunkCipher(dk, v.bucket, v.key)

    async def plain_body(
        self,
        v: ObjectVersion,
        cipher: sse.ChunkCipher,
        holders: list[Replica],
        first: int,
        length: int,
    ) -> AsyncIterator[bytes]:
        """Plaintext bytes [first, first+length) of an encrypted body: only
        the chunks that hold them are read and opened."""
        if length <= 0:
            return
        end = first + length
        if v.inline is not None:
            plain = await open_chunk(cipher, 0, v.inline)
            yield plain[first:end]
            return
        stored = v.chunk_size
        plain_chunk = stored - SSE_TAG
        total = v.body_size
        i, j = sse.chunk_span(first, end - 1, plain_chunk)
        offset = i * stored
        stop = min(total, (j + 1) * stored)
        buf = bytearray()
        index = i
        async for piece in self.quorum.stream_body(v, holders, offset, stop - offset):
            whole = not buf and len(piece) == min(stored, total - index * stored)
            if not whole:
                buf += piece
            while index <= j:
                want = min(stored, total - index * stored)
                if whole:
                    sealed, whole = piece, False  # a piece is one chunk: no copy
                elif len(buf) >= want:
                    sealed = bytes(buf[:want])
                    del buf[:want]
                else:
                    break
                plain = await open_chunk(cipher, index, sealed)
                lo = max(first - index * plain_chunk, 0)
                hi = min(end - index * plain_chunk, len(plain))
                yield plain if (lo, hi) == (0, len(plain)) else plain[lo:hi]
                index += 1
        if index <= j:
            raise KeyUnavailable(
                f"the body of {v.bucket}/{v.key} ended before chunk {index}: damaged on disk"
            )

    # -- rotation ------------------------------------------------------------------

    async def rotate(self, keep_key: bool = False) -> KeyRotation:
        """A new current master key (unless ``keep_key``), then every bucket
        key re-wrapped under the current one."""
        provider = self.provider()
        if not keep_key:
            KMS_CALLS.labels("rotate").inc()
            provider.rotate()
        current = provider.current_key_id()
        rewrapped = unchanged = 0
        for b in await self.list_buckets():
            record = await self.buckets.bucket_record(b.name)
            if not record.sse_key:
                continue
            if provider.key_id_of(record.sse_key) == current:
                unchanged += 1
                continue

            def rewrap(sealed: bytes, name: str = b.name) -> bytes:
                KMS_CALLS.labels("rewrap").inc()
                return provider.rewrap(sealed, _context(name))

            await self.buckets.rewrap_bucket_key(b.name, rewrap)
            rewrapped += 1
        log.info(
            "master key %s is current: %d bucket keys re-wrapped, %d already under it",
            current,
            rewrapped,
            unchanged,
        )
        return KeyRotation(current, rewrapped, unchanged)
