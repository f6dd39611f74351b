"""Server-side encryption of object bodies: the ciphers, no key management
(that is node/encryption.py's, over the key provider of tristore/kms.py).

Envelope encryption, as S3 does it:

- every version has its own random 256-bit **data key**; its body is cut into
  chunks of the node's ``chunk_size`` and each chunk is sealed with AES-256-GCM
  under the data key. The nonce is the chunk's index and the associated data
  names the bucket, the key and the index, so a chunk cannot be moved to another
  place of the body, another object or another version (another version has
  another data key) without failing to open. A ranged read opens only the chunks
  it needs;
- the data key is stored with the version, wrapped: under the bucket's **bucket
  key** (SSE-S3), which is itself sealed under a master key of the key provider,
  or under the customer's own key (SSE-C), of which only a salted HMAC is kept.

Stored chunk ``i`` is ``AES-GCM(data key, nonce=i, aad).encrypt(plain chunk
i)``: the plain chunk's length plus a 16-byte tag. An inline body is chunk 0.

The binding names neither the version id nor the cluster. An SSE-C version
is replicated as stored (its chunks, wrapped data key and key HMAC: nobody
but the customer can open it), so its replica on another cluster opens with
the same key, to the same key name; when a rule sends it to a bucket of
another name, the replica records the bucket its ciphertext is bound to
(``ObjectVersion.sse_bucket``) and is opened under that name. SSE-S3 versions
are sealed again at the destination: their binding never changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tristore.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidRequest,
    KeyUnavailable,
    SSECustomerKeyRequired,
)
from tristore.model import SSE_TAG

KEY_SIZE = 32
_NONCE = 12
_SALT = 16
#: The first byte of a wrapped data key: how it is wrapped.
SCHEME_BUCKET_KEY = b"S"
SCHEME_CUSTOMER_KEY = b"C"
_U32 = struct.Struct(">I")

SSE_C_ALGORITHM = "AES256"
#: A wrapped data key: scheme, nonce, the sealed key and its tag.
WRAPPED_KEY_SIZE = 1 + _NONCE + KEY_SIZE + 16
#: What SSE-C stores of the customer's key: salt and HMAC-SHA256.
CUSTOMER_HMAC_SIZE = _SALT + hashlib.sha256().digest_size


def new_key() -> bytes:
    return os.urandom(KEY_SIZE)


def _aad(kind: bytes, bucket: str, key: str) -> bytes:
    return b"tristore-sse1\x00" + kind + b"\x00" + bucket.encode() + b"\x00" + key.encode()


def wrap_data_key(scheme: bytes, kek: bytes, data_key: bytes, bucket: str, key: str) -> bytes:
    """``data_key`` sealed under ``kek`` for ``bucket/key``: scheme | nonce | sealed."""
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(kek).encrypt(nonce, data_key, _aad(b"dk" + scheme, bucket, key))
    return scheme + nonce + sealed


def unwrap_data_key(wrapped: bytes, kek: bytes, bucket: str, key: str) -> bytes:
    scheme, nonce, sealed = wrapped[:1], wrapped[1 : 1 + _NONCE], wrapped[1 + _NONCE :]
    try:
        return AESGCM(kek).decrypt(nonce, sealed, _aad(b"dk" + scheme, bucket, key))
    except InvalidTag:
        raise KeyUnavailable(
            f"the data key of {bucket}/{key} does not open under its key: altered or damaged"
        ) from None


def scheme_of(wrapped: bytes) -> bytes:
    return wrapped[:1]


class ChunkCipher:
    """Seals and opens the chunks of one version's body under its data key."""

    def __init__(self, data_key: bytes, bucket: str, key: str) -> None:
        self._aead = AESGCM(data_key)
        self._aad = _aad(b"chunk", bucket, key)
        self.bucket = bucket
        self.key = key

    def seal(self, index: int, plain: bytes) -> bytes:
        return self._aead.encrypt(
            index.to_bytes(_NONCE, "big"), plain, self._aad + _U32.pack(index)
        )

    def open(self, index: int, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                index.to_bytes(_NONCE, "big"), sealed, self._aad + _U32.pack(index)
            )
        except InvalidTag:
            raise KeyUnavailable(
                f"chunk {index} of {self.bucket}/{self.key} does not open: altered, "
                "misplaced or damaged on disk"
            ) from None


def stored_chunk_size(plain_chunk: int) -> int:
    return plain_chunk + SSE_TAG


def chunk_span(first: int, last: int, plain_chunk: int) -> tuple[int, int]:
    """The chunk indexes [i, j] holding plaintext bytes [first, last]."""
    return first // plain_chunk, last // plain_chunk


# -- SSE-C ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class CustomerKey:
    """The key an SSE-C request gave (never stored; repr hides it)."""

    key: bytes
    #: Base64 of the key's MD5, as S3 returns it.
    key_md5: str

    def __repr__(self) -> str:
        return f"CustomerKey(md5={self.key_md5})"


def customer_key(algorithm: str, key: bytes, key_md5: str) -> CustomerKey | None:
    """The checked SSE-C parameters of a request; None when it gave none."""
    if not algorithm and not key and not key_md5:
        return None
    if algorithm != SSE_C_ALGORITHM:
        raise InvalidArgument(
            f"the SSE-C algorithm must be {SSE_C_ALGORITHM}, not {algorithm!r} "
            "(x-amz-server-side-encryption-customer-algorithm)"
        )
    if len(key) != KEY_SIZE:
        raise InvalidArgument(
            f"the SSE-C key must be {KEY_SIZE} bytes (256 bits), not {len(key)} "
            "(x-amz-server-side-encryption-customer-key)"
        )
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    if key_md5 and key_md5 != md5:
        raise InvalidArgument(
            "the SSE-C key's MD5 does not match the key given "
            "(x-amz-server-side-encryption-customer-key-MD5)"
        )
    return CustomerKey(key, md5)


def customer_hmac(ck: CustomerKey, salt: bytes | None = None) -> bytes:
    """salt | HMAC-SHA256(salt, key): what is stored to recognize the key later."""
    salt = salt if salt is not None else os.urandom(_SALT)
    return salt + hmac.new(salt, b"tristore-sse-c\x00" + ck.key, hashlib.sha256).digest()


def check_customer_key(stored: bytes, ck: CustomerKey | None, what: str) -> CustomerKey | None:
    """S3's rules for reading: an SSE-C object needs its key (400 InvalidRequest
    without one, as :class:`SSECustomerKeyRequired`; 403 AccessDenied with
    another); an object that is not SSE-C takes none (400 InvalidRequest).
    Returns the key to open an SSE-C body with."""
    if not stored:
        if ck is not None:
            raise InvalidRequest(
                f"{what} is not encrypted with a customer-provided key; "
                "the request must not give SSE-C parameters"
            )
        return None
    if ck is None:
        raise SSECustomerKeyRequired(
            f"{what} is stored using a form of server-side encryption (SSE-C): the correct "
            "parameters (algorithm, key, key MD5) must be provided to retrieve it"
        )
    if not hmac.compare_digest(customer_hmac(ck, stored[:_SALT]), stored):
        raise AccessDenied(f"the SSE-C key given is not the one {what} was stored with")
    return ck
