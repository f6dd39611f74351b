"""Object commands: mb, rb, cp, cat, rm, stat, ls, and the S3 object semantics
version, tag, acl (in the style of ``aws s3`` / ``aws s3api``).

Bodies are streamed in both directions: uploads hand the SDK the open file,
downloads write chunks to a temporary file next to the destination and rename
it into place, so a copy never holds a whole object in memory and a failed
download never leaves a half-written file under the destination's name. Large
files go up as resumable multipart uploads (:mod:`tristore.cli.multipart`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import mimetypes
import os
import secrets
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from tristore.cli import multipart, progress
from tristore.cli.bulk import FilterAction
from tristore.cli.util import (
    JSON_SCHEMA,
    S3Url,
    cannot,
    connect,
    format_time,
    is_s3_url,
    parse_bucket_url,
    parse_kv_list,
    parse_object_url,
    parse_s3_url,
    print_json,
)
from tristore.errors import (
    IncompleteBody,
    InvalidArgument,
    NoSuchTagSet,
    ServerSideEncryptionConfigurationNotFoundError,
)
from tristore.validation import MAX_LIST_KEYS, cap_max_keys, check_key

# The model (~50 ms of dataclasses) is imported where a command builds one, so
# that `tristore CMD --help` and usage errors do not load it.
if TYPE_CHECKING:
    from tristore.client import Client
    from tristore.model import DeleteResult, ListPage, ObjectInfo, VersionEntry, VersionPage

STDIO = "-"


# --- mb / rb / rm -----------------------------------------------------------


def cmd_mb(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    with connect(args.endpoint) as c:
        c.create_bucket(bucket)
    if args.json:
        print_json({"schema": JSON_SCHEMA, "command": "mb", "bucket": bucket})
    else:
        print(f"make_bucket: {bucket}")
    return 0


def cmd_rb(args: argparse.Namespace) -> int:
    if args.force:
        from tristore.cli import bulk_commands  # it uses this module's download helpers

        return bulk_commands.rb_force(args)
    bucket = parse_bucket_url(args.bucket)
    with connect(args.endpoint) as c:
        c.delete_bucket(bucket)
    if args.json:
        print_json(
            {
                "schema": JSON_SCHEMA,
                "command": "rb",
                "bucket": bucket,
                "deleted_versions": 0,
                "aborted_uploads": 0,
            }
        )
    else:
        print(f"remove_bucket: {bucket}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    if args.recursive:
        if args.if_match:
            raise InvalidArgument("--if-match names one object's ETag: not with --recursive")
        from tristore.cli import bulk_commands

        return bulk_commands.rm_recursive(args)
    _refuse_filters(args)
    url = parse_object_url(args.url)
    if args.dryrun:
        print(f"(dryrun) delete: {url}")
        return 0
    with connect(args.endpoint) as c:
        result = c.delete_object(
            url.bucket, url.key, version_id=args.version_id, if_match=args.if_match
        )
    if args.json:
        print_json(
            {
                "schema": JSON_SCHEMA,
                "command": "rm",
                "url": str(url),
                "version_id": result.version_id or None,
                "delete_marker": result.delete_marker,
            }
        )
    else:
        print(describe_delete(url, result, by_version=bool(args.version_id)))
    return 0


def describe_delete(url: S3Url, result: DeleteResult, by_version: bool) -> str:
    """``delete: s3://b/k``, plus what the delete made or removed when versioned."""
    if not result.version_id:
        return f"delete: {url}"
    if result.delete_marker and not by_version:
        return f"delete: {url} (delete marker {result.version_id})"
    what = "delete marker" if result.delete_marker else "version"
    return f"delete: {url} ({what} {result.version_id} removed)"


# --- cp / cat ---------------------------------------------------------------


#: cp flags that describe the new object: not for downloads.
_STANDARD_FLAGS = (
    "cache_control",
    "content_disposition",
    "content_encoding",
    "content_language",
    "expires",
)
_WRITE_FLAGS = ("meta", "content_type", "tag", "acl", "storage_class", "sse", *_STANDARD_FLAGS)


def standard_headers(args: argparse.Namespace) -> dict[str, str]:
    """--cache-control, --content-disposition, --content-encoding,
    --content-language and --expires: the headers stored with the new object."""
    return {_flag(n)[2:]: getattr(args, n) for n in _STANDARD_FLAGS if getattr(args, n) is not None}


#: cp flags that make a PUT conditional: uploads only.
_PUT_CONDITION_FLAGS = ("if_none_match", "if_match")
#: cp flags that shape a multipart upload: uploads of a local file only.
_MULTIPART_FLAGS = ("multipart_threshold", "part_size", "parallel")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _refuse_filters(args: argparse.Namespace) -> None:
    if args.filters:
        raise InvalidArgument("--exclude and --include: only with --recursive")


def _refuse_flags(args: argparse.Namespace, names: Iterable[str], why: str) -> None:
    given = [_flag(n) for n in names if getattr(args, n) not in (None, [])]
    if given:
        raise InvalidArgument(f"{' and '.join(given)}: {why}")


#: cp flags that describe one object: not for a recursive copy.
_SINGLE_FLAGS = (*_WRITE_FLAGS, *_PUT_CONDITION_FLAGS, "version_id", "sse_c_copy_source_key")


