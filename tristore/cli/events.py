"""Event commands: ``tristore events tail s3://BUCKET[/PREFIX]``.

One line per object-created or object-removed event, as the cluster commits
them; the cursor that resumes after the last event shown goes to stderr at the
end (``--json`` puts it in every line too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any

from tristore.cli.util import S3Url, endpoint_of, format_time, is_s3_url, parse_s3_url
from tristore.errors import InvalidArgument

if TYPE_CHECKING:
    from tristore.events import Event


def parse_target(text: str, prefix: str | None) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` or a bare ``BUCKET``, and ``--prefix``: (bucket, prefix)."""
    url = parse_s3_url(text) if is_s3_url(text) else parse_s3_url(f"s3://{text}")
    if url.key and prefix is not None:
        raise InvalidArgument(
            f"give the prefix once: in the URL ({S3Url(url.bucket, url.key)}) or with --prefix"
        )
    return url.bucket, url.key or prefix or ""


def format_event(e: Event) -> str:
    """``TIME  NAME  SIZE  VERSION  KEY`` (size ``-`` for a removal)."""
    size = f"{e.size:>10}" if e.type == "ObjectCreated" else f"{'-':>10}"
    return f"{format_time(e.event_time)}  {e.name:<34}  {size}  {e.version_id}  {e.key}"


class _Tail:
    def __init__(self, args: argparse.Namespace, bucket: str, prefix: str) -> None:
        self.args = args
        self.bucket = bucket
        self.prefix = prefix
        self.cursor = ""
        self.count = 0

    async def run(self) -> None:
        # Imported here so that other commands (and --help) never load the
        # SDK's gRPC stubs or an event loop.
        import asyncio

        from tristore.client import AsyncClient
        from tristore.events import Heartbeat

        args = self.args
        async with AsyncClient(endpoint_of(args.endpoint)) as client:
            messages = client.subscribe_events(
                self.bucket,
                self.prefix,
                cursor=args.cursor,
                from_start=args.from_start,
                heartbeats=True,
            )
            if args.limit == 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.timeout):
                    async for m in messages:
                        self.cursor = m.cursor
                        if isinstance(m, Heartbeat):
                            continue
                        self.show(m)
                        self.count += 1
                        if args.limit is not None and self.count >= args.limit:
                            break

    def show(self, e: Event) -> None:
        line = json.dumps(e.to_json(), separators=(",", ":")) if self.args.json else None
        sys.stdout.write((line or format_event(e)) + "\n")
        sys.stdout.flush()


def cmd_tail(args: argparse.Namespace) -> int:
    bucket, prefix = parse_target(args.bucket, args.prefix)
    if args.limit is not None and args.limit < 0:
        raise InvalidArgument(f"--limit must be 0 or more, got {args.limit}")
    if args.timeout is not None and args.timeout <= 0:
        raise InvalidArgument(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
    import uvloop  # here, not at the top: `events tail --help` needs no event loop

    tail = _Tail(args, bucket, prefix)
    try:
        uvloop.run(tail.run())
    finally:
        if tail.cursor:
            print(f"cursor: {tail.cursor}", file=sys.stderr)
    return 0


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    events = sub.add_parser(
        "events",
        help="object-created and object-removed events of a bucket",
        description="Event notifications, read from the storage nodes' change logs.",
    )
    actions = events.add_subparsers(dest="events_command", metavar="COMMAND", required=True)
    p = actions.add_parser(
        "tail",
        parents=[common],
        help="print a bucket's events as they happen",
        description="Print one line per event of the bucket (keys under PREFIX): time, name "
        "(ObjectCreated:Put, ObjectRemoved:DeleteMarkerCreated, ObjectRemoved:Delete), size, "
        "version id, key. Starts from now, after --cursor, or with --from-start at the "
        "beginning of the change logs; runs until Ctrl-C, --limit or --timeout. The "
        "cursor that resumes after the last event shown goes to stderr at the end. "
        "Each key's events come in order, at least once.",
    )
    p.add_argument("bucket", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument("--prefix", metavar="P", default=None, help="only keys that start with P")
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--cursor",
        metavar="C",
        default=None,
        help="resume after the event (or heartbeat) that carried cursor C",
    )
    start.add_argument(
        "--from-start",
        action="store_true",
        help="start at the beginning of the change logs instead of now",
    )
    p.add_argument("--limit", type=int, metavar="N", default=None, help="stop after N events")
    p.add_argument("--timeout", type=float, metavar="S", default=None, help="stop after S seconds")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object a line: name, bucket, key, version_id, size, etag, sequencer, "
        "event_time, node, seq, cursor",
    )
    p.set_defaults(func=cmd_tail)
