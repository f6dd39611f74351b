"""Multipart uploads for ``tristore cp FILE s3://BUCKET/KEY``: part planning,
the resume decision, and the parallel transfer.

A file of ``--multipart-threshold`` bytes or more goes up as an S3 multipart
upload: ``--part-size`` parts (grown so the file needs at most 10,000),
``--parallel`` of them in flight, each sent with its MD5 so the store refuses a
part that arrives damaged.

Resuming: right after CreateMultipartUpload, cp writes a state file
(:mod:`tristore.cli.upload_state`) that the same command on the same unchanged
file finds again. On a re-run the store's own part list (ListParts) is the truth: a part is skipped
when the store has it with the size and MD5 the local bytes have, whatever the
state file says; the state's part list is a record for people and tools.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import hashlib
import io
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tristore.cli import progress
from tristore.cli.upload_state import (
    LocalFile,
    PartRecord,
    StateFile,
    UploadState,
    load_state,
    resume_hint,
    save_state,
    saved_states,
    state_path,
)
from tristore.cli.util import CliError, format_size, parse_size
from tristore.errors import BadDigest, InvalidArgument, NoSuchUpload, TristoreError
from tristore.validation import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, choose_part_size

if TYPE_CHECKING:
    from tristore.client import Client
    from tristore.model import MultipartUpload, ObjectInfo, Part

#: cp's defaults (``--multipart-threshold``, ``--part-size``, ``--parallel``).
DEFAULT_THRESHOLD = 64 * 1024**2
DEFAULT_PART_SIZE = 8 * 1024**2
DEFAULT_PARALLEL = 4
MAX_PARALLEL = 64
#: Parts or uploads asked for in one listing page (S3's maximum).
LIST_PAGE = 1000
_READ_CHUNK = 1024 * 1024
#: The slowest rate at which a Complete is expected to copy the parts into the
#: object on the cluster: its deadline is the object's size at this rate.
COMPLETE_MIN_BYTES_S = 4 * 1024**2


def complete_timeout(size: int) -> float:
    """Seconds a CompleteMultipartUpload of ``size`` bytes may take: the
    cluster copies the parts into the object before it answers (a 1 GiB
    object took longer than the client's default deadline of 15 s)."""
    return size / COMPLETE_MIN_BYTES_S


# --- options ------------------------------------------------------------------


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except InvalidArgument as e:
        raise argparse.ArgumentTypeError(e.message) from None


def threshold_arg(text: str) -> int:
    """argparse type of ``--multipart-threshold``."""
    return _size_arg(text)


def part_size_arg(text: str) -> int:
    """argparse type of ``--part-size``: S3's 5 MiB..5 GiB."""
    n = _size_arg(text)
    if n < MIN_PART_SIZE:
        raise argparse.ArgumentTypeError(
            f"{text} is {format_size(n)}; a part must be at least 5 MiB (S3's minimum part size)"
        )
    if n > MAX_PART_SIZE:
        raise argparse.ArgumentTypeError(
            f"{text} is {format_size(n)}; a part can be at most 5 GiB (S3's maximum part size)"
        )
    return n


def parallel_arg(text: str) -> int:
    """argparse type of ``--parallel``: 1..MAX_PARALLEL."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= n <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"{n} is not between 1 and {MAX_PARALLEL}")
    return n


@dataclass(frozen=True)
class TransferOptions:
    threshold: int = DEFAULT_THRESHOLD
    part_size: int = DEFAULT_PART_SIZE
    parallel: int = DEFAULT_PARALLEL

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TransferOptions:
        """The cp flags, with the defaults for those not given (they parse as None
        so that cp can tell given flags apart and refuse them where they mean nothing)."""
        return cls(
            threshold=_given(args.multipart_threshold, DEFAULT_THRESHOLD),
            part_size=_given(args.part_size, DEFAULT_PART_SIZE),
            parallel=_given(args.parallel, DEFAULT_PARALLEL),
        )

    def use_multipart(self, size: int) -> bool:
        # An empty file has no parts to upload (S3 refuses a Complete with none).
        return size > 0 and size >= self.threshold


def _given(value: int | None, default: int) -> int:
    return default if value is None else value


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


def iter_parts(c: Client, bucket: str, key: str, upload_id: str) -> Iterator[Part]:
    """Every part of an upload, page by page."""
    marker = 0
    while True:
        page = c.list_parts(bucket, key, upload_id, part_number_marker=marker, max_parts=LIST_PAGE)
        yield from page.parts
        last = page.parts[-1].part_number if page.parts else marker
        following = page.next_part_number_marker or last
        if not page.is_truncated or following <= marker:
            return
        marker = following


def iter_uploads(c: Client, bucket: str, prefix: str = "") -> Iterator[MultipartUpload]:
    """Every upload in progress under ``prefix``, page by page."""
    key_marker = upload_id_marker = ""
    while True:
        page = c.list_multipart_uploads(
            bucket, prefix, key_marker, upload_id_marker, max_uploads=LIST_PAGE
        )
        yield from page.uploads
        following = (page.next_key_marker or "", page.next_upload_id_marker or "")
        if not page.is_truncated or not following[0] or following == (key_marker, upload_id_marker):
            return
        key_marker, upload_id_marker = following


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
    """The part's bytes as a seekable binary file (what the SDK's upload_part reads)."""
    return io.BufferedReader(_Slice(path, spec.offset, spec.size), buffer_size=_READ_CHUNK)


def part_md5(path: Path, spec: PartSpec) -> str:
    h = hashlib.md5()
    left = spec.size
    with open_part(path, spec) as f:
        while left > 0:
            chunk = f.read(min(_READ_CHUNK, left))
            if not chunk:
                raise FileChanged(path)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


# --- the transfer ---------------------------------------------------------------


class PartsProgress:
    """Adds the parts in flight into one running total for the progress bar (the
    SDK reports each part's bytes sent, from its loop thread)."""

    def __init__(self, bar: Callable[[int], None]) -> None:
        self._bar = bar
        self._lock = threading.Lock()
        self._done = 0
        self._sending: dict[int, int] = {}

    @property
    def total(self) -> int:
        with self._lock:
            return self._done + sum(self._sending.values())

    def _update(self) -> None:
        self._bar(self._done + sum(self._sending.values()))

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


class FileChanged(CliError):
    """The file was written to after cp began: its parts would not make one
    version of it. cp aborts the upload; a new run uploads what it is now."""

    def __init__(self, path: Path) -> None:
        super().__init__("FileChanged", f"{path} changed during the upload; nothing written")
        self.path = path


def check_unchanged(src: LocalFile) -> None:
    st = os.stat(src.path)
    if (st.st_size, st.st_mtime_ns) != (src.size, src.mtime_ns):
        raise FileChanged(src.path)


@dataclass(frozen=True)
class Uploaded:
    info: ObjectInfo
    parts: int
    #: The ETag the parts' MD5s make; the store's should be the same.
    expected_etag: str


def upload_file(
    c: Client,
    src: LocalFile,
    bucket: str,
    key: str,
    options: TransferOptions,
    bar: progress.Progress,
    create: Mapping[str, Any],
    directory: Path | None = None,
) -> Uploaded:
    """Upload ``src`` as a multipart upload, resuming one an earlier run left.

    ``create`` holds create_multipart_upload's keyword arguments (content type,
    metadata, tags, ACL, storage class, SSE). On failure or interrupt the state
    file stays and the error says how to resume or abort.
    """
    path = state_path(src, bucket, key, directory)
    state, remote = _resume(c, path, src, bucket, key)
    resumed = state is not None
    if state is None:
        state = _start(c, path, src, bucket, key, options, create, directory)
    store = StateFile(path, state)
    pool = cf.ThreadPoolExecutor(options.parallel, thread_name_prefix="tristore-part")
    try:
        ssec = create.get("sse_customer_key")
        done = _transfer(c, pool, src, store, remote, bar, resumed, ssec)
    except FileChanged as e:
        # No part may arrive after the abort: let those in flight finish first.
        pool.shutdown(wait=True, cancel_futures=True)
        raise _discard(c, store, e) from None
    except Exception as e:
        store.save()
        # Let the parts in flight finish, so that a resume need not send them again.
        pool.shutdown(wait=True, cancel_futures=True)
        store.save()
        hint = resume_hint(store.state)
        if isinstance(e, TristoreError | CliError):
            raise CliError(e.code, f"{e.message}; {hint}") from e
        if isinstance(e, OSError):
            where = f": {e.filename}" if e.filename else ""
            raise CliError(type(e).__name__, f"{e.strerror or e}{where}; {hint}") from e
        bar.close()
        print(hint, file=sys.stderr)
        raise
    except BaseException:  # Ctrl-C, SIGTERM: stop now, the state says where we were
        pool.shutdown(wait=False, cancel_futures=True)
        store.save()
        bar.close()
        print(resume_hint(store.state), file=sys.stderr)
        raise
    pool.shutdown()
    store.remove()
    return done


def _resume(
    c: Client, path: Path, src: LocalFile, bucket: str, key: str
) -> tuple[UploadState | None, dict[int, Part]]:
    """The state an earlier run left, and the parts the store has for it."""
    try:
        state = load_state(path)
    except (ValueError, OSError) as e:
        print(f"ignoring the unreadable upload state {path}: {e}", file=sys.stderr)
        return None, {}
    if state is None:
        return None, {}
    if not state.is_for(src, bucket, key):
        print(f"ignoring the upload state {path}: it is for another file", file=sys.stderr)
        return None, {}
    try:
        remote = {p.part_number: p for p in iter_parts(c, bucket, key, state.upload_id)}
    except NoSuchUpload:
        print(
            f"upload {state.upload_id} no longer exists (completed or aborted); "
            "starting a new upload",
            file=sys.stderr,
        )
        return None, {}
    return state, remote


def _start(
    c: Client,
    path: Path,
    src: LocalFile,
    bucket: str,
    key: str,
    options: TransferOptions,
    create: Mapping[str, Any],
    directory: Path | None,
) -> UploadState:
    part_size = choose_part_size(src.size, options.part_size)
    _forget_older_versions(src, bucket, key, path, directory)
    mpu = c.create_multipart_upload(bucket, key, **create)
    state = UploadState(
        str(src.path), src.size, src.mtime_ns, bucket, key, mpu.upload_id, part_size
    )
    try:
        save_state(path, state)
    except BaseException:
        # Without a state file the upload could never be resumed: do not leave it.
        with contextlib.suppress(TristoreError):
            c.abort_multipart_upload(bucket, key, mpu.upload_id)
        raise
    return state


def _forget_older_versions(
    src: LocalFile, bucket: str, key: str, current: Path, directory: Path | None
) -> None:
    """State files of this file's earlier contents can never be resumed: drop
    them, and say how to abort the uploads they name."""
    for path, old in saved_states(directory):
        if path != current and (old.source, old.bucket, old.key) == (str(src.path), bucket, key):
            print(
                f"{src.path} changed since upload {old.upload_id} of it began; to discard "
                f"that upload: tristore mpu abort {shlex.quote(old.url)} {old.upload_id}",
                file=sys.stderr,
            )
            path.unlink(missing_ok=True)


def _transfer(
    c: Client,
    pool: cf.ThreadPoolExecutor,
    src: LocalFile,
    store: StateFile,
    remote: Mapping[int, Part],
    bar: Callable[[int], None],
    resumed: bool,
    ssec: bytes | None = None,
) -> Uploaded:
    state = store.state
    plan = plan_parts(src.size, state.part_size)
    candidates = resume_candidates(plan, remote)
    hashed = dict(
        zip(
            [s.number for s in candidates],
            pool.map(lambda s: part_md5(src.path, s), candidates),
            strict=True,
        )
    )
    md5s = reusable_parts(plan, remote, hashed)
    sizes = {s.number: s.size for s in plan}
    store.reset(PartRecord(n, md5, sizes[n]) for n, md5 in md5s.items())
    if resumed:
        print(
            f"resuming upload {state.upload_id}: {len(md5s)} of {len(plan)} parts already uploaded",
            file=sys.stderr,
        )
    tracker = PartsProgress(bar)
    tracker.skip(sum(sizes[n] for n in md5s))
    futures = [
        pool.submit(_send_part, c, state, src, s, store, tracker, ssec)
        for s in plan
        if s.number not in md5s
    ]
    for f in cf.as_completed(futures):
        number, md5 = f.result()
        md5s[number] = md5
    check_unchanged(src)
    ordered = [(s.number, md5s[s.number]) for s in plan]
    expect = multipart_etag(md5 for _, md5 in ordered)
    try:
        info = c.complete_multipart_upload(
            state.bucket,
            state.key,
            state.upload_id,
            ordered,
            timeout=complete_timeout(src.size),
            sse_customer_key=ssec,
        )
    except NoSuchUpload:
        # A Complete sent again after a lost answer finds the upload already gone.
        made = _completed_object(c, state, expect, ssec)
        if made is None:
            raise
        info = made
    return Uploaded(info, len(plan), expect)


def _completed_object(
    c: Client, state: UploadState, expect: str, ssec: bytes | None = None
) -> ObjectInfo | None:
    """The key's object, if it is the one this upload made (its multipart ETag)."""
    try:
        info = c.head_object(state.bucket, state.key, sse_customer_key=ssec)
    except TristoreError:
        return None
    return info if bare_etag(info.etag) == expect else None


def _send_part(
    c: Client,
    state: UploadState,
    src: LocalFile,
    spec: PartSpec,
    store: StateFile,
    tracker: PartsProgress,
    ssec: bytes | None = None,
) -> tuple[int, str]:
    # Hash first and send the MD5 along: the store refuses the part if the
    # bytes it receives differ (a damaged transfer, or the file changing).
    md5 = part_md5(src.path, spec)
    check_unchanged(src)  # fail early rather than after every part went up
    with open_part(src.path, spec) as body:
        part = c.upload_part(
            state.bucket,
            state.key,
            state.upload_id,
            spec.number,
            body,
            progress=tracker.for_part(spec.number),
            content_md5=md5,
            sse_customer_key=ssec,
        )
    if bare_etag(part.etag) != md5:
        raise BadDigest(f"part {spec.number}: the store's ETag {part.etag} is not its MD5 {md5}")
    tracker.finish(spec.number, spec.size)
    store.record(PartRecord(spec.number, md5, spec.size))
    return spec.number, md5


def _discard(c: Client, store: StateFile, e: FileChanged) -> FileChanged:
    """Abort an upload of a file that changed, and forget its state."""
    state = store.state
    store.remove()
    try:
        c.abort_multipart_upload(state.bucket, state.key, state.upload_id)
        aborted = f"upload {state.upload_id} aborted"
    except TristoreError as err:
        aborted = (
            f"aborting upload {state.upload_id} failed ({err.code}); to retry: "
            f"tristore mpu abort {shlex.quote(state.url)} {state.upload_id}"
        )
    e.message = f"{e.message}, {aborted} (run the command again to upload the file as it is now)"
    return e
