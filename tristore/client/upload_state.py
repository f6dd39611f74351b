"""The resume record of ``upload_file`` (and so of ``tristore cp``): one small
JSON file an unfinished multipart upload.

The file lives in :func:`state_dir` and is named by a hash of the source
file's absolute path, size and mtime and the destination, so an upload of the
same unchanged file to the same key finds it again (from the SDK or the CLI,
they share the directory), and a changed file never resumes an upload of its
old bytes. It holds what a resume needs from any endpoint of the
cluster (no endpoint is stored): bucket, key, upload id, part size, and the
parts known to be uploaded. It starts with a format version.

Layout (format 1)::

    {"format": 1, "source": "/abs/path", "size": N, "mtime_ns": N,
     "bucket": "b", "key": "k", "upload_id": "...", "part_size": N,
     "parts": [{"part_number": 1, "etag": "<md5 hex>", "size": N}, ...]}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The state file's format version (its ``format`` field).
STATE_FORMAT = 1
#: While parts complete the state file is rewritten at most this often (and
#: always when the upload stops): losing the last second of records costs nothing,
#: since a resume asks the store which parts it has.
SAVE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class LocalFile:
    """The file being uploaded as it was when the upload began."""

    path: Path  # absolute
    size: int
    mtime_ns: int

    @classmethod
    def from_stat(cls, path: Path, st: os.stat_result) -> LocalFile:
        return cls(path.absolute(), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class PartRecord:
    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class UploadState:
    """What a resume needs; nothing in it names an endpoint, so any node will do."""

    source: str
    size: int
    mtime_ns: int
    bucket: str
    key: str
    upload_id: str
    part_size: int
    parts: tuple[PartRecord, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "format": STATE_FORMAT,
            "source": self.source,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "parts": [
                {"part_number": p.number, "etag": p.etag, "size": p.size} for p in self.parts
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> UploadState:
        """Raises ValueError when ``data`` is not a state this version wrote."""
        try:
            if data["format"] != STATE_FORMAT:
                raise ValueError(f"format {data['format']!r}, not {STATE_FORMAT}")
            state = cls(
                source=_typed(data["source"], str),
                size=_typed(data["size"], int),
                mtime_ns=_typed(data["mtime_ns"], int),
                bucket=_typed(data["bucket"], str),
                key=_typed(data["key"], str),
                upload_id=_typed(data["upload_id"], str),
                part_size=_typed(data["part_size"], int),
                parts=tuple(_part_record(p) for p in data["parts"]),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an upload state ({type(e).__name__}: {e})") from None
        return state

    def is_for(self, src: LocalFile, bucket: str, key: str) -> bool:
        return (self.source, self.size, self.mtime_ns, self.bucket, self.key) == (
            str(src.path),
            src.size,
            src.mtime_ns,
            bucket,
            key,
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _part_record(data: Any) -> PartRecord:
    return PartRecord(
        _typed(data["part_number"], int), _typed(data["etag"], str), _typed(data["size"], int)
    )


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/tristore/uploads``, else ``~/.local/state/tristore/uploads``."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME", "")
    # The XDG spec says to ignore a relative path.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "tristore" / "uploads"


def state_path(src: LocalFile, bucket: str, key: str, directory: Path | None = None) -> Path:
    """The state file of uploading this file, as it is now, to s3://bucket/key."""
    identity = json.dumps([str(src.path), src.size, src.mtime_ns, f"s3://{bucket}/{key}"])
    name = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return (directory or state_dir()) / f"{name}.json"


def has_state(src: LocalFile, bucket: str, key: str, directory: Path | None = None) -> bool:
    """An earlier run left a state file for this upload."""
    return state_path(src, bucket, key, directory).is_file()


def load_state(path: Path) -> UploadState | None:
    """The state in ``path``; None when there is none; ValueError when unreadable."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return UploadState.from_json(json.loads(text))
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e})") from None


def save_state(path: Path, state: UploadState) -> None:
    """Write ``state`` to ``path`` atomically (a reader sees the old or the new)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(json.dumps(state.to_json(), indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def saved_states(directory: Path | None = None) -> Iterator[tuple[Path, UploadState]]:
    """Every readable state file in ``directory`` (unreadable ones are skipped)."""
    directory = directory or state_dir()
    for path in sorted(directory.glob("*.json")):
        try:
            state = load_state(path)
        except (ValueError, OSError):
            continue
        if state is not None:
            yield path, state


def forget_upload(
    bucket: str, key: str, upload_id: str, directory: Path | None = None
) -> list[Path]:
    """Remove the state files of an upload (after an abort); returns them."""
    gone = []
    for path, state in saved_states(directory):
        if (state.bucket, state.key, state.upload_id) == (bucket, key, upload_id):
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


class StateFile:
    """The state of the upload under way, rewritten as parts complete; safe to
    call from the part threads."""

    def __init__(
        self,
        path: Path,
        state: UploadState,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = SAVE_INTERVAL_S,
    ) -> None:
        self.path = path
        self._base = state
        self._parts = {p.number: p for p in state.parts}
        self._lock = threading.Lock()
        self._clock = clock
        self._interval = interval_s
        self._saved_at = clock()

    @property
    def state(self) -> UploadState:
        with self._lock:
            return self._state()

    def _state(self) -> UploadState:
        parts = tuple(self._parts[n] for n in sorted(self._parts))
        return dataclasses.replace(self._base, parts=parts)

    def reset(self, parts: Iterable[PartRecord]) -> None:
        """Record exactly ``parts`` as uploaded, and save."""
        with self._lock:
            self._parts = {p.number: p for p in parts}
            self._save()

    def record(self, part: PartRecord) -> None:
        with self._lock:
            self._parts[part.number] = part
            if self._clock() - self._saved_at >= self._interval:
                self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        save_state(self.path, self._state())
        self._saved_at = self._clock()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
