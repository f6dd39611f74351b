"""Planning bulk work (cp --recursive, sync, mv --recursive, rm --recursive):
what is on each side, which operations to run, and where a key lands on disk.

Pure functions over :class:`Entry` lists, so every rule (filters, the sync
comparison, safe local paths) is tested without a cluster; the commands that
list, run and report are in :mod:`tristore.cli.bulk_commands`.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tristore.cli.util import S3Url
from tristore.errors import InvalidArgument
from tristore.validation import check_key

if TYPE_CHECKING:
    from tristore.client import Client


UPLOAD, DOWNLOAD, COPY, DELETE = "upload", "download", "copy", "delete"

#: Why sync copies a file: not at the destination, another size, another MD5,
#: newer at the source; or (``--delete``) why it removes one.
NEW, SIZE, ETAG, NEWER, EXTRA = "new", "size", "etag", "newer", "extra"


@dataclass(frozen=True)
class Entry:
    """A file under a local root, or an object under an s3:// prefix."""

    #: The path below the root (or the key below the prefix), '/'-separated.
    rel: str
    size: int
    #: Seconds since the epoch (a file's mtime, an object's Last-Modified).
    mtime: float
    #: An object's ETag ("" for a file).
    etag: str = ""
    #: A file's path (None for an object).
    path: Path | None = None


@dataclass(frozen=True)
class Op:
    """One operation of a bulk command, as it is printed and as it is run."""

    kind: str  # UPLOAD, DOWNLOAD, COPY or DELETE
    src: str  # what is read (or deleted): a local path or an s3:// URL
    dst: str = ""  # what is written ("" for a delete)
    size: int = 0
    reason: str = ""
    path: Path | None = None  # the local file read, written or deleted
    bucket: str = ""  # the object written, read or deleted
    key: str = ""
    src_bucket: str = ""  # an s3 -> s3 copy's source
    src_key: str = ""
    #: Why the operation cannot run (planned, then reported as failed): code, message.
    refused: tuple[str, str] | None = None

    def line(self, dryrun: bool = False, verb: str = "") -> str:
        """``upload: a.txt to s3://b/a.txt``, ``delete: s3://b/k``, as ``aws s3``
        prints (``verb`` in place of the kind: ``move: ...``)."""
        text = f"{verb or self.kind}: {self.src}" + (f" to {self.dst}" if self.dst else "")
        return f"(dryrun) {text}" if dryrun else text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.kind, "src": self.src, "dst": self.dst or None}
        out["size"] = self.size
        out["reason"] = self.reason or None
        return out


# --- filters -----------------------------------------------------------------


class FilterAction(argparse.Action):
    """``--exclude G`` / ``--include G``: appended in order to ``filters``, as
    ``(kind, glob)``; the last filter that matches a path decides, as in aws s3."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        kind = "exclude" if option_string == "--exclude" else "include"
        filters = list(getattr(namespace, self.dest, None) or [])
        filters.append((kind, str(values)))
        setattr(namespace, self.dest, filters)


def included(rel: str, filters: Sequence[tuple[str, str]]) -> bool:
    """Whether ``rel`` passes the filters: included unless excluded, the last
    matching filter winning (``--exclude '*' --include '*.txt'``: only .txt).
    A glob's ``*`` matches '/' too, as aws s3's does."""
    keep = True
    for kind, glob in filters:
        if fnmatch.fnmatchcase(rel, glob):
            keep = kind == "include"
    return keep


# --- the two sides -------------------------------------------------------------


def s3_prefix(url: S3Url) -> str:
    """The key prefix a recursive command works under: ``s3://b/dir`` and
    ``s3://b/dir/`` both mean the keys below ``dir/`` (as aws s3 reads them)."""
    if not url.key or url.key.endswith("/"):
        return url.key
    return url.key + "/"


