"""The RocksDB key layout of a storage node — every prefix, in one place.

All keys are bytes; the first byte names the family. Strings are UTF-8, so byte
order is code-point order, which is the order S3 lists keys in.

=========  ===========================================  ==============================
prefix     key                                          value
=========  ===========================================  ==============================
``o``      o | bucket | 0x00 | key                      current record (records.VERSION)
``v``      v | bucket | 0x00 | key | 0x00 | ~vstamp(16) one version; ~ inverts the bytes so
                                                        a key's versions sort newest first
``x``      x | bucket | 0x00 | key | 0x00 | vstamp(16)  a version removed for good: its
                                                        record must not come back
                                                        (records.encode_marker: when)
``n``      n | bucket | 0x00 | key                      vstamp(16) of the key's null version
``r``      r | bucket | 0x00 | key                      stamp(16) of the key's current record
                                                        when that is a removal (an unversioned
                                                        DELETE, the last version removed):
                                                        what node/tombstones.py collects
``d``      d | data_id(16) | chunk index (u32 BE)       raw chunk bytes
``s``      s | data_id(16)                              staged body awaiting its commit
                                                        (records.encode_marker: when)
``g``      g | due_ms (u64 BE) | data_id(16)            superseded body to delete after
                                                        the grace period (records.GC)
``h``      h | home node | 0x00 | bucket | 0x00 | key   hint: stamp held for home
                                                        (records.encode_hint)
``l``      l | seq (u64 BE)                             change-log entry (records.CHANGE:
                                                        the commit, no inline bodies)
``p``      p | seq (u64 BE)                             empty: the change-log entry of this
                                                        seq has a version awaiting replication
                                                        (what replicators read; see
                                                        ReplicaStore.read_pending_log)
``m``      m | name                                     node metadata (format version)
=========  ===========================================  ==============================

Keys never contain NUL (validation refuses it), so ``key | 0x00`` ends a key.

The internal bucket :data:`BUCKETS` (not a valid S3 name, so no user can reach
it) holds one record per bucket, so buckets get the same three-AZ path as keys;
:data:`UPLOADS` holds multipart uploads and their parts the same way, and
:data:`IAM` the table of users and access keys (node/iam.py).
"""

from __future__ import annotations

import struct

OBJECT = b"o"
VERSION = b"v"
REMOVED = b"x"
NULL = b"n"
REMOVAL = b"r"
DATA = b"d"
STAGED = b"s"
GC = b"g"
HINT = b"h"
LOG = b"l"
META = b"m"
PENDING_LOG = b"p"

BUCKETS = ".buckets"
#: The internal bucket of multipart uploads and their parts (node/multipart.py).
UPLOADS = ".uploads"
#: The internal bucket of the user table (node/iam.py).
IAM = ".iam"
#: Every internal bucket (names no user can make).
INTERNAL_BUCKETS = (BUCKETS, UPLOADS, IAM)
SEP = b"\x00"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
DATA_ID_SIZE = 16
STAMP_SIZE = 16


def object_key(bucket: str, key: str) -> bytes:
    return OBJECT + bucket.encode() + SEP + key.encode()


def object_prefix(bucket: str, prefix: str = "") -> bytes:
    return OBJECT + bucket.encode() + SEP + prefix.encode()


def split_object_key(raw: bytes) -> tuple[str, str]:
    bucket, _, key = raw[1:].partition(SEP)
    return bucket.decode(), key.decode()


#: Each byte to 255 minus it: a version key orders a key's newest version first.
_INVERT = bytes(range(255, -1, -1))


def _inverted(stamp: bytes) -> bytes:
    return stamp.translate(_INVERT)


def version_prefix(bucket: str, key: str | None = None, prefix: str = "") -> bytes:
    """Every version of ``key`` (or, without it, of keys starting with ``prefix``)."""
    if key is not None:
        return VERSION + bucket.encode() + SEP + key.encode() + SEP
    return VERSION + bucket.encode() + SEP + prefix.encode()


def version_key(bucket: str, key: str, vstamp: bytes) -> bytes:
    return version_prefix(bucket, key) + _inverted(vstamp)


def split_version_key(raw: bytes) -> tuple[str, str, bytes]:
    """(bucket, key, vstamp) of a version key."""
    bucket, _, rest = raw[1:].partition(SEP)
    return bucket.decode(), rest[: -STAMP_SIZE - 1].decode(), _inverted(rest[-STAMP_SIZE:])


def removed_key(bucket: str, key: str, vstamp: bytes) -> bytes:
    return REMOVED + bucket.encode() + SEP + key.encode() + SEP + vstamp


def split_removed_key(raw: bytes) -> tuple[str, str, bytes]:
    """(bucket, key, vstamp) of a removal marker's key."""
    bucket, _, rest = raw[len(REMOVED) :].partition(SEP)
    return bucket.decode(), rest[: -STAMP_SIZE - 1].decode(), rest[-STAMP_SIZE:]


def removed_prefix(bucket: str, key: str) -> bytes:
    return REMOVED + bucket.encode() + SEP + key.encode() + SEP


def removal_key(bucket: str, key: str) -> bytes:
    return REMOVAL + bucket.encode() + SEP + key.encode()


def null_key(bucket: str, key: str) -> bytes:
    return NULL + bucket.encode() + SEP + key.encode()


def chunk_key(data_id: bytes, index: int) -> bytes:
    return DATA + data_id + _U32.pack(index)


def chunk_range(data_id: bytes) -> tuple[bytes, bytes]:
    """[start, end) covering every chunk of a body."""
    return DATA + data_id, DATA + data_id + b"\xff" * 5


def staged_key(data_id: bytes) -> bytes:
    return STAGED + data_id


def gc_key(due_ms: int, data_id: bytes) -> bytes:
    return GC + _U64.pack(due_ms) + data_id


def split_gc_key(raw: bytes) -> tuple[int, bytes]:
    return _U64.unpack_from(raw, 1)[0], raw[9 : 9 + DATA_ID_SIZE]


def hint_key(home: str, bucket: str, key: str) -> bytes:
    return HINT + home.encode() + SEP + bucket.encode() + SEP + key.encode()


def hint_prefix(home: str = "") -> bytes:
    return HINT + (home.encode() + SEP if home else b"")


def split_hint_key(raw: bytes) -> tuple[str, str, str]:
    home, bucket, key = raw[1:].split(SEP, 2)
    return home.decode(), bucket.decode(), key.decode()


def log_key(seq: int) -> bytes:
    return LOG + _U64.pack(seq)


def split_log_key(raw: bytes) -> int:
    """The seq of a change-log key (``l``) or of its replication index key (``p``)."""
    return _U64.unpack_from(raw, 1)[0]


def pending_log_key(seq: int) -> bytes:
    return PENDING_LOG + _U64.pack(seq)


def meta_key(name: str) -> bytes:
    return META + name.encode()


def successor(prefix: bytes) -> bytes:
    """The smallest key greater than every key that starts with ``prefix``."""
    b = bytearray(prefix)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return b"\xff" * (len(prefix) + 1)
    b[-1] += 1
    return bytes(b)
