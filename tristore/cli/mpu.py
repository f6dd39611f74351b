"""Multipart upload commands: ``tristore mpu ls``, ``mpu parts``, ``mpu abort``.

``cp`` makes and completes multipart uploads itself; these show the ones left
unfinished (an interrupted cp, another S3 client) and discard them.
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

from tristore.cli import multipart
from tristore.cli.util import (
    connect,
    format_time,
    parse_object_url,
    parse_s3_url,
    print_doc,
    print_json,
)

if TYPE_CHECKING:
    from tristore.model import MultipartUpload, Part


def upload_line(u: MultipartUpload) -> str:
    """``mpu ls``: when it was initiated, its upload id, its key."""
    return f"{format_time(u.initiated)} {u.upload_id} {u.key}"


def part_line(p: Part) -> str:
    """``mpu parts``: part number, last modified, size, ETag."""
    return f"{p.part_number:>5} {format_time(p.last_modified)} {p.size:>10} {p.etag}"


def cmd_ls(args: argparse.Namespace) -> int:
    url = parse_s3_url(args.url)
    with connect(args.endpoint) as c:
        uploads = multipart.iter_uploads(c, url.bucket, url.key)
        if args.json:
            from tristore.model import UploadPage

            print_json(UploadPage(list(uploads), False, None, None).to_json())
            return 0
        for u in uploads:
            print(upload_line(u))
    return 0


def cmd_parts(args: argparse.Namespace) -> int:
    url = parse_object_url(args.url)
    with connect(args.endpoint) as c:
        parts = multipart.iter_parts(c, url.bucket, url.key, args.upload_id)
        if args.json:
            from tristore.model import PartPage

            print_json(PartPage(list(parts), False, None).to_json())
            return 0
        for p in parts:
            print(part_line(p))
    return 0


def cmd_abort(args: argparse.Namespace) -> int:
    url = parse_object_url(args.url)
    with connect(args.endpoint) as c:
        c.abort_multipart_upload(url.bucket, url.key, args.upload_id)
    from tristore.client import upload_state

    # A state file of this upload could only lead cp to find it gone.
    upload_state.forget_upload(url.bucket, url.key, args.upload_id)
    if args.json:
        fields = {"bucket": url.bucket, "key": url.key, "upload_id": args.upload_id}
        print_doc("mpu abort", fields)
    else:
        print(f"abort: {shlex.quote(str(url))} (upload {args.upload_id})")
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    mpu = sub.add_parser(
        "mpu",
        help="list, inspect and abort unfinished multipart uploads",
        description="Multipart uploads in progress: cp starts one for a large file and "
        "completes it; an interrupted cp (or another S3 client) leaves it, holding its parts.",
    )
    actions = mpu.add_subparsers(dest="mpu_command", metavar="COMMAND", required=True)

    p = actions.add_parser(
        "ls",
        parents=[common],
        help="uploads in progress under a prefix",
        description="Every multipart upload in progress under PREFIX (all pages): "
        "initiated time, upload id, key; oldest first within a key.",
    )
    p.add_argument("url", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: uploads (bucket, key, upload_id, initiated, "
        "storage_class, owner), is_truncated, next_key_marker, next_upload_id_marker",
    )
    p.set_defaults(func=cmd_ls)

    p = actions.add_parser(
        "parts",
        parents=[common],
        help="the parts an upload holds",
        description="Every part uploaded so far (all pages): part number, last "
        "modified, size, ETag (the part's MD5). NoSuchUpload if it is complete or aborted.",
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument("upload_id", metavar="UPLOAD_ID")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: parts (part_number, etag, size, last_modified), "
        "is_truncated, next_part_number_marker",
    )
    p.set_defaults(func=cmd_parts)

    p = actions.add_parser(
        "abort",
        parents=[common],
        help="discard an upload and its parts",
        description="Abort a multipart upload: its parts are deleted and it can no "
        "longer be completed; the key's current object is untouched. Also forgets "
        "cp's local resume state for it.",
    )
    p.add_argument("url", metavar="s3://BUCKET/KEY")
    p.add_argument("upload_id", metavar="UPLOAD_ID")
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"schema": 1, "command": "mpu abort", "bucket", "key", "upload_id"}',
    )
    p.set_defaults(func=cmd_abort)
