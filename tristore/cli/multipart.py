"""Multipart uploads for ``tristore cp FILE s3://BUCKET/KEY``: the flags, and
the CLI's face of the SDK's resumable ``upload_file``.

A file of ``--multipart-threshold`` bytes or more goes up as an S3 multipart
upload: ``--part-size`` parts (grown so the file needs at most 10,000),
``--parallel`` of them in flight, each sent with its MD5 so the store refuses a
part that arrives damaged. The transfer, the resume record and the resume
decision are the SDK's (:mod:`tristore.client.files`): cp only prints what the
SDK reports (the ``tristore.client.files`` logger) on stderr, draws the
progress bar from its progress callback, and says how to resume or discard an
upload that stops. The SDK is imported when a transfer runs, not for ``--help``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore.cli.util import CliError, cannot, format_size, local_error, parse_size
from tristore.errors import FileChanged, InvalidArgument, TristoreError
from tristore.validation import (
    DEFAULT_MULTIPART_THRESHOLD,
    DEFAULT_PARALLEL_PARTS,
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
)

if TYPE_CHECKING:
    from tristore.client import Client
    from tristore.client.upload_state import UploadState
    from tristore.model import MultipartUpload, ObjectInfo, Part

#: cp's defaults (``--multipart-threshold``, ``--part-size``, ``--parallel``):
#: the SDK's upload_file's.
DEFAULT_THRESHOLD = DEFAULT_MULTIPART_THRESHOLD
DEFAULT_PARALLEL = DEFAULT_PARALLEL_PARTS
MAX_PARALLEL = 64
#: Parts or uploads asked for in one listing page (S3's maximum).
LIST_PAGE = 1000
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


# --- listing ---------------------------------------------------------------------


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


# --- uploading -------------------------------------------------------------------


#: The SDK logger whose records cp prints on stderr, one line each.
SDK_LOGGER = "tristore.client.files"
_notices_lock = threading.Lock()


class _Stderr(logging.Handler):
    """A record's message as one line on whatever ``sys.stderr`` is now."""

    def emit(self, record: logging.LogRecord) -> None:
        print(record.getMessage(), file=sys.stderr)


def show_sdk_notices() -> None:
    """Print what the SDK's upload reports (a resume, an upload gone, an
    earlier upload of a changed file) on stderr, once a process."""
    logger = logging.getLogger(SDK_LOGGER)
    with _notices_lock:
        if not any(isinstance(h, _Stderr) for h in logger.handlers):
            logger.addHandler(_Stderr())
            logger.setLevel(logging.INFO)


def resume_hint(state: UploadState) -> str:
    url = shlex.quote(state.url)
    return (
        f"upload {state.upload_id} is kept: run the same command again to resume it, "
        f"or discard it with: tristore mpu abort {url} {state.upload_id}"
    )


def _kept(path: Path, st: os.stat_result, bucket: str, key: str) -> UploadState | None:
    """The upload the SDK kept for this file after a failure, if any."""
    from tristore.client.upload_state import LocalFile, load_state, state_path

    try:
        return load_state(state_path(LocalFile.from_stat(path, st), bucket, key))
    except (ValueError, OSError):
        return None


def upload(
    c: Client,
    path: Path,
    st: os.stat_result,
    bucket: str,
    key: str,
    options: TransferOptions,
    bar: Callable[[int], object],
    new_object: Mapping[str, Any],
) -> ObjectInfo:
    """Upload a file with the SDK's ``upload_file`` (one PUT below the
    threshold, else a resumable multipart upload; a begun upload is always
    resumed). ``st`` is the file's stat when cp opened it; ``new_object`` holds
    the new object's fields (content type, metadata, tags, ACL, storage class,
    SSE). On a failure or an interrupt the upload is kept, and the error (or a
    line on stderr) says how to resume or discard it."""
    show_sdk_notices()
    try:
        return c.upload_file(
            path,
            bucket,
            key,
            multipart_threshold=options.threshold,
            part_size=options.part_size,
            parallel=options.parallel,
            progress=bar,
            **new_object,
        )
    except FileChanged as e:
        raise FileChanged(
            f"{e.message} (run the command again to upload the file as it is now)"
        ) from None
    except Exception as e:
        state = _kept(path, st, bucket, key)
        err: Exception = e
        if isinstance(e, OSError) and not isinstance(e, TristoreError):
            err = _local_error(e, path)
        if state is None:
            if err is e:
                raise
            raise err from None
        hint = resume_hint(state)
        if isinstance(err, TristoreError | CliError):
            raise CliError(err.code, f"{err.message}; {hint}") from e
        _close(bar)
        print(hint, file=sys.stderr)
        raise
    except BaseException:  # Ctrl-C, SIGTERM: the record says where the upload stood
        state = _kept(path, st, bucket, key)
        if state is not None:
            _close(bar)
            print(resume_hint(state), file=sys.stderr)
        raise


def _local_error(e: OSError, path: Path) -> InvalidArgument:
    """A local failure of an upload: reading the file, or (the error names
    it) the SDK's resume record."""
    if e.filename is not None and os.fspath(e.filename) != os.fspath(path):
        return local_error(e)
    return cannot("read", path, e)


def _close(bar: Callable[[int], object]) -> None:
    close = getattr(bar, "close", None)
    if close is not None:
        close()
