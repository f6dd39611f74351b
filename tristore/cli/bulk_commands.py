"""The bulk commands: rm --recursive, rb --force, cp --recursive, sync, mv, du.

Each lists its sides, plans its operations (:mod:`tristore.cli.bulk`), then
runs them ``--parallel`` at a time: transfers one a worker thread (the sync
client is safe to share), deletes of objects 1,000 a DeleteObjects call. A
line like ``aws s3``'s is printed as each operation ends (``--json``: one
document at the end); a failed operation does not stop the others, and the
command then exits 1 with one ``Code: message`` line.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import mimetypes
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore.cli import bulk, multipart, objects, progress
from tristore.cli.bulk import COPY, DELETE, DOWNLOAD, UPLOAD, Op, Side
from tristore.cli.util import (
    JSON_SCHEMA,
    CliError,
    S3Url,
    connect,
    format_size,
    is_s3_url,
    local_error,
    parse_bucket_url,
    parse_object_url,
    parse_s3_url,
    print_doc,
    print_json,
)
from tristore.errors import InvalidArgument, TristoreError, as_tristore
from tristore.validation import MAX_DELETE_KEYS

if TYPE_CHECKING:
    from tristore.client import Client

#: Operations in flight at once unless --parallel says otherwise.
DEFAULT_PARALLEL = 8


@dataclass(frozen=True)
class Outcome:
    op: Op
    error: tuple[str, str] | None = None  # S3 code, message

    def to_json(self) -> dict[str, Any]:
        out = self.op.to_json()
        out["ok"] = self.error is None
        out["error"] = (
            None if self.error is None else {"code": self.error[0], "message": self.error[1]}
        )
        return out


@dataclass(frozen=True)
class RunOptions:
    parallel: int = DEFAULT_PARALLEL
    dryrun: bool = False
    as_json: bool = False
    show_progress: bool = True
    transfer: multipart.TransferOptions = field(default_factory=multipart.TransferOptions)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunOptions:
        return cls(
            parallel=getattr(args, "parallel", None) or DEFAULT_PARALLEL,
            dryrun=bool(getattr(args, "dryrun", False)),
            as_json=bool(getattr(args, "json", False)),
            show_progress=not getattr(args, "no_progress", False),
        )


# --- running operations --------------------------------------------------------


def _error(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, CliError):
        return exc.code, exc.message
    if isinstance(exc, OSError) and not isinstance(exc, TristoreError):
        exc = local_error(exc)
    err = as_tristore(exc)
    return err.code, err.message


def _transfer(c: Client, op: Op, options: multipart.TransferOptions) -> None:
    """Run one upload, download or server-side copy."""
    quiet = progress.for_stderr(None, enabled=False)
    if op.kind == UPLOAD:
        assert op.path is not None
        content_type = mimetypes.guess_type(op.path.name)[0]
        with op.path.open("rb") as f:  # an unreadable file fails here, as cp's does
            st = os.fstat(f.fileno())
        create = {"content_type": content_type}
        multipart.upload(c, op.path, st, op.bucket, op.key, options, quiet, create)
    elif op.kind == DOWNLOAD:
        assert op.path is not None
        op.path.parent.mkdir(parents=True, exist_ok=True)
        with c.get_object_stream(op.bucket, op.key) as stream:
            objects.write_atomically(op.path, stream, quiet, expect=stream.info.size)
            stamp = stream.info.last_modified.timestamp()
        # As aws s3 does: the file's mtime is the object's, so sync sees it as current.
        os.utime(op.path, (stamp, stamp))
    elif op.kind == COPY:
        from tristore.model import CopySource  # the model loads with the SDK, not --help

        c.copy_object(CopySource(op.src_bucket, op.src_key), op.bucket, op.key)
    else:
        raise InvalidArgument(f"not a transfer: {op.kind}")


def _delete_batch(c: Client, ops: list[Op]) -> list[Outcome]:
    """Delete objects of one bucket (one DeleteObjects call), or local files."""
    if ops[0].path is not None:
        out = []
        for op in ops:
            try:
                assert op.path is not None
                op.path.unlink()
                out.append(Outcome(op))
            except OSError as e:
                out.append(Outcome(op, _error(e)))
        return out
    results = c.delete_objects(ops[0].bucket, [op.key for op in ops])
    return [
        Outcome(op, None if r.deleted else (r.error_code, r.error_message))
        for op, r in zip(ops, results, strict=True)
    ]


def _jobs(
    c: Client, ops: Sequence[Op], options: RunOptions
) -> Iterator[Callable[[], list[Outcome]]]:
    """The units of work: one transfer, or one batch of deletes."""
    deletes: dict[tuple[str, bool], list[Op]] = {}
    for op in ops:
        if op.refused is not None:

            def refused(op: Op = op) -> list[Outcome]:
                return [Outcome(op, op.refused)]

            yield refused
        elif op.kind == DELETE:
            deletes.setdefault((op.bucket, op.path is not None), []).append(op)
        else:

            def one(op: Op = op) -> list[Outcome]:
                try:
                    _transfer(c, op, options.transfer)
                except Exception as e:  # noqa: BLE001 - one failure is that operation's answer
                    return [Outcome(op, _error(e))]
                return [Outcome(op)]

            yield one
    for group in deletes.values():
        for batch in bulk.batches(group, MAX_DELETE_KEYS):

            def many(batch: list[Op] = batch) -> list[Outcome]:
                try:
                    return _delete_batch(c, batch)
                except Exception as e:  # noqa: BLE001 - the whole batch failed
                    return [Outcome(op, _error(e)) for op in batch]

            yield many


def run_ops(c: Client | None, ops: Sequence[Op], options: RunOptions) -> list[Outcome]:
    """Run ``ops`` (or, with ``dryrun``, only print them), ``parallel`` at a time;
    a line is printed as each ends (not with ``as_json``)."""
    if options.dryrun:
        outcomes = [Outcome(op, op.refused) for op in ops]
        for o in outcomes:
            _report(o, options)
        return outcomes
    assert c is not None
    transfers = [op for op in ops if op.kind != DELETE]
    if transfers:
        bar = progress.for_stderr(sum(op.size for op in transfers), options.show_progress)
    else:
        bar = progress.for_stderr(len(ops), options.show_progress, unit="keys")
    outcomes = []
    pool = cf.ThreadPoolExecutor(options.parallel, thread_name_prefix="tristore-bulk")
    try:
        futures = [pool.submit(job) for job in _jobs(c, ops, options)]
        for fut in cf.as_completed(futures):
            for o in fut.result():
                outcomes.append(o)
                bar.add(_progress_step(o.op, bool(transfers)))
                _report(o, options)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown()
    # Lines went out as operations ended; the answer keeps the plan's order.
    order = {id(op): i for i, op in enumerate(ops)}
    return sorted(outcomes, key=lambda o: order[id(o.op)])


def _progress_step(op: Op, counting_bytes: bool) -> int:
    """What an operation adds to the bar: its bytes (a delete none), or one key."""
    if not counting_bytes:
        return 1
    return 0 if op.kind == DELETE else op.size


def _report(o: Outcome, options: RunOptions, verb: str = "") -> None:
    if options.as_json:
        return
    if o.error is None:
        print(o.op.line(options.dryrun, verb), flush=True)
    else:
        what = verb or o.op.kind
        print(f"{what} failed: {o.op.src}: {o.error[0]}: {o.error[1]}", file=sys.stderr)


def finish(command: str, outcomes: list[Outcome], options: RunOptions, **extra: Any) -> int:
    """Print the ``--json`` document; raise when an operation failed."""
    failed = [o for o in outcomes if o.error is not None]
    if options.as_json:
        done = [o for o in outcomes if o.error is None]
        print_json(
            {
                "schema": JSON_SCHEMA,
                "command": command,
                "dryrun": options.dryrun,
                **extra,
                "operations": [o.to_json() for o in outcomes],
                "summary": {
                    "operations": len(outcomes),
                    "failed": len(failed),
                    "bytes": sum(o.op.size for o in done if o.op.kind != DELETE),
                },
            }
        )
    if failed:
        code, message = failed[0].error  # type: ignore[misc]
        raise CliError(
            code,
            f"{len(failed)} of {len(outcomes)} operations failed; first: "
            f"{failed[0].op.kind} {failed[0].op.src}: {message}",
        )
    return 0


# --- rm --recursive / rb --force -----------------------------------------------


def rm_recursive(args: argparse.Namespace) -> int:
    url = parse_s3_url(args.url)
    if args.version_id:
        raise InvalidArgument("--version-id deletes one version: not with --recursive")
    options = RunOptions.from_args(args)
    with connect(args.endpoint) as c:
        side = Side(url=url, prefix=bulk.s3_prefix(url))
        side.entries = bulk.remote_entries(c, url.bucket, side.prefix)
        ops = [
            bulk.removal(side, e) for e in side.entries if bulk.included(e.rel, args.filters or ())
        ]
        outcomes = run_ops(c, ops, options)
    return finish("rm", outcomes, options)


def rb_force(args: argparse.Namespace) -> int:
    """Abort every multipart upload, delete every version and delete marker,
    then the bucket."""
    bucket = parse_bucket_url(args.bucket)
    as_json = bool(args.json)
    aborted = deleted = 0
    with connect(args.endpoint) as c:
        for up in list(multipart.iter_uploads(c, bucket)):
            c.abort_multipart_upload(bucket, up.key, up.upload_id)
            aborted += 1
            if not as_json:
                print(f"abort: s3://{bucket}/{up.key} (upload {up.upload_id})")
        for page in c.iter_object_versions(bucket, page_size=MAX_DELETE_KEYS):
            refs = [(v.key, v.version_id) for v in page.versions]
            if not refs:
                continue
            for r in c.delete_objects(bucket, refs):
                if not r.deleted:
                    raise CliError(
                        r.error_code, f"cannot delete s3://{bucket}/{r.key}: {r.error_message}"
                    )
                deleted += 1
                if not as_json:
                    print(f"delete: s3://{bucket}/{r.key}" + _version_note(r.version_id))
        c.delete_bucket(bucket)
    if as_json:
        print_json(
            {
                "schema": JSON_SCHEMA,
                "command": "rb",
                "bucket": bucket,
                "deleted_versions": deleted,
                "aborted_uploads": aborted,
            }
        )
    else:
        print(f"remove_bucket: {bucket}")
    return 0


def _version_note(version_id: str) -> str:
    return f" (version {version_id})" if version_id and version_id != "null" else ""


# --- cp --recursive / sync / mv ---------------------------------------------------


def sides(src: str, dst: str, c: Client, create_dst: bool) -> tuple[Side, Side]:
    """Both sides of a recursive copy, listed: a local directory or an s3:// prefix each."""
    if not is_s3_url(src) and not is_s3_url(dst):
        raise InvalidArgument(f"one of SRC and DST must be an s3:// URL (got {src!r} and {dst!r})")
    if src == "-" or dst == "-":
        raise InvalidArgument("'-' (stdin/stdout) is for one object, not a recursive copy")
    return _side(src, c, source=True), _side(dst, c, source=False, create=create_dst)


