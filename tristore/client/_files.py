"""Whole files to and from the store: ``upload_file`` and ``download_file``.

A file below the multipart threshold goes up in one PUT; a larger one as a
multipart upload of ``part_size`` parts (grown so that it needs at most 10,000),
``parallel`` of them in flight, each sent with its MD5 so that the store
refuses a part damaged on the way. An upload that fails is aborted, so it
leaves no parts behind. (``tristore cp`` adds resuming across runs on top:
tristore/cli/multipart.py.)

A download streams into a temporary file beside the destination and renames
it over the destination only once every byte arrived, so a failed download
never leaves a partial file under the destination's name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore.errors import InvalidArgument
from tristore.model import ObjectInfo
from tristore.validation import choose_part_size

if TYPE_CHECKING:
    from tristore.client.aio import AsyncClient

DEFAULT_MULTIPART_THRESHOLD = 64 * 1024**2
DEFAULT_PART_SIZE = 8 * 1024**2
DEFAULT_PARALLEL = 4


def _read_at(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise InvalidArgument(f"{path} changed while it was being uploaded (it got shorter)")
    return data


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
    parallel: int = DEFAULT_PARALLEL,
    extra: Mapping[str, Any] | None = None,
) -> ObjectInfo:
    src = Path(path)
    if not src.is_file():
        raise InvalidArgument(f"{src} is not a file")
    if parallel < 1:
        raise InvalidArgument("parallel must be at least 1")
    size = src.stat().st_size
    kw = dict(extra or {})
    if size < multipart_threshold:
        with src.open("rb") as f:
            return await client.put_object(bucket, key, f, content_type, metadata, **kw)
    part = choose_part_size(size, part_size)
    ssec = kw.get("sse_customer_key")
    upload = await client.create_multipart_upload(bucket, key, content_type, metadata, **kw)
    limit = asyncio.Semaphore(parallel)

    async def send(number: int, offset: int) -> tuple[int, str]:
        async with limit:
            data = await asyncio.to_thread(_read_at, src, offset, min(part, size - offset))
            md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
            sent = await client.upload_part(
                bucket, key, upload.upload_id, number, data, None, md5, sse_customer_key=ssec
            )
            return number, sent.etag

    try:
        parts = await asyncio.gather(
            *(send(i + 1, off) for i, off in enumerate(range(0, size, part)))
        )
        if src.stat().st_size != size:
            raise InvalidArgument(f"{src} changed while it was being uploaded")
        return await client.complete_multipart_upload(
            bucket, key, upload.upload_id, parts, sse_customer_key=ssec
        )
    except BaseException:
        with contextlib.suppress(Exception):
            await client.abort_multipart_upload(bucket, key, upload.upload_id)
        raise


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
