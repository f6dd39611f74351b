"""Helpers every command shares: s3:// URLs, K=V options, tables, JSON, and
the error type for failures that are the CLI's own (not the cluster's)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from tristore.errors import InvalidArgument
from tristore.validation import check_bucket_name, check_key

if TYPE_CHECKING:
    from tristore.client import Client

SCHEME = "s3://"


class CliError(Exception):
    """A failure the CLI reports as one ``Code: message`` line and exit status 1.

    Cluster errors are :class:`tristore.errors.TristoreError`; this is for the
    ones that never reach a cluster (busy ports, unknown process names, features
    that arrive in a later issue).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_implemented(message: str) -> CliError:
    return CliError("NotImplemented", message)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def cannot(doing: str, path: object, exc: OSError) -> InvalidArgument:
    """A local file the command cannot use, named as the user gave it:
    ``cannot read notes.txt: No such file or directory``. Every local file
    problem (missing, a directory, no permission, a full disk) is
    ``InvalidArgument``, never the name of Python's exception."""
    return InvalidArgument(f"cannot {doing} {path}: {_reason(exc)}")


def local_error(exc: OSError) -> InvalidArgument:
    """An ``OSError`` no command turned into :func:`cannot`, as ``InvalidArgument``
    naming the file it is about, if any."""
    return InvalidArgument(f"{exc.filename}: {_reason(exc)}" if exc.filename else _reason(exc))


@dataclass(frozen=True)
class S3Url:
    bucket: str
    #: The key, or the key prefix for ``ls``; empty when the URL names a bucket only.
    key: str = ""

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"


def is_s3_url(text: str) -> bool:
    return text.startswith(SCHEME)


def parse_s3_url(text: str) -> S3Url:
    """``s3://BUCKET``, ``s3://BUCKET/`` (both: bucket only) or ``s3://BUCKET/KEY``."""
    if not is_s3_url(text):
        raise InvalidArgument(f"expected an s3://BUCKET[/KEY] URL, got {text!r}")
    bucket, _, key = text[len(SCHEME) :].partition("/")
    if not bucket:
        raise InvalidArgument(f"{text!r} names no bucket; write s3://BUCKET[/KEY]")
    check_bucket_name(bucket)
    return S3Url(bucket, key)


def parse_bucket_url(text: str) -> str:
    url = parse_s3_url(text)
    if url.key:
        raise InvalidArgument(f"expected a bucket (s3://BUCKET), got the object URL {text!r}")
    return url.bucket


def parse_object_url(text: str) -> S3Url:
    url = parse_s3_url(text)
    if not url.key:
        raise InvalidArgument(f"{text!r} names a bucket but no key; write s3://{url.bucket}/KEY")
    check_key(url.key)
    return url


def parse_kv(text: str, what: str = "value") -> tuple[str, str]:
    """``K=V`` (the value may be empty and may contain ``=``; the name may not be empty)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise InvalidArgument(f"{what} {text!r} must be of the form NAME=VALUE")
    return name.strip(), value


def parse_kv_list(items: Sequence[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or ():
        name, value = parse_kv(item, what)
        if name in out:
            raise InvalidArgument(f"{what} {name!r} is given twice")
        out[name] = value
    return out


def format_size(n: float) -> str:
    """Human-readable binary size: ``512 B``, ``1.5 KiB``, ``3.0 GiB``."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            break
    return f"{n:.1f} {unit}"


#: Size suffixes (case-insensitive): SI for KB/MB/..., binary for KiB/MiB/... and
#: for the bare K/M/G/T that ``dd`` and ``sort -S`` read as binary too.
SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{u: 1024**i for i, u in enumerate("kmgt", 1)},
    **{f"{u}b": 1000**i for i, u in enumerate("kmgt", 1)},
    **{f"{u}ib": 1024**i for i, u in enumerate("kmgt", 1)},
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in ``8MiB``, ``100MB``, ``1.5G``, ``4096`` (rounded down to a whole byte)."""
    m = _SIZE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in SIZE_UNITS:
        raise InvalidArgument(
            f"{text!r} is not a size: write bytes (4096) or a number with a unit "
            "(KB, MB, GB, TB = powers of 1000; K, M, G, T, KiB, MiB, GiB, TiB = powers of 1024)"
        )
    whole, _, frac = m.group(1).partition(".")
    # Integer arithmetic: 1.1GB must not pick up float rounding.
    scale = 10 ** len(frac)
    return (int(whole or "0") * scale + int(frac or "0")) * SIZE_UNITS[unit] // scale


def format_time(t: dt.datetime) -> str:
    """Local time like ``aws s3 ls``: ``2024-05-01 12:34:56``."""
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def print_json(value: object, out: IO[str] | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(value, indent=2, default=_json_default) + "\n")


#: Version of the ``--json`` documents that carry a ``schema`` field: a field
#: may be added within a version, none removed or changed without a new one.
JSON_SCHEMA = 1


def print_doc(command: str, fields: dict[str, Any], out: IO[str] | None = None) -> None:
    """Print a command's ``--json`` document: ``{"schema": 1, "command": ...,
    **fields}``, ``command`` as typed (``mb``, ``dev up``, ``policy put``)."""
    print_json({"schema": JSON_SCHEMA, "command": command, **fields}, out)


def not_empty(value: str | None, flag: str, want: str, env: str) -> str | None:
    """A flag's value, None when it was not given. One given empty (``--endpoint
    ''``, an unset shell variable) is refused, not read as absent: the command
    would otherwise quietly use the environment's value instead."""
    if value is not None and not value.strip():
        raise InvalidArgument(f"{flag} is empty: give {want}, or leave it out to use ${env}")
    return value


def endpoint_of(endpoint: str | None) -> str | None:
    """``--endpoint``: None when not given (the SDK reads ``TRISTORE_ENDPOINT``)."""
    return not_empty(endpoint, "--endpoint", "HOST:PORT[,HOST:PORT...]", "TRISTORE_ENDPOINT")


def connect(endpoint: str | None) -> Client:
    """A client for ``--endpoint`` or, when it is not given, ``TRISTORE_ENDPOINT``."""
    endpoint = endpoint_of(endpoint)
    # Imported here so that `dev` and `serve` never load the SDK's gRPC stubs.
    from tristore.client import Client

    return Client(endpoint) if endpoint is not None else Client()