def local_entries(root: Path) -> list[Entry]:
    """Every regular file below ``root`` (nested directories too; symbolic
    links to directories are not followed), sorted by path."""
    if not root.is_dir():
        raise InvalidArgument(f"{root} is not a directory; a recursive copy reads a directory")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            path = Path(dirpath, name)
            try:
                st = path.stat()
            except OSError:
                continue  # vanished, or a dangling link
            if not os.path.isfile(path):
                continue
            rel = path.relative_to(root).as_posix()
            out.append(Entry(rel, st.st_size, st.st_mtime, path=path))
    return sorted(out, key=lambda e: e.rel)


def remote_entries(c: Client, bucket: str, prefix: str) -> list[Entry]:
    """Every object below ``prefix``, its key made relative to it (key order)."""
    out = []
    for page in c.iter_objects(bucket, prefix):
        for e in page.contents:
            out.append(Entry(e.key[len(prefix) :], e.size, e.last_modified.timestamp(), e.etag))
    return out


def local_path(root: Path, rel: str) -> Path:
    """Where the object ``rel`` (a key below the prefix) goes under ``root``.

    Runs of '/' count as one; a key with a ``.`` or ``..`` part, or that would
    resolve (through a symbolic link) outside ``root``, is refused: a download
    never writes outside its destination directory."""
    parts = [p for p in rel.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidArgument(
            f"key part {rel!r} has a '.' or '..' component; it is not written, "
            f"as it would land outside {root}"
        )
    if not parts or rel.endswith("/"):
        raise InvalidArgument(f"key part {rel!r} names a directory, not a file")
    target = root.joinpath(*parts)
    base = root.resolve()
    if not target.resolve().is_relative_to(base):
        raise InvalidArgument(f"{target} resolves outside {root}; it is not written")
    return target


def object_key(prefix: str, rel: str) -> str:
    key = prefix + rel
    check_key(key)
    return key


# --- plans ---------------------------------------------------------------------


@dataclass
class Side:
    """One side of a bulk command: a local directory or an s3:// prefix."""

    path: Path | None = None
    url: S3Url | None = None
    prefix: str = ""
    entries: list[Entry] = field(default_factory=list)

    @property
    def local(self) -> bool:
        return self.path is not None

    def name(self, rel: str) -> str:
        """How a path below this side is printed."""
        if self.path is not None:
            return str(self.path / rel)
        assert self.url is not None
        return f"s3://{self.url.bucket}/{self.prefix}{rel}"


def transfer(src: Side, dst: Side, e: Entry, reason: str = "") -> Op:
    """The operation that copies ``e`` from ``src`` to ``dst``."""
    show_src = str(e.path) if e.path is not None else src.name(e.rel)
    if dst.path is not None:
        assert src.url is not None
        try:
            target = local_path(dst.path, e.rel)
        except InvalidArgument as err:
            return Op(
                DOWNLOAD, show_src, str(dst.path), e.size, reason, refused=(err.code, err.message)
            )
        return Op(
            DOWNLOAD,
            show_src,
            str(target),
            e.size,
            reason,
            target,
            src.url.bucket,
            src.prefix + e.rel,
        )
    assert dst.url is not None
    key = object_key(dst.prefix, e.rel)  # a bad key refuses the whole command, before any work
    show_dst = f"s3://{dst.url.bucket}/{key}"
    if src.path is not None:
        return Op(UPLOAD, show_src, show_dst, e.size, reason, e.path, dst.url.bucket, key)
    assert src.url is not None
    return Op(
        COPY,
        show_src,
        show_dst,
        e.size,
        reason,
        None,
        dst.url.bucket,
        key,
        src.url.bucket,
        src.prefix + e.rel,
    )


def removal(side: Side, e: Entry, reason: str = "") -> Op:
    """The operation that deletes ``e`` from ``side``."""
    if side.path is not None:
        return Op(DELETE, str(e.path or side.path / e.rel), size=e.size, reason=reason, path=e.path)
    assert side.url is not None
    key = side.prefix + e.rel
    return Op(
        DELETE,
        f"s3://{side.url.bucket}/{key}",
        size=e.size,
        reason=reason,
        bucket=side.url.bucket,
        key=key,
    )


def wanted(e: Entry, dst: Side, filters: Sequence[tuple[str, str]]) -> bool:
    """Whether ``e`` is copied to ``dst``: it passes the filters, and it is not a
    directory marker (a key ending in '/') bound for a local directory."""
    marker = not e.rel or e.rel.endswith("/")
    return included(e.rel, filters) and not (dst.local and marker)


def plan_copy(src: Side, dst: Side, filters: Sequence[tuple[str, str]]) -> list[Op]:
    """cp --recursive: every entry of ``src`` that passes the filters."""
    ops = [transfer(src, dst, e) for e in src.entries if wanted(e, dst, filters)]
    return _refuse_collisions(ops)


def plan_sync(
    src: Side,
    dst: Side,
    filters: Sequence[tuple[str, str]],
    delete: bool,
    md5: Callable[[Path], str],
) -> list[Op]:
    """sync: the entries of ``src`` that ``dst`` lacks or holds otherwise
    (:func:`differs`); with ``delete``, removals of what ``dst`` has and
    ``src`` does not. Filters apply to both sides (an excluded file is neither
    copied nor deleted)."""
    have = {_target_rel(dst, e.rel): e for e in dst.entries}
    ops = []
    kept = set()
    for e in src.entries:
        if not wanted(e, dst, filters):
            continue
        kept.add(_target_rel(dst, e.rel))
        reason = differs(e, have.get(_target_rel(dst, e.rel)), md5)
        if reason:
            ops.append(transfer(src, dst, e, reason))
    ops = _refuse_collisions(ops)
    if delete:
        ops += [
            removal(dst, e, EXTRA)
            for e in dst.entries
            if e.rel not in kept and included(e.rel, filters)
        ]
    return ops


def _target_rel(dst: Side, rel: str) -> str:
    """``rel`` as the destination spells it: a local side collapses '/' runs."""
    if dst.local:
        return "/".join(p for p in rel.split("/") if p)
    return rel


def _refuse_collisions(ops: list[Op]) -> list[Op]:
    """Two keys that land on one local file (``a//b`` and ``a/b``): the second is refused."""
    seen: set[Path] = set()
    out = []
    for op in ops:
        if op.kind == DOWNLOAD and op.path is not None and op.refused is None:
            path = op.path
            if path in seen:
                op = Op(
                    op.kind,
                    op.src,
                    op.dst,
                    op.size,
                    op.reason,
                    refused=("InvalidArgument", f"another key is already written to {op.path}"),
                )
            else:
                seen.add(path)
        out.append(op)
    return out


def is_md5_etag(etag: str) -> bool:
    """A single-part upload's ETag: the body's MD5 (32 hex digits, no ``-N``)."""
    bare = etag.strip('"')
    return len(bare) == 32 and all(c in "0123456789abcdef" for c in bare.lower())


def differs(src: Entry, dst: Entry | None, md5: Callable[[Path], str]) -> str:
    """Why sync copies ``src`` over ``dst`` ("" when it does not): missing,
    another size, another MD5 (compared only when one side's ETag is an MD5:
    a multipart ETag is not one, and a file's MD5 is read only then), else a
    newer source."""
    if dst is None:
        return NEW
    if src.size != dst.size:
        return SIZE
    a = _known_md5(src)
    b = _known_md5(dst)
    if src.path is None and dst.path is None and src.etag.strip('"') == dst.etag.strip('"'):
        return ""
    if a is None and b is not None and src.path is not None:
        a = md5(src.path)
    if b is None and a is not None and dst.path is not None:
        b = md5(dst.path)
    if a is not None and b is not None:
        return ETAG if a != b else ""
    return NEWER if src.mtime > dst.mtime else ""


def _known_md5(e: Entry) -> str | None:
    return e.etag.strip('"').lower() if e.path is None and is_md5_etag(e.etag) else None


def file_md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def batches(items: Iterable[Op], n: int) -> Iterator[list[Op]]:
    batch: list[Op] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
