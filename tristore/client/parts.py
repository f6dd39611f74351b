"""The pieces of a multipart upload of a file: the part plan, S3's multipart
ETag, the resume decision, a part read straight from the file, and one running
byte total over the parts in flight.

``upload_file`` (:mod:`tristore.client.files`) is built from these; they do no
network I/O, so they are tested on their own.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tristore.errors import FileChanged, InvalidArgument
from tristore.validation import MAX_PARTS

if TYPE_CHECKING:
    from tristore.client.upload_state import LocalFile
    from tristore.model import Part

_READ_CHUNK = 1024 * 1024
#: The slowest rate at which a Complete is expected to copy the parts into the
#: object on the cluster: its deadline is the object's size at this rate.
COMPLETE_MIN_BYTES_S = 4 * 1024**2


def complete_timeout(size: int) -> float:
    """Seconds a CompleteMultipartUpload of ``size`` bytes may take: the
    cluster copies the parts into the object before it answers (a 1 GiB
    object took longer than the client's default deadline of 15 s)."""
    return size / COMPLETE_MIN_BYTES_S


# --- planning -----------------------------------------------------------------


@dataclass(frozen=True)
class PartSpec:
    """Part ``number`` (from 1) is the file's bytes [offset, offset + size)."""

    number: int
    offset: int
    size: int


def plan_parts(size: int, part_size: int) -> list[PartSpec]:
    """The parts of a ``size``-byte file: all ``part_size`` bytes but the last."""
    if part_size <= 0:
        raise InvalidArgument(f"part size must be positive, not {part_size}")
    count = -(-size // part_size)
    if count > MAX_PARTS:
        raise InvalidArgument(
            f"{size} bytes in parts of {part_size} is {count} parts; at most {MAX_PARTS}"
        )
    return [
        PartSpec(i + 1, i * part_size, min(part_size, size - i * part_size)) for i in range(count)
    ]


def bare_etag(etag: str) -> str:
    """An ETag without quotes, in lower case: the MD5 hex of a part."""
    return etag.strip().strip('"').lower()


def multipart_etag(part_md5s: Iterable[str]) -> str:
    """S3's ETag of a multipart object: md5(the parts' binary MD5s) - part count."""
    md5s = [bare_etag(e) for e in part_md5s]
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in md5s)).hexdigest()
    return f"{digest}-{len(md5s)}"


def etag_parts(etag: str) -> int | None:
    """The part count of a multipart object's ETag (``...-N``); None for one PUT's."""
    _, dash, count = bare_etag(etag).rpartition("-")
    return int(count) if dash and count.isdigit() else None


# --- resuming -------------------------------------------------------------------


def resume_candidates(plan: Iterable[PartSpec], remote: Mapping[int, Part]) -> list[PartSpec]:
    """Parts of ``plan`` the store already has with the planned size: the ones
    worth hashing to see whether they can be skipped."""
    return [s for s in plan if s.number in remote and remote[s.number].size == s.size]


def reusable_parts(
    plan: Iterable[PartSpec], remote: Mapping[int, Part], local_md5: Mapping[int, str]
) -> dict[int, str]:
    """Part number to MD5 of every planned part the store has byte for byte (same
    size, ETag equal to the local bytes' MD5). Every other part must be sent."""
    out: dict[int, str] = {}
    for s in plan:
        have = remote.get(s.number)
        md5 = local_md5.get(s.number)
        if have is not None and md5 and have.size == s.size and bare_etag(have.etag) == md5:
            out[s.number] = md5
    return out


# --- reading the file -----------------------------------------------------------


class _Slice(io.RawIOBase):
    """Bytes [offset, offset + length) of a file, seekable from 0 to length, with
    its own descriptor (pread): the parts in flight never share a file position."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._offset = offset
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._length - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._offset + self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def open_part(path: Path, spec: PartSpec) -> BinaryIO:
    """The part's bytes as a seekable binary file (what ``upload_part`` reads)."""
    return io.BufferedReader(_Slice(path, spec.offset, spec.size), buffer_size=_READ_CHUNK)


def part_md5(path: Path, spec: PartSpec) -> str:
    """The MD5 hex of the part's bytes (FileChanged if the file is shorter now)."""
    h = hashlib.md5()
    left = spec.size
    with open_part(path, spec) as f:
        while left > 0:
            chunk = f.read(min(_READ_CHUNK, left))
            if not chunk:
                raise file_changed(path)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def file_changed(path: Path) -> FileChanged:
    return FileChanged(f"{path} changed during the upload; nothing written")


def check_unchanged(src: LocalFile) -> None:
    """FileChanged if the file's size or mtime is no longer what it was."""
    st = os.stat(src.path)
    if (st.st_size, st.st_mtime_ns) != (src.size, src.mtime_ns):
        raise file_changed(src.path)


# --- progress -------------------------------------------------------------------


class PartsProgress:
    """Adds the parts in flight into one running total for a progress callback
    (the SDK reports each part's bytes sent so far, restarting from 0 on a retry)."""

    def __init__(self, callback: Callable[[int], object] | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._done = 0
        self._sending: dict[int, int] = {}

    @property
    def total(self) -> int:
        with self._lock:
            return self._done + sum(self._sending.values())

    def _update(self) -> None:
        if self._callback is not None:
            self._callback(self._done + sum(self._sending.values()))

    def skip(self, n: int) -> None:
        with self._lock:
            self._done += n
            self._update()

    def for_part(self, number: int) -> Callable[[int], None]:
        def sent(n: int) -> None:
            with self._lock:
                self._sending[number] = n  # a retry starts again from 0
                self._update()

        return sent

    def finish(self, number: int, size: int) -> None:
        with self._lock:
            self._sending.pop(number, None)
            self._done += size
            self._update()