def _side(text: str, c: Client, source: bool, create: bool = False) -> Side:
    if is_s3_url(text):
        url = parse_s3_url(text)
        side = Side(url=url, prefix=bulk.s3_prefix(url))
        if source or create:  # cp need not list its destination
            side.entries = bulk.remote_entries(c, url.bucket, side.prefix)
        else:
            c.head_bucket(url.bucket)  # NoSuchBucket before any work
        return side
    path = Path(text)
    if source:
        return Side(path=path, entries=bulk.local_entries(path))
    if path.exists() and not path.is_dir():
        raise InvalidArgument(
            f"{text} is a file; the destination of a recursive copy is a directory"
        )
    return Side(path=path, entries=bulk.local_entries(path) if create and path.is_dir() else [])


def cp_recursive(args: argparse.Namespace) -> int:
    options = _with_transfer(RunOptions.from_args(args), args)
    with connect(args.endpoint) as c:
        src, dst = sides(args.src, args.dst, c, create_dst=False)
        ops = bulk.plan_copy(src, dst, args.filters or ())
        outcomes = run_ops(c, ops, options)
    return finish("cp", outcomes, options)


def cmd_sync(args: argparse.Namespace) -> int:
    options = _with_transfer(RunOptions.from_args(args), args)
    with connect(args.endpoint) as c:
        src, dst = sides(args.src, args.dst, c, create_dst=True)
        ops = bulk.plan_sync(src, dst, args.filters or (), args.delete, bulk.file_md5)
        outcomes = run_ops(c, ops, options)
    return finish("sync", outcomes, options)


