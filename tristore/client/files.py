"""Whole files to and from the store: ``upload_file`` and ``download_file``.

The one implementation of a file upload, which ``tristore cp`` calls too.

A file below the multipart threshold goes up in one PUT; a larger one as a
multipart upload of ``part_size`` parts (grown so that it needs at most 10,000),
``parallel`` of them in flight, each sent with its MD5 so that the store
refuses a part damaged on the way, and the object's ETag checked against the
one the parts' MD5s make.

Resuming across runs: right after CreateMultipartUpload, a resume record (a
state file, :mod:`tristore.client.upload_state`) is written that an upload of
the same unchanged file to the same key finds again, whichever process makes
it (the SDK and ``tristore cp`` share the directory). On a failure or an
interrupt the upload and its record stay; the next call lists the upload's
parts (ListParts: the store's list is the truth, not the record's) and skips
every part the store has with the size and MD5 of the local bytes. A file that
changed (size or mtime) starts a new upload; one that changes while it is sent
aborts the upload (FileChanged). With ``resume=False`` no record is kept and a
failed upload is aborted instead.

What a resume finds and skips is logged to the ``tristore.client.files``
logger (``tristore cp`` prints those lines on stderr).

A download streams into a temporary file beside the destination and renames
it over the destination only once every byte arrived, so a failed download
never leaves a partial file under the destination's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tristore.client.parts import (
    PartSpec,
    PartsProgress,
    bare_etag,
    check_unchanged,
    complete_timeout,
    multipart_etag,
    open_part,
    part_md5,
    plan_parts,
    resume_candidates,
    reusable_parts,
)
from tristore.client.upload_state import (
    LocalFile,
    PartRecord,
    StateFile,
    UploadState,
    load_state,
    save_state,
    saved_states,
    state_path,
)
from tristore.errors import BadDigest, FileChanged, InvalidArgument, NoSuchUpload, TristoreError
from tristore.model import ObjectInfo
from tristore.validation import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PARALLEL_PARTS,
    DEFAULT_PART_SIZE,
    check_bucket_name,
    check_key,
    choose_part_size,
)

if TYPE_CHECKING:
    from tristore.client.aio import AsyncClient, Progress
    from tristore.model import Part

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Parts asked for in one ListParts page (S3's maximum).
LIST_PAGE = 1000


async def upload_file(
    client: AsyncClient,
    path: str | os.PathLike[str],
    bucket: str,
    key: str,
    *,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
    multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    part_size: int = DEFAULT_PART_SIZE,
    parallel: int = DEFAULT_PARALLEL_PARTS,
    progress: Progress | None = None,
    resume: bool = True,
    state_dir: str | os.PathLike[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ObjectInfo:
    """See :meth:`tristore.client.AsyncClient.upload_file`."""
    src_path = Path(path)
    if not src_path.is_file():
        raise InvalidArgument(f"{src_path} is not a file")
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidArgument(f"parallel must be an integer of at least 1, not {parallel!r}")
    check_bucket_name(bucket)
    check_key(key)
    src = LocalFile.from_stat(src_path, src_path.stat())
    kw = dict(extra or {})
    record = state_path(src, bucket, key, _dir(state_dir)) if resume else None
    begun = await _find_begun(client, record, src, bucket, key) if record else None
    if begun is None and not (src.size > 0 and src.size >= multipart_threshold):
        # An empty file has no parts to upload (S3 refuses a Complete with none).
        with src_path.open("rb") as f:
            return await client.put_object(bucket, key, f, content_type, metadata, progress, **kw)
    if begun is None:
        part = choose_part_size(src.size, part_size)
        state = await _start(client, record, src, bucket, key, part, content_type, metadata, kw)
        remote: dict[int, Part] = {}
    else:
        state, remote = begun
    store = _keep(record, state)
    ssec = kw.get("sse_customer_key")
    try:
        info, expect = await _transfer(
            client, src, state, store, remote, progress, parallel, ssec, begun is not None
        )
    except FileChanged as e:
        if store is not None:
            store.remove()
        raise await _discard(client, state, e) from None
    except BaseException:
        if store is None:  # not resumable: leave no parts behind
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(bucket, key, state.upload_id)
        else:
            store.save()
        raise
    if store is not None:
        store.remove()
    if bare_etag(info.etag) != expect:
        raise BadDigest(
            f"the store's ETag {info.etag} is not {expect}, the one the file's parts make"
        )
    return info


def _dir(state_dir: str | os.PathLike[str] | None) -> Path | None:
    return None if state_dir is None else Path(state_dir)


def _keep(record: Path | None, state: UploadState) -> StateFile | None:
    """The record of the upload under way, if one could be written."""
    if record is None or not record.is_file():
        return None
    return StateFile(record, state)


async def _find_begun(
    client: AsyncClient, record: Path, src: LocalFile, bucket: str, key: str
) -> tuple[UploadState, dict[int, Part]] | None:
    """The upload an earlier run began of this file, and the parts the store has for it."""
    try:
        state = load_state(record)
    except (ValueError, OSError) as e:
        log.warning("ignoring the unreadable upload state %s: %s", record, e)
        _forget(record)
        return None
    if state is None:
        return None
    if not state.is_for(src, bucket, key):
        log.warning("ignoring the upload state %s: it is for another file", record)
        _forget(record)
        return None
    try:
        parts = [p async for p in iter_parts(client, bucket, key, state.upload_id)]
    except NoSuchUpload:
        log.warning(
            "upload %s no longer exists (completed or aborted); starting a new upload",
            state.upload_id,
        )
        _forget(record)
        return None
    return state, {p.part_number: p for p in parts}


def _forget(record: Path) -> None:
    with contextlib.suppress(OSError):
        record.unlink(missing_ok=True)


async def iter_parts(
    client: AsyncClient, bucket: str, key: str, upload_id: str
) -> AsyncIterator[Part]:
    """Every part of an upload, page by page."""
    marker = 0
    while True:
        page = await client.list_parts(
            bucket, key, upload_id, part_number_marker=marker, max_parts=LIST_PAGE
        )
        for p in page.parts:
            yield p
        last = page.parts[-1].part_number if page.parts else marker
        following = page.next_part_number_marker or last
        if not page.is_truncated or following <= marker:
            return
        marker = following


async def _start(
    client: AsyncClient,
    record: Path | None,
    src: LocalFile,
    bucket: str,
    key: str,
    part_size: int,
    content_type: str | None,
    metadata: dict[str, str] | None,
    kw: Mapping[str, Any],
) -> UploadState:
    """Create the upload, and its resume record when there is to be one."""
    if record is not None:
        _forget_older_versions(src, bucket, key, record)
    mpu = await client.create_multipart_upload(bucket, key, content_type, metadata, **kw)
    state = UploadState(
        str(src.path), src.size, src.mtime_ns, bucket, key, mpu.upload_id, part_size
    )
    if record is None:
        return state
    try:
        save_state(record, state)
    except OSError as e:
        log.warning(
            "cannot keep a resume record for upload %s (%s: %s); if it fails it is aborted",
            mpu.upload_id,
            type(e).__name__,
            e,
        )
    except BaseException:
        # Interrupted before the record was written: nothing could resume the upload.
        with contextlib.suppress(TristoreError):
            await client.abort_multipart_upload(bucket, key, mpu.upload_id)
        raise
    return state


def _forget_older_versions(src: LocalFile, bucket: str, key: str, record: Path) -> None:
    """Records of this file's earlier contents can never be resumed: drop
    them, and say how to abort the uploads they name."""
    for path, old in saved_states(record.parent):
        if path != record and (old.source, old.bucket, old.key) == (str(src.path), bucket, key):
            log.warning(
                "%s changed since upload %s of it began; to discard that upload: "
                "tristore mpu abort %s %s",
                src.path,
                old.upload_id,
                shlex.quote(old.url),
                old.upload_id,
            )
            _forget(path)


async def _transfer(
    client: AsyncClient,
    src: LocalFile,
    state: UploadState,
    store: StateFile | None,
    remote: Mapping[int, Part],
    progress: Progress | None,
    parallel: int,
    ssec: bytes | None,
    resumed: bool,
) -> tuple[ObjectInfo, str]:
    """Send the parts the store lacks and complete: the object, and the ETag
    the parts make."""
    plan = plan_parts(src.size, state.part_size)
    candidates = resume_candidates(plan, remote)

    async def md5_of(spec: PartSpec) -> str:
        return await asyncio.to_thread(part_md5, src.path, spec)

    hashed = dict(
        zip(
            [s.number for s in candidates],
            await _bounded(parallel, md5_of, candidates),
            strict=True,
        )
    )
    md5s = reusable_parts(plan, remote, hashed)
    sizes = {s.number: s.size for s in plan}
    if store is not None:
        store.reset(PartRecord(n, md5, sizes[n]) for n, md5 in md5s.items())
    if resumed:
        log.info(
            "resuming upload %s: %d of %d parts already uploaded",
            state.upload_id,
            len(md5s),
            len(plan),
        )
    tracker = PartsProgress(progress)
    tracker.skip(sum(sizes[n] for n in md5s))

    async def send(spec: PartSpec) -> None:
        # Hash first and send the MD5 along: the store refuses the part if the
        # bytes it receives differ (a damaged transfer, or the file changing).
        md5 = await md5_of(spec)
        check_unchanged(src)  # fail early rather than after every part went up
        with open_part(src.path, spec) as body:
            part = await client.upload_part(
                state.bucket,
                state.key,
                state.upload_id,
                spec.number,
                body,
                tracker.for_part(spec.number),
                md5,
                sse_customer_key=ssec,
            )
        if bare_etag(part.etag) != md5:
            raise BadDigest(
                f"part {spec.number}: the store's ETag {part.etag} is not its MD5 {md5}"
            )
        md5s[spec.number] = md5
        tracker.finish(spec.number, spec.size)
        if store is not None:
            store.record(PartRecord(spec.number, md5, spec.size))

    await _each(parallel, send, [s for s in plan if s.number not in md5s])
    check_unchanged(src)
    ordered = [(s.number, md5s[s.number]) for s in plan]
    expect = multipart_etag(md5 for _, md5 in ordered)
    try:
        info = await client.complete_multipart_upload(
            state.bucket,
            state.key,
            state.upload_id,
            ordered,
            timeout=complete_timeout(src.size),
            sse_customer_key=ssec,
        )
    except NoSuchUpload:
        # A Complete sent again after a lost answer finds the upload already gone.
        made = await _completed_object(client, state, expect, ssec)
        if made is None:
            raise
        info = made
    return info, expect


async def _bounded(
    parallel: int, fn: Callable[[PartSpec], Awaitable[T]], items: Sequence[PartSpec]
) -> list[T]:
    """``fn`` of every item, at most ``parallel`` at once, in the items' order."""
    limit = asyncio.Semaphore(parallel)

    async def one(item: PartSpec) -> T:
        async with limit:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


