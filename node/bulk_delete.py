"""DeleteObjects below the protocol layer: many deletes of one bucket, each
authorized and run as its own DeleteObject, a bounded number at once. The gRPC
servicer and the S3 HTTP API both call :func:`delete_objects`, so a key is
deleted, refused or reported the same whichever door the request came in by."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from node.coordinator import Coordinator
from tristore.errors import TristoreError, as_tristore
from tristore.model import DeletedObject
from tristore.validation import check_delete_count

log = logging.getLogger(__name__)

#: Deletes of one call in flight at once.
DELETE_CONCURRENCY = 16

#: ``await check(key, version_id)`` raises (AccessDenied) unless the caller may
#: delete that key: the door's per-key DeleteObject authorization.
KeyCheck = Callable[[str, str], Awaitable[None]]


async def delete_objects(
    coord: Coordinator,
    bucket: str,
    objects: Sequence[tuple[str, str, str]],
    check: KeyCheck | None,
    concurrency: int = DELETE_CONCURRENCY,
) -> list[DeletedObject]:
    """Delete each ``(key, version_id, if_match)`` of ``objects`` (``if_match``:
    "", or the ETags the object must have, as DeleteObject's If-Match); one
    result each, in order.
    A key that fails does not stop the others: its result carries the S3 code
    and message its own DeleteObject would have raised. A bucket that does not
    exist fails the whole call (NoSuchBucket, S3's 404), not each key."""
    check_delete_count(len(objects))
    await coord.buckets.require_bucket(bucket)
    limit = asyncio.Semaphore(concurrency)

    async def one(key: str, version_id: str, if_match: str) -> DeletedObject:
        async with limit:
            try:
                if check is not None:
                    await check(key, version_id)
                result = await coord.delete_object(bucket, key, version_id, if_match)
            except Exception as exc:
                if not isinstance(exc, TristoreError):
                    log.error("DeleteObjects of %s/%s failed", bucket, key, exc_info=exc)
                err = as_tristore(exc)
                return DeletedObject(
                    key, version_id, error_code=err.code, error_message=err.message
                )
        if result.delete_marker:
            return DeletedObject(key, version_id, True, result.version_id)
        return DeletedObject(key, version_id)

    return list(await asyncio.gather(*(one(k, v, m) for k, v, m in objects)))