def cmd_mv(args: argparse.Namespace) -> int:
    """cp, then rm of each source that was copied (never of one that was not)."""
    options = _with_transfer(RunOptions.from_args(args), args)
    with connect(args.endpoint) as c:
        if args.recursive:
            src, dst = sides(args.src, args.dst, c, create_dst=False)
            ops = bulk.plan_copy(src, dst, args.filters or ())
        else:
            if args.filters:
                raise InvalidArgument("--exclude and --include: only with --recursive")
            src, ops = _single_move(c, args.src, args.dst)
        copied = run_ops(c, ops, _quiet(options, options.show_progress))
        moved = [o.op for o in copied if o.error is None]
        removals = [_source_removal(src, op) for op in moved]
        removed = run_ops(c, removals, _quiet(options, False))
    failed_removals = {r.op.src: r.error for r in removed if r.error is not None}
    outcomes = [_moved(o, failed_removals) for o in copied]
    for o in outcomes:
        _report(o, options, verb="move")
    return finish("mv", outcomes, options)


def _single_move(c: Client, src: str, dst: str) -> tuple[Side, list[Op]]:
    if not is_s3_url(src) and not is_s3_url(dst):
        raise InvalidArgument(f"one of SRC and DST must be an s3:// URL (got {src!r} and {dst!r})")
    if src == "-" or dst == "-":
        raise InvalidArgument("mv moves a file or an object; '-' (stdin/stdout) is not one")
    if is_s3_url(src):
        url = parse_object_url(src)
        info = c.head_object(url.bucket, url.key)
        entry = bulk.Entry(url.key, info.size, info.last_modified.timestamp(), info.etag)
        side = Side(url=S3Url(url.bucket), prefix="", entries=[entry])
        if is_s3_url(dst):
            target = parse_s3_url(dst)
            key = objects.copy_target(url.key, target)
            op = bulk.Op(
                COPY,
                src,
                f"s3://{target.bucket}/{key}",
                info.size,
                "",
                None,
                target.bucket,
                key,
                src_bucket=url.bucket,
                src_key=url.key,
            )
        else:
            path = objects.local_target(dst, url.key)
            op = bulk.Op(DOWNLOAD, src, str(path), info.size, "", path, url.bucket, url.key)
        return side, [op]
    path = Path(src)
    if not path.is_file():
        raise InvalidArgument(f"{src} is not a file (use --recursive for a directory)")
    target = parse_s3_url(dst)
    key = objects.copy_target(path.name, target)
    st = path.stat()
    entry = bulk.Entry(path.name, st.st_size, st.st_mtime, path=path)
    op = bulk.Op(
        UPLOAD, src, f"s3://{target.bucket}/{key}", st.st_size, "", path, target.bucket, key
    )
    return Side(path=path.parent, entries=[entry]), [op]