async def _each(
    parallel: int, fn: Callable[[PartSpec], Awaitable[None]], items: Sequence[PartSpec]
) -> None:
    """``fn`` of every item, ``parallel`` at once. After a failure no item is
    started, but those under way finish (a resume need not send them again);
    then the failure is raised (FileChanged before any other)."""
    pending = iter(items)
    failures: list[Exception] = []

    async def worker() -> None:
        for item in pending:
            if failures:
                return
            try:
                await fn(item)
            except Exception as e:  # noqa: BLE001 - raised below, once the others finish
                failures.append(e)
                return

    await asyncio.gather(*(worker() for _ in range(min(parallel, len(items)))))
    if failures:
        raise next((e for e in failures if isinstance(e, FileChanged)), failures[0])


async def _completed_object(
    client: AsyncClient, state: UploadState, expect: str, ssec: bytes | None
) -> ObjectInfo | None:
    """The key's object, if it is the one this upload made (its multipart ETag)."""
    try:
        info = await client.head_object(state.bucket, state.key, sse_customer_key=ssec)
    except TristoreError:
        return None
    return info if bare_etag(info.etag) == expect else None


async def _discard(client: AsyncClient, state: UploadState, e: FileChanged) -> FileChanged:
    """Abort the upload of a file that changed."""
    try:
        await client.abort_multipart_upload(state.bucket, state.key, state.upload_id)
        aborted = f"upload {state.upload_id} aborted"
    except TristoreError as err:
        aborted = (
            f"aborting upload {state.upload_id} failed ({err.code}); to retry: "
            f"tristore mpu abort {shlex.quote(state.url)} {state.upload_id}"
        )
    return FileChanged(f"{e.message}, {aborted}")


async def download_file(
    client: AsyncClient,
    bucket: str,
    key: str,
    path: str | os.PathLike[str],
    *,
    version_id: str | None = None,
    sse_customer_key: bytes | None = None,
) -> ObjectInfo:
    dest = Path(path)
    if dest.is_dir():
        raise InvalidArgument(f"{dest} is a directory: name the file to write")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            async with client.get_object_stream(
                bucket, key, version_id=version_id, sse_customer_key=sse_customer_key
            ) as stream:
                info = stream.info
                async for chunk in stream:
                    await asyncio.to_thread(out.write, chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return info