def cmd_cp(args: argparse.Namespace) -> int:
    if args.recursive:
        _refuse_flags(args, _SINGLE_FLAGS, "one object's flags, not with --recursive")
        from tristore.cli import bulk_commands

        return bulk_commands.cp_recursive(args)
    _refuse_filters(args)
    if args.dryrun:
        raise InvalidArgument("--dryrun: only with --recursive")
    if args.json and args.dst == STDIO:
        raise InvalidArgument("--json: not when DST is '-' (stdout carries the object's body)")
    metadata = parse_kv_list(args.meta, "--meta")
    tags = parse_kv_list(args.tag, "--tag")
    src, dst = args.src, args.dst
    if is_s3_url(src) and is_s3_url(dst):
        _refuse_flags(
            args, _PUT_CONDITION_FLAGS + _MULTIPART_FLAGS, "only for uploads, not s3:// copies"
        )
        return _copy(parse_object_url(src), parse_s3_url(dst), args, metadata, tags)
    if is_s3_url(dst):
        _refuse_flags(
            args, ["version_id", "sse_c_copy_source_key"], "only for downloads and s3:// copies"
        )
        return _upload(src, parse_s3_url(dst), args, metadata, tags)
    if is_s3_url(src):
        _refuse_flags(
            args,
            (*_WRITE_FLAGS, *_PUT_CONDITION_FLAGS, *_MULTIPART_FLAGS, "sse_c_copy_source_key"),
            "only when DST is s3://BUCKET/KEY",
        )
        return _download(parse_object_url(src), dst, args)
    raise InvalidArgument(
        f"one of SRC and DST must be an s3://BUCKET/KEY URL (got {src!r} and {dst!r})"
    )


def copy_target(src_key: str, url: S3Url) -> str:
    """``s3://b/dir/`` or ``s3://b`` take the source key's last part, as a file would."""
    if url.key and not url.key.endswith("/"):
        return url.key
    name = src_key.rsplit("/", 1)[-1]
    if not name:
        raise InvalidArgument(f"key {src_key!r} has no last part; give a full destination key")
    key = url.key + name
    check_key(key)
    return key


def copy_directives(
    args: argparse.Namespace, metadata: dict[str, str], tags: dict[str, str]
) -> dict[str, Any]:
    """copy_object's keyword arguments: --meta, --content-type or a standard
    header (--cache-control, ...) replace the source's content type, metadata
    and standard headers; --tag replaces its tags."""
    headers = standard_headers(args)
    replace_meta = bool(metadata) or args.content_type is not None or bool(headers)
    return {
        "metadata_directive": "REPLACE" if replace_meta else "COPY",
        "content_type": args.content_type if replace_meta else None,
        "metadata": metadata if replace_meta else None,
        "headers": headers if replace_meta else None,
        "tagging_directive": "REPLACE" if tags else "COPY",
        "tags": tags or None,
        "acl": args.acl,
        "storage_class": args.storage_class,
        "sse": args.sse,
        "sse_customer_key": sse_c_key(args.sse_c_key),
        "copy_source_sse_customer_key": sse_c_key(args.sse_c_copy_source_key),
    }


def sse_c_key(value: str | None) -> bytes | None:
    """An SSE-C key from the command line: base64 of 32 bytes, or fileb://PATH
    (a file of 32 bytes), as the aws CLI takes it."""
    if value is None:
        return None
    if value.startswith("fileb://"):
        path = value[len("fileb://") :]
        try:
            key = Path(path).read_bytes()
        except OSError as e:
            raise cannot("read the SSE-C key", path, e) from None
    else:
        try:
            key = base64.b64decode(value, validate=True)
        except ValueError:
            raise InvalidArgument(
                "the SSE-C key must be base64 of 32 bytes, or fileb://PATH"
            ) from None
    if len(key) != 32:
        raise InvalidArgument(f"the SSE-C key must be 32 bytes (256 bits), not {len(key)}")
    return key


def _copy(
    src: S3Url,
    dst: S3Url,
    args: argparse.Namespace,
    metadata: dict[str, str],
    tags: dict[str, str],
) -> int:
    """A server-side copy: the body moves between the storage nodes only."""
    from tristore.model import CopySource

    key = copy_target(src.key, dst)
    source = CopySource(src.bucket, src.key, version_id=args.version_id or "")
    with connect(args.endpoint) as c:
        result = c.copy_object(source, dst.bucket, key, **copy_directives(args, metadata, tags))
    info = result.info
    target = f"s3://{dst.bucket}/{key}"
    line = (
        f"copy: {src} to {target} ({info.size} bytes, etag {info.etag}"
        + (f", version {info.version_id}" if info.version_id else "")
        + ")"
    )
    _cp_done(args, "copy", str(src), target, info.size, info, line)
    return 0


def _cp_done(
    args: argparse.Namespace,
    op: str,
    src: str,
    dst: str,
    size: int,
    info: ObjectInfo,
    line: str,
    parts: int | None = None,
) -> None:
    """The line a one-object cp prints, or with --json its document (schema 1)."""
    if not args.json:
        print(line)
        return
    print_json(
        {
            "schema": JSON_SCHEMA,
            "command": "cp",
            "op": op,
            "src": src,
            "dst": dst,
            "size": size,
            "etag": info.etag,
            "version_id": info.version_id or None,
            "parts": parts,
        }
    )