def _source_removal(src: Side, op: Op) -> Op:
    if src.local:
        assert op.path is not None or op.kind == UPLOAD
        return bulk.Op(DELETE, op.src, path=Path(op.src))
    bucket = op.src_bucket if op.kind == COPY else op.bucket
    key = op.src_key if op.kind == COPY else op.key
    return bulk.Op(DELETE, op.src, bucket=bucket, key=key)


def _moved(o: Outcome, failed_removals: dict[str, tuple[str, str]]) -> Outcome:
    """A move is done when its copy and the removal of its source are."""
    err = failed_removals.get(o.op.src) if o.error is None else None
    if err is None:
        return o
    return Outcome(o.op, (err[0], f"copied, but the source was not removed: {err[1]}"))


def _quiet(options: RunOptions, show_progress: bool) -> RunOptions:
    """``options`` printing no lines (mv prints its own once both steps are done)."""
    return RunOptions(options.parallel, options.dryrun, True, show_progress, options.transfer)


def _with_transfer(options: RunOptions, args: argparse.Namespace) -> RunOptions:
    transfer = multipart.TransferOptions(
        threshold=args.multipart_threshold or multipart.DEFAULT_THRESHOLD,
        part_size=args.part_size or multipart.DEFAULT_PART_SIZE,
    )
    return RunOptions(
        options.parallel, options.dryrun, options.as_json, options.show_progress, transfer
    )


