"""glibc's allocator thresholds for a tristore process, set once.

Two kinds of buffer sit above glibc's default mmap threshold (128 KiB): body
chunks (1 MiB) and their copies in protobuf messages, and the buffer uvloop's
TLS transport reads each record into (256 KiB, shrunk to what was read).
Above the threshold each one is a fresh mapping whose pages the kernel faults
in and zeroes, then unmaps: about a third of a node's CPU on a large GET, and
an eighth of a client's on small PUTs (an mmap, an mremap and a munmap for
each TLS read; py-spy --native). Below it they come from the heap and are
reused. Servers keep up to :data:`SERVER`'s sizes in the heap; the SDK, a
guest in its application's process, smaller ones (:data:`CLIENT`, set when it
opens its first door stream; ``TRISTORE_TUNE_MALLOC=0`` leaves the process's
allocator alone). The first setting a process makes is the one it keeps.
Other C libraries than glibc are left as they are.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
ENV = "TRISTORE_TUNE_MALLOC"


@dataclass(frozen=True)
class Thresholds:
    #: Buffers below this come from the heap, never from a mapping of their own.
    mmap: int
    #: Free memory at the top of the heap kept for reuse rather than given back.
    trim: int


SERVER = Thresholds(mmap=32 << 20, trim=64 << 20)
CLIENT = Thresholds(mmap=4 << 20, trim=8 << 20)

_set: Thresholds | None = None


def tune(thresholds: Thresholds) -> bool:
    """Set ``thresholds`` unless this process set some already (or, for
    :data:`CLIENT`, its environment says not to); whether they are the
    process's now."""
    global _set
    if _set is not None:
        return _set == thresholds
    if thresholds is CLIENT and os.environ.get(ENV, "").strip() == "0":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    _set = thresholds
    ok = mallopt(_M_MMAP_THRESHOLD, thresholds.mmap) == 1
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, thresholds.trim) == 1)