def _upload_key(src: str, url: S3Url) -> str:
    """``s3://b/dir/`` or ``s3://b`` take the source file's name, as ``aws s3 cp`` does."""
    if url.key and not url.key.endswith("/"):
        return url.key
    if src == STDIO:
        raise InvalidArgument(f"an upload from stdin needs a full key, not {str(url)!r}")
    key = url.key + Path(src).name
    check_key(key)
    return key


def _upload(
    src: str,
    url: S3Url,
    args: argparse.Namespace,
    metadata: dict[str, str],
    tags: dict[str, str],
) -> int:
    key = _upload_key(src, url)
    conditional = args.if_none_match is not None or args.if_match is not None
    if src == STDIO:
        _refuse_flags(args, _MULTIPART_FLAGS, "only for uploads of a file, not of stdin")
    elif conditional:
        # CompleteMultipartUpload takes no condition: a conditional upload is one PUT.
        _refuse_flags(args, _MULTIPART_FLAGS, "not with --if-none-match or --if-match")
    transfer = multipart.TransferOptions.from_args(args)
    new_object: dict[str, Any] = {
        "metadata": metadata or None,
        "headers": standard_headers(args) or None,
        "tags": tags or None,
        "acl": args.acl,
        "storage_class": args.storage_class,
        "sse": args.sse,
        "sse_customer_key": sse_c_key(args.sse_c_key),
    }
    with contextlib.ExitStack() as stack:
        body: BinaryIO
        if src == STDIO:
            body, size, content_type = sys.stdin.buffer, None, args.content_type
        else:
            path = Path(src)
            if path.is_dir():
                raise InvalidArgument(f"{src} is a directory; cp copies a single file")
            try:
                body = stack.enter_context(path.open("rb"))
            except OSError as e:
                raise cannot("read", src, e) from None
            st = os.fstat(body.fileno())
            size = st.st_size
            content_type = args.content_type or mimetypes.guess_type(path.name)[0]
        c = stack.enter_context(connect(args.endpoint))
        bar = progress.for_stderr(size, enabled=not args.no_progress)
        stack.callback(bar.close)
        if size is not None and not conditional:
            # The SDK's upload_file: one PUT below the threshold, else a
            # resumable multipart upload (and an upload an earlier run left is
            # resumed even below the threshold).
            create = {"content_type": content_type, **new_object}
            info = multipart.upload(c, path, st, url.bucket, key, transfer, bar, create)
        else:
            # The SDK reads the file object chunk by chunk: the body is never all in memory.
            info = c.put_object(
                url.bucket,
                key,
                body,
                content_type=content_type,
                progress=bar,
                if_none_match=args.if_none_match,
                if_match=args.if_match,
                **new_object,
            )
    name = "stdin" if src == STDIO else src
    from tristore.client.parts import etag_parts  # the SDK is loaded by now

    parts = etag_parts(info.etag)
    target = f"s3://{url.bucket}/{key}"
    more = f", {parts} parts" if parts is not None else ""
    line = f"upload: {name} to {target} ({info.size} bytes, etag {info.etag}{more})"
    _cp_done(args, "upload", name, target, info.size, info, line, parts)
    return 0


def _download(url: S3Url, dst: str, args: argparse.Namespace) -> int:
    # Resolve the destination first: a bad local path should fail before any transfer.
    target = None if dst == STDIO else local_target(dst, url.key)
    with (
        connect(args.endpoint) as c,
        c.get_object_stream(
            url.bucket,
            url.key,
            version_id=args.version_id,
            sse_customer_key=sse_c_key(args.sse_c_key),
        ) as stream,
    ):
        bar = progress.for_stderr(stream.info.size, enabled=not args.no_progress)
        try:
            if target is None:
                _write_stdout(stream, bar)
                return 0
            written = write_atomically(target, stream, bar, expect=stream.info.size)
        finally:
            bar.close()
    line = f"download: {url} to {target} ({written} bytes)"
    _cp_done(args, "download", str(url), str(target), written, stream.info, line)
    return 0


def local_target(dst: str, key: str) -> Path:
    """Where a download goes: ``dst`` itself, or ``dst/<key's basename>`` when
    ``dst`` ends in a separator or is an existing directory."""
    path = Path(dst)
    if dst.endswith(("/", os.sep)) or path.is_dir():
        name = key.rsplit("/", 1)[-1]
        if not name:
            raise InvalidArgument(f"key {key!r} has no file name; give a destination file name")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise cannot("write", dst, e) from None
        return path / name
    if not path.parent.is_dir():
        raise InvalidArgument(f"cannot write {dst}: directory {path.parent} does not exist")
    return path