# --- du ---------------------------------------------------------------------------


def cmd_du(args: argparse.Namespace) -> int:
    url = parse_s3_url(args.url)
    prefix = bulk.s3_prefix(url)
    count = size = 0
    with connect(args.endpoint) as c:
        for page in c.iter_objects(url.bucket, prefix):
            count += len(page.contents)
            size += sum(e.size for e in page.contents)
    shown = f"s3://{url.bucket}/{prefix}"
    if args.json:
        print_doc("du", {"url": shown, "objects": count, "bytes": size})
    else:
        noun = "object" if count == 1 else "objects"
        print(f"{size}\t{format_size(size)}\t{count} {noun}\t{shown}")
    return 0


# --- parsers ------------------------------------------------------------------------


def _transfer_flags(p: argparse.ArgumentParser) -> None:
    objects.add_bulk_flags(p, json_help="print one JSON object (schema 1; see docs/commands.md)")
    p.add_argument(
        "--parallel",
        metavar="N",
        type=multipart.parallel_arg,
        help=f"files in flight at once, 1..{multipart.MAX_PARALLEL} (default: {DEFAULT_PARALLEL})",
    )
    p.add_argument(
        "--multipart-threshold",
        metavar="SIZE",
        type=multipart.threshold_arg,
        help="upload files of SIZE or more as multipart uploads (default: 64MiB)",
    )
    p.add_argument("--part-size", metavar="SIZE", type=multipart.part_size_arg, help="bytes a part")
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add sync, mv and du to the top-level subparsers."""
    p = sub.add_parser(
        "sync",
        parents=[common],
        help="make a directory or prefix hold what another holds",
        description="Copy what DST lacks or holds otherwise: missing, another size, another "
        "MD5 (when an ETag is one: single-part uploads), else a newer source. SRC and DST: a "
        "local directory or s3://BUCKET[/PREFIX] each, at least one s3://. --delete also "
        "removes what DST has and SRC does not. Downloads take the object's Last-Modified as "
        "their mtime. Example: tristore sync ./site s3://www --delete",
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--delete", action="store_true", help="remove what DST has and SRC does not")
    _transfer_flags(p)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser(
        "mv",
        parents=[common],
        help="move a file or object (--recursive: a directory or prefix)",
        description="cp, then delete each source that was copied (a source whose copy "
        "failed stays). SRC and DST as for cp; with --recursive, as for cp --recursive.",
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--recursive", action="store_true", help="move a directory or an s3:// prefix")
    _transfer_flags(p)
    p.set_defaults(func=cmd_mv)

    p = sub.add_parser(
        "du",
        parents=[common],
        help="total size and object count under a prefix",
        description="Sum the sizes of the current objects under s3://BUCKET[/PREFIX] "
        "(PREFIX taken as a folder) and count them.",
    )
    p.add_argument("url", metavar="s3://BUCKET[/PREFIX]")
    p.add_argument("--json", action="store_true", help="print {schema, url, objects, bytes}")
    p.set_defaults(func=cmd_du)