def write_atomically(
    target: Path, chunks: Iterable[bytes], bar: progress.Progress, expect: int | None = None
) -> int:
    """Stream ``chunks`` into a temporary file beside ``target``, then rename it
    over ``target``. On any failure the temporary file is removed. A local
    failure (no directory, no permission, a full disk) is ``InvalidArgument``
    naming ``target``, never the temporary file the user did not ask for."""
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tristore-part"
    written = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        why = f"cannot create a file in {target.parent} ({e.strerror or e})"
        raise InvalidArgument(f"cannot write {target}: {why}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:  # only the local side: chunks may fail on their own
                with _writing(target):
                    f.write(chunk)
                written += len(chunk)
                bar.add(len(chunk))
            with _writing(target):
                f.flush()
                os.fsync(f.fileno())
        if expect is not None and written != expect:
            raise IncompleteBody(f"got {written} bytes of a {expect}-byte object; nothing written")
        with _writing(target):
            os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return written


@contextlib.contextmanager
def _writing(target: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise cannot("write", target, e) from None


def _write_stdout(chunks: Iterable[bytes], bar: progress.Progress | None = None) -> None:
    out = sys.stdout.buffer
    for chunk in chunks:
        out.write(chunk)
        if bar is not None:
            bar.add(len(chunk))
    out.flush()


def cmd_cat(args: argparse.Namespace) -> int:
    url = parse_object_url(args.url)
    sys.stdout.flush()
    with (
        connect(args.endpoint) as c,
        c.get_object_stream(
            url.bucket,
            url.key,
            range=args.range,
            version_id=args.version_id,
            sse_customer_key=sse_c_key(args.sse_c_key),
        ) as stream,
    ):
        _write_stdout(stream)
    return 0


# --- stat -------------------------------------------------------------------


def cmd_stat(args: argparse.Namespace) -> int:
    url = parse_object_url(args.url)
    with connect(args.endpoint) as c:
        info = c.head_object(
            url.bucket,
            url.key,
            version_id=args.version_id,
            sse_customer_key=sse_c_key(args.sse_c_key),
        )
    if args.json:
        print_json(info.to_json())
        return 0
    fields = info.to_json()
    metadata = fields.pop("metadata")
    width = max(len(k) for k in fields) + 2
    for name, value in fields.items():
        print(f"{name + ':':<{width}}{value if value not in ('', None) else '-'}")
    assert isinstance(metadata, dict)
    print(f"{'metadata:':<{width}}{'-' if not metadata else ''}".rstrip())
    for name, value in sorted(metadata.items()):
        print(f"  {name}: {value}")
    return 0


# --- ls ---------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace) -> int:
    if args.url is None:
        return _ls_buckets(args)
    url = parse_s3_url(args.url)
    if args.delimiter == "":
        raise InvalidArgument("--delimiter must not be empty")
    args.delimiter = ls_delimiter(args.delimiter, args.recursive)
    if args.versions:
        if args.continuation_token:
            raise InvalidArgument(
                "--versions pages with --key-marker and --version-id-marker, "
                "not --continuation-token"
            )
        return _ls_versions(url, args)
    _refuse_flags(args, ("key_marker", "version_id_marker"), "only with --versions")
    with connect(args.endpoint) as c:
        if args.max_keys is not None:
            args.max_keys = cap_max_keys(args.max_keys)
            page = _list(c, url, args, args.max_keys, args.continuation_token)
            _print_page(page, args.json)
            if page.is_truncated and not args.json:
                print(
                    f"(more: --continuation-token {page.next_continuation_token})", file=sys.stderr
                )
            return 0
        _ls_all(c, url, args)
    return 0


def ls_delimiter(delimiter: str | None, recursive: bool) -> str | None:
    """What ls groups keys by: '/' by default (one level, PRE lines, as aws s3
    ls), nothing with --recursive, or the --delimiter given."""
    if recursive:
        if delimiter is not None:
            raise InvalidArgument(
                "--recursive lists every key, --delimiter groups them: give one or the other"
            )
        return None
    return "/" if delimiter is None else delimiter


def _list(c: Client, url: S3Url, args: argparse.Namespace, n: int, token: str | None) -> ListPage:
    return c.list_objects(
        url.bucket,
        prefix=url.key,
        delimiter=args.delimiter,
        max_keys=n,
        continuation_token=token,
    )


def _ls_all(c: Client, url: S3Url, args: argparse.Namespace) -> None:
    """Page through everything, 1,000 keys a page, as S3 does."""
    token = args.continuation_token
    contents: list[dict[str, object]] = []
    prefixes: list[str] = []
    while True:
        page = _list(c, url, args, MAX_LIST_KEYS, token)
        if args.json:
            contents.extend(e.to_json() for e in page.contents)
            prefixes.extend(page.common_prefixes)
        else:
            _print_page(page, as_json=False)
        token = page.next_continuation_token
        if not page.is_truncated or not token:
            break
    if args.json:
        print_json(
            {
                "contents": contents,
                "common_prefixes": prefixes,
                "is_truncated": False,
                "next_continuation_token": None,
            }
        )


def _print_page(page: ListPage, as_json: bool) -> None:
    if as_json:
        print_json(page.to_json())
        return
    lines = [f"{'PRE':>30} {p}" for p in page.common_prefixes]
    lines += [f"{format_time(e.last_modified)} {e.size:>10} {e.key}" for e in page.contents]
    if lines:
        print("\n".join(lines))


def _ls_versions(url: S3Url, args: argparse.Namespace) -> int:
    """Every version and delete marker under the prefix, newest first per key."""
    with connect(args.endpoint) as c:
        if args.max_keys is not None:
            args.max_keys = cap_max_keys(args.max_keys)
            page = c.list_object_versions(
                url.bucket,
                prefix=url.key,
                delimiter=args.delimiter,
                max_keys=args.max_keys,
                key_marker=args.key_marker,
                version_id_marker=args.version_id_marker,
            )
            pages: Iterable[VersionPage] = [page]
        else:
            pages = c.iter_object_versions(
                url.bucket,
                prefix=url.key,
                delimiter=args.delimiter,
                page_size=MAX_LIST_KEYS,
                key_marker=args.key_marker,
                version_id_marker=args.version_id_marker,
            )
        merged: list[VersionPage] = []
        for page in pages:
            if args.json:
                merged.append(page)
            else:
                lines = version_lines(page)
                if lines:
                    print("\n".join(lines))
            if args.max_keys is not None and page.is_truncated and not args.json:
                print(
                    f"(more: --key-marker {page.next_key_marker} "
                    f"--version-id-marker {page.next_version_id_marker})",
                    file=sys.stderr,
                )
    if args.json:
        print_json(merge_version_pages(merged).to_json())
    return 0


def version_lines(page: VersionPage) -> list[str]:
    """``ls --versions`` lines: PRE lines, then one line a version or delete marker."""
    lines = [f"{'PRE':>30} {p}" for p in page.common_prefixes]
    return lines + [version_line(e) for e in page.versions]


def version_line(e: VersionEntry) -> str:
    """last modified, size (DEL for a delete marker), version id, * if latest, key."""
    size = "DEL" if e.delete_marker else str(e.size)
    latest = "*" if e.is_latest else " "
    return f"{format_time(e.last_modified)} {size:>10} {e.version_id:<32} {latest} {e.key}"


def merge_version_pages(pages: list[VersionPage]) -> VersionPage:
    """One page of everything; truncated (with the last markers) only when the
    last page given is, which happens when --max-keys asked for one page."""
    from tristore.model import VersionPage

    if not pages:
        return VersionPage([], [], False, None, None)
    last = pages[-1]
    return VersionPage(
        versions=[v for p in pages for v in p.versions],
        common_prefixes=[c for p in pages for c in p.common_prefixes],
        is_truncated=last.is_truncated,
        next_key_marker=last.next_key_marker if last.is_truncated else None,
        next_version_id_marker=last.next_version_id_marker if last.is_truncated else None,
    )


def _ls_buckets(args: argparse.Namespace) -> int:
    if (
        args.max_keys is not None
        or args.continuation_token
        or args.delimiter
        or args.versions
        or args.key_marker
        or args.version_id_marker
    ):
        raise InvalidArgument(
            "--max-keys, --continuation-token, --delimiter, --versions, --key-marker and "
            "--version-id-marker need s3://BUCKET"
        )
    with connect(args.endpoint) as c:
        buckets = c.list_buckets()
    if args.json:
        print_json({"buckets": [{"name": b.name, "created": b.created} for b in buckets]})
    else:
        for b in buckets:
            print(f"{format_time(b.created)} {b.name}")
    return 0


# --- version / tag / acl -----------------------------------------------------

VERSIONING_ACTIONS = {"enable": "Enabled", "suspend": "Suspended", "status": None}


def versioning_label(status: str) -> str:
    """What ``version status`` prints: S3's status, or Unversioned when it has none."""
    return status or "Unversioned"


def cmd_version(args: argparse.Namespace) -> int:
    bucket = parse_bucket_url(args.bucket)
    target = VERSIONING_ACTIONS[args.action]
    with connect(args.endpoint) as c:
        if target is None:
            status = c.get_bucket_versioning(bucket)
        else:
            c.put_bucket_versioning(bucket, target)
            status = target
    if args.json:
        print_json({"bucket": bucket, "status": versioning_label(status)})
    elif target is None:
        print(versioning_label(status))
    else:
        print(f"versioning: s3://{bucket} {status}")
    return 0


def cmd_encryption(args: argparse.Namespace) -> int:
    """Default encryption of a bucket's new objects (S3's Put/Get/DeleteBucketEncryption)."""
    bucket = parse_bucket_url(args.bucket)
    with connect(args.endpoint) as c:
        if args.action == "set":
            c.put_bucket_encryption(bucket, args.sse)
            sse = args.sse
        elif args.action == "rm":
            c.delete_bucket_encryption(bucket)
            sse = ""
        else:
            try:
                sse = c.get_bucket_encryption(bucket)
            except ServerSideEncryptionConfigurationNotFoundError:
                sse = ""
    if args.json:
        print_json({"bucket": bucket, "sse": sse})
    elif args.action == "status":
        print(sse or "none")
    else:
        print(f"default encryption: s3://{bucket} {sse or 'none'}")
    return 0


def format_tags(tags: dict[str, str]) -> str:
    """One ``K=V`` line a tag, sorted by key (empty when there are none)."""
    return "\n".join(f"{k}={v}" for k, v in sorted(tags.items()))


def cmd_tag(args: argparse.Namespace) -> int:
    """An object's tags, or with ``s3://BUCKET`` the bucket's own (as ``mc tag``
    takes either): no K=V shows them, K=V pairs replace them, --delete removes them."""
    url = parse_s3_url(args.url)
    if url.key:
        check_key(url.key)
    tags = parse_kv_list(args.tags, "tag")
    if args.delete and tags:
        raise InvalidArgument("give K=V tags to set, or --delete to remove them all, not both")
    if not url.key:
        return _tag_bucket(url.bucket, tags, args)
    with connect(args.endpoint) as c:
        if args.delete:
            result = c.delete_object_tagging(url.bucket, url.key, version_id=args.version_id)
        elif tags:
            result = c.put_object_tagging(url.bucket, url.key, tags, version_id=args.version_id)
        else:
            result = c.get_object_tagging(url.bucket, url.key, version_id=args.version_id)
    if args.json:
        print_json({"version_id": result.version_id, "tags": dict(sorted(result.tags.items()))})
    elif args.delete or tags:
        n = len(result.tags)
        version = f", version {result.version_id}" if result.version_id else ""
        print(f"tagging: {url} ({n} tag{'' if n == 1 else 's'}{version})")
    elif result.tags:
        print(format_tags(result.tags))
    return 0


def _tag_bucket(bucket: str, tags: dict[str, str], args: argparse.Namespace) -> int:
    """``tag s3://BUCKET``: S3's Get/Put/DeleteBucketTagging. A bucket without
    tags is S3's NoSuchTagSet; shown here as an empty set (exit 0, a note on
    stderr), as ``tag`` shows an object without tags."""
    if args.version_id is not None:
        raise InvalidArgument(
            "--version-id: only with s3://BUCKET/KEY (a bucket's tags have no versions)"
        )
    with connect(args.endpoint) as c:
        if args.delete:
            c.delete_bucket_tagging(bucket)
            current: dict[str, str] = {}
        elif tags:
            current = c.put_bucket_tagging(bucket, tags)
        else:
            try:
                current = c.get_bucket_tagging(bucket)
            except NoSuchTagSet:
                current = {}
    if args.json:
        print_json({"bucket": bucket, "tags": dict(sorted(current.items()))})
    elif args.delete or tags:
        n = len(current)
        print(f"tagging: s3://{bucket} ({n} tag{'' if n == 1 else 's'})")
    elif current:
        print(format_tags(current))
    else:
        print(f"s3://{bucket} has no tags", file=sys.stderr)
    return 0


def cmd_acl(args: argparse.Namespace) -> int:
    url = parse_object_url(args.url)
    with connect(args.endpoint) as c:
        if args.canned is None:
            acl = c.get_object_acl(url.bucket, url.key, version_id=args.version_id)
        else:
            acl = c.put_object_acl(url.bucket, url.key, args.canned, version_id=args.version_id)
    if args.json:
        print_json({"version_id": acl.version_id, "owner": acl.owner, "acl": acl.acl})
    elif args.canned is None:
        print(f"owner: {acl.owner or '-'}\nacl:   {acl.acl}")
    else:
        print(f"acl: {url} {acl.acl}")
    return 0


# --- parsers ----------------------------------------------------------------


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the object commands to the top-level subparsers."""
    p = sub.add_parser(
        "mb",
        parents=[common],
        help="make a bucket",
        description="Create a bucket. Example: tristore mb s3://photos",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument("--json", action="store_true", help=f'print {{"schema": {JSON_SCHEMA}, ...}}')
    p.set_defaults(func=cmd_mb)

    p = sub.add_parser(
        "rb",
        parents=[common],
        help="remove a bucket (--force: with everything in it)",
        description="Delete a bucket; it must be empty (BucketNotEmpty otherwise). With "
        "--force, first abort its unfinished multipart uploads and delete every object "
        "version and delete marker, as 'aws s3 rb --force' does.",
    )
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument(
        "--force",
        action="store_true",
        help="delete every version, delete marker and unfinished upload first",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: schema, command, bucket, deleted_versions, aborted_uploads",
    )
    p.set_defaults(func=cmd_rb)

    _register_cp(sub, common)

    p = sub.add_parser(
        "cat",
        parents=[common],
        help="write an object to stdout",
        description="Stream an object's body to stdout, as bytes.",
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument("--version-id", metavar="ID", help="read this version instead of the newest")
    p.add_argument(
        "--range",
        metavar="bytes=A-B",
        help="only these bytes: bytes=A-B, bytes=A- or bytes=-N (the last N)",
    )
    p.add_argument("--sse-c-key", metavar="KEY", help="SSE-C: the object's key (base64)")
    p.set_defaults(func=cmd_cat)

    p = sub.add_parser(
        "rm",
        parents=[common],
        help="delete an object, or (--recursive) every object under a prefix",
        description="Delete an object (or, with --version-id, one version). With "
        "--recursive, every key under s3://BUCKET[/PREFIX] (PREFIX taken as a folder), "
        "1,000 keys a DeleteObjects call; one 'delete: s3://...' line a key.",
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument("--version-id", metavar="ID", help="delete this version")
    p.add_argument(
        "--if-match",
        metavar="ETAG",
        help="delete only if the object (or the version) has this ETag ('*': any); "
        "PreconditionFailed otherwise, and nothing is deleted",
    )
    p.add_argument("--recursive", action="store_true", help="delete every key under the prefix")
    add_bulk_flags(p, json_help="print one JSON object (schema 1; see docs/commands.md)")
    p.add_argument(
        "--parallel",
        metavar="N",
        type=multipart.parallel_arg,
        help=f"with --recursive: DeleteObjects calls at once, 1..{multipart.MAX_PARALLEL} "
        "(default: 8)",
    )
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser(
        "stat",
        parents=[common],
        help="show an object's metadata",
        description="Show etag, size, content type, user metadata, version id, "
        "last-modified time, replication status, tag count, storage class and "
        "server-side encryption of an object (a HEAD request).",
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument("--version-id", metavar="ID", help="describe this version instead of the newest")
    p.add_argument("--sse-c-key", metavar="KEY", help="SSE-C: the object's key (base64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_stat)

    _register_ls(sub, common)
    _register_semantics(sub, common)


def add_bulk_flags(p: argparse.ArgumentParser, json_help: str) -> None:
    """--dryrun, --exclude, --include and --json of a command that can work in bulk."""
    p.add_argument("--dryrun", action="store_true", help="print what would be done, and do nothing")
    p.add_argument(
        "--exclude",
        metavar="GLOB",
        action=FilterAction,
        dest="filters",
        help="with --recursive: skip paths (below the prefix or directory) matching GLOB",
    )
    p.add_argument(
        "--include",
        metavar="GLOB",
        action=FilterAction,
        dest="filters",
        help="take back paths an earlier --exclude skipped (the last match wins)",
    )
    p.add_argument("--json", action="store_true", help=json_help)


def _register_semantics(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "version",
        parents=[common],
        help="turn bucket versioning on or off, or show it",
        description="enable: keep every version of every key (a delete adds a delete "
        "marker); suspend: new writes replace the 'null' version again, old versions "
        "stay; status: print Enabled, Suspended or Unversioned.",
    )
    p.add_argument("action", choices=list(VERSIONING_ACTIONS), help="enable, suspend or status")
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument("--json", action="store_true", help='print {"bucket": ..., "status": ...}')
    p.set_defaults(func=cmd_version)

    p = sub.add_parser(
        "encryption",
        parents=[common],
        help="set, show or remove a bucket's default encryption",
        description="set: encrypt the bucket's new objects at rest (SSE-S3) unless a request "
        "says otherwise; status: print the default (AES256) or none; rm: new objects are "
        "stored unencrypted again (objects already written stay as they are).",
    )
    p.add_argument("action", choices=["set", "status", "rm"], help="set, status or rm")
    p.add_argument("bucket", metavar="s3://BUCKET")
    p.add_argument("--sse", default="AES256", metavar="ALG", help="with set: AES256 (default)")
    p.add_argument("--json", action="store_true", help='print {"bucket": ..., "sse": ...}')
    p.set_defaults(func=cmd_encryption)

    p = sub.add_parser(
        "tag",
        parents=[common],
        help="show, set or remove an object's or a bucket's tags",
        description="The tags of an object (s3://BUCKET/KEY) or of a bucket (s3://BUCKET). "
        "With no K=V, print the tags (K=V lines). With K=V pairs, replace the whole tag "
        "set (at most 10 on an object, 50 on a bucket). With --delete, remove every tag.",
    )
    p.add_argument("url", metavar="s3://BUCKET[/KEY]")
    # default=[]: not listed as required when the URL is missing.
    p.add_argument("tags", metavar="K=V", nargs="*", default=[], help="the new tag set")
    p.add_argument(
        "--version-id", metavar="ID", help="an object: this version instead of the newest"
    )
    p.add_argument("--delete", action="store_true", help="remove every tag")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"version_id": ..., "tags": {...}} (a bucket: {"bucket": ..., "tags": {...}})',
    )
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser(
        "acl",
        parents=[common],
        help="show or set an object's canned ACL",
        description="With no CANNED, print the owner and canned ACL. With CANNED "
        "(private, public-read, public-read-write, authenticated-read, aws-exec-read, "
        "bucket-owner-read, bucket-owner-full-control), set it.",
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument("canned", metavar="CANNED", nargs="?", help="the canned ACL to set")
    p.add_argument("--version-id", metavar="ID", help="this version instead of the newest")
    p.add_argument(
        "--json", action="store_true", help='print {"version_id": ..., "owner": ..., "acl": ...}'
    )
    p.set_defaults(func=cmd_acl)


def _register_cp(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "cp",
        parents=[common],
        help="copy a file to or from the store",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Copy one object (--recursive: a directory or prefix, see 'sync' too).\n"
        "SRC and DST are each a local path, '-' (stdin as\n"
        "SRC, stdout as DST) or s3://BUCKET/KEY; one of them must be s3://. A key ending\n"
        "in '/' (or none) takes the file's name; a local directory takes the key's.\n"
        "Transfers stream, so objects larger than memory are fine.\n\n"
        "Both s3://: a server-side copy (the body never leaves the cluster); --meta,\n"
        "--content-type or a standard header (--cache-control, ...) replace the source's\n"
        "metadata and headers, --tag its tags.\n\n"
        "A file of --multipart-threshold bytes or more goes up as a multipart upload,\n"
        "--parallel parts at a time. If it stops (Ctrl-C, an error), run the same command\n"
        "again to resume: parts the store already has are not sent again. 'tristore mpu'\n"
        "lists and aborts unfinished uploads. Sizes: 4096, 100MB (powers of 1000),\n"
        "8MiB or 8M (powers of 1024).\n\n"
        "examples:\n"
        "  tristore cp photo.jpg s3://photos/2024/     # key 2024/photo.jpg\n"
        "  tristore cp s3://photos/2024/photo.jpg .    # ./photo.jpg\n"
        "  tristore cp --recursive ./site s3://www/    # every file below ./site\n"
        "  tar c dir | tristore cp - s3://backups/dir.tar\n"
        "  tristore cp s3://backups/dir.tar - | tar x\n"
        "  tristore cp disk.img s3://backups/ --part-size 64MiB --parallel 8\n"
        "  tristore cp s3://photos/a.jpg s3://archive/a.jpg --storage-class GLACIER\n"
        "  tristore cp v2.json s3://cfg/app.json --if-match 5d41402abc4b2a76b9719d911017c592",
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument(
        "--content-type",
        metavar="T",
        help="content type of the upload (default: guessed from the file name)",
    )
    p.add_argument(
        "--meta", metavar="K=V", action="append", help="user metadata for the upload (repeatable)"
    )
    for name, example in (
        ("cache-control", "max-age=3600"),
        ("content-disposition", "'attachment; filename=\"a.csv\"'"),
        ("content-encoding", "gzip"),
        ("content-language", "de"),
        ("expires", "'Thu, 01 Dec 2044 16:00:00 GMT'"),
    ):
        p.add_argument(
            f"--{name}",
            metavar="V",
            help=f"the {name.title()} header stored with the new object and answered by GET "
            f"and HEAD (e.g. {example})",
        )
    p.add_argument(
        "--tag",
        metavar="K=V",
        action="append",
        help="object tag (repeatable, at most 10); on an s3:// copy, replaces the source's tags",
    )
    p.add_argument(
        "--acl", metavar="CANNED", help="canned ACL of the new object (default: private)"
    )
    p.add_argument(
        "--storage-class",
        metavar="CLASS",
        help="storage class of the new object (default: STANDARD)",
    )
    p.add_argument(
        "--sse",
        metavar="ALG",
        help="encrypt the new object at rest under the cluster's keys: AES256 (aws:kms is "
        "taken as a label for the same)",
    )
    p.add_argument(
        "--sse-c-key",
        metavar="KEY",
        help="SSE-C: encrypt the new object under this 256-bit key (base64, or fileb://PATH), "
        "or decrypt the downloaded one with it; every GET and HEAD then needs it",
    )
    p.add_argument(
        "--sse-c-copy-source-key",
        metavar="KEY",
        help="SSE-C: the key the source of an s3:// copy is encrypted with",
    )
    p.add_argument(
        "--if-none-match",
        metavar="'*'",
        help="upload only if the key has no current object (the only value is '*')",
    )
    p.add_argument(
        "--if-match",
        metavar="ETAG",
        help="upload only if the current object has this ETag (compare-and-swap)",
    )
    p.add_argument(
        "--version-id",
        metavar="ID",
        help="download (or copy from) this version instead of the newest",
    )
    p.add_argument(
        "--multipart-threshold",
        metavar="SIZE",
        type=multipart.threshold_arg,
        help="upload files of SIZE or more as a resumable multipart upload (default: 64MiB)",
    )
    p.add_argument(
        "--part-size",
        metavar="SIZE",
        type=multipart.part_size_arg,
        help="bytes a part, 5MiB..5GiB (default: 8MiB; grown when the file would need "
        "more than 10,000 parts)",
    )
    p.add_argument(
        "--parallel",
        metavar="N",
        type=multipart.parallel_arg,
        help=f"parts in flight at once, 1..{multipart.MAX_PARALLEL} (default: 4)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="never draw the progress bar (it only appears when stderr is a terminal)",
    )
    p.add_argument(
        "--recursive",
        action="store_true",
        help="copy a directory or an s3:// prefix (local -> s3, s3 -> local, s3 -> s3); "
        "--parallel is then files at once (default: 8)",
    )
    add_bulk_flags(
        p,
        json_help="print one JSON object (schema 1): op, src, dst, size, etag, version_id, "
        "parts; with --recursive, the bulk document",
    )
    p.set_defaults(func=cmd_cp)


def _register_ls(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ls",
        parents=[common],
        help="list buckets, or objects under a prefix",
        description="With no URL, list buckets. With s3://BUCKET[/PREFIX], list the keys under "
        "PREFIX one '/' level deep, deeper ones as 'PRE dir/' lines, as 'aws s3 ls' does "
        "(--recursive: every key): every page (1,000 each) unless --max-keys asks for one. "
        "With --versions, list every version and delete marker instead.",
    )
    p.add_argument("url", metavar="s3://BUCKET[/PREFIX]", nargs="?")
    p.add_argument(
        "--delimiter",
        metavar="D",
        help="group keys that share a prefix up to D as PRE lines (default: '/')",
    )
    p.add_argument(
        "--recursive",
        action="store_true",
        help="list every key under the prefix, not only the first '/' level",
    )
    p.add_argument(
        "--max-keys",
        metavar="N",
        type=int,
        help=f"return one page of at most N keys (a page holds at most {MAX_LIST_KEYS}: "
        "a larger N is capped, as S3 caps it)",
    )
    p.add_argument(
        "--continuation-token",
        metavar="T",
        help="resume a listing where the page that returned T ended",
    )
    p.add_argument(
        "--versions",
        action="store_true",
        help="list every version and delete marker (DEL), newest first; * marks the latest",
    )
    p.add_argument(
        "--key-marker", metavar="K", help="with --versions: resume after every version of key K"
    )
    p.add_argument(
        "--version-id-marker",
        metavar="ID",
        help="with --versions and --key-marker: resume after this version of the key",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: contents, common_prefixes, is_truncated, "
        "next_continuation_token (--versions: versions, common_prefixes, is_truncated, "
        "next_key_marker, next_version_id_marker)",
    )
    p.set_defaults(func=cmd_ls)
