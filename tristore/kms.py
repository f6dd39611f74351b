"""Master keys: the key-provider interface and its local key-file provider.

Everything tristore keeps secret at rest (bucket keys of encrypted objects,
users' secret keys) is sealed under a master key that only a provider holds.
A sealed blob names the master key that sealed it, so after a rotation old
blobs still open while new ones use the new key; re-wrapping moves a blob to
the current key without touching what it protects.

Blob layout: ``b"K1" | len(key id) (1 byte) | key id | nonce (12) | AES-256-GCM
ciphertext+tag``. ``context`` is bound as associated data: a blob sealed for
one purpose (say ``b"user-secret:AKIA..."``) does not open for another.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Protocol

from tristore.errors import InvalidArgument, KeyUnavailable

_MAGIC = b"K1"
_NONCE = 12
KEY_SIZE = 32


class KeyProvider(Protocol):
    """Seals and opens small secrets under master keys it never hands out."""

    def current_key_id(self) -> str: ...

    def seal(self, plaintext: bytes, context: bytes) -> bytes: ...

    def open(self, blob: bytes, context: bytes) -> bytes: ...

    def key_id_of(self, blob: bytes) -> str: ...


def _split(blob: bytes) -> tuple[str, bytes, bytes]:
    if len(blob) < 3 or blob[:2] != _MAGIC:
        raise KeyUnavailable("not a sealed blob (bad header)")
    n = blob[2]
    if len(blob) < 3 + n + _NONCE + 16:
        raise KeyUnavailable("sealed blob is truncated")
    key_id = blob[3 : 3 + n].decode("ascii", "replace")
    nonce = blob[3 + n : 3 + n + _NONCE]
    return key_id, nonce, blob[3 + n + _NONCE :]


class LocalKeyFile:
    """Master keys in a JSON file (mode 0600): ``{"current": id, "keys": {id: base64}}``.

    ``rotate()`` adds a new key and makes it current; old keys stay so that
    what they sealed still opens until it is re-wrapped. The file is re-read
    when it changes on disk, so a rotation made by ``tristore admin`` on one
    process is seen by the others that share the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime = -1.0
        self._current = ""
        self._keys: dict[str, bytes] = {}
        self._load()

    @classmethod
    def create(cls, path: str | Path) -> LocalKeyFile:
        """Create the file with one fresh key unless it exists; open it."""
        p = Path(path)
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            _write_keys(p, "k1", {"k1": secrets.token_bytes(KEY_SIZE)})
        return cls(p)

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise InvalidArgument(
                f"master key file {self.path} does not exist "
                "(dev up creates one; see docs/security.md)"
            ) from None
        if st.st_mtime == self._mtime:
            return
        try:
            doc = json.loads(self.path.read_text())
            keys = {str(k): base64.b64decode(v) for k, v in doc["keys"].items()}
            current = str(doc["current"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"master key file {self.path} is malformed: {exc}") from None
        if current not in keys or any(len(k) != KEY_SIZE for k in keys.values()):
            raise InvalidArgument(
                f"master key file {self.path}: the current key must be listed and "
                f"every key must be {KEY_SIZE} bytes"
            )
        self._keys, self._current, self._mtime = keys, current, st.st_mtime

    def _refresh(self) -> None:
        with self._lock:
            self._load()

    def current_key_id(self) -> str:
        self._refresh()
        return self._current

    def key_ids(self) -> list[str]:
        self._refresh()
        return sorted(self._keys)

    # cryptography is imported where a key is used: the CLI reads key files
    # (admin kms, dev up) and --help need not load it.
    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._refresh()
        kid = self._current.encode("ascii")
        nonce = os.urandom(_NONCE)
        ct = AESGCM(self._keys[self._current]).encrypt(nonce, plaintext, context)
        return _MAGIC + bytes([len(kid)]) + kid + nonce + ct

    def open(self, blob: bytes, context: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id, nonce, ct = _split(blob)
        self._refresh()
        key = self._keys.get(key_id)
        if key is None:
            raise KeyUnavailable(f"master key {key_id!r} is not in {self.path}")
        try:
            return AESGCM(key).decrypt(nonce, ct, context)
        except InvalidTag:
            raise KeyUnavailable(
                "sealed blob does not open: altered, or sealed for another purpose"
            ) from None

    def key_id_of(self, blob: bytes) -> str:
        return _split(blob)[0]

    def rewrap(self, blob: bytes, context: bytes) -> bytes:
        """The same secret sealed under the current key (as is if it already is)."""
        if self.key_id_of(blob) == self.current_key_id():
            return blob
        return self.seal(self.open(blob, context), context)

    def rotate(self) -> str:
        """Add a fresh key, make it current, and return its id."""
        with self._lock:
            self._load()
            n = 1 + max(int(k[1:]) for k in self._keys if k[1:].isdigit()) if self._keys else 1
            new_id = f"k{n}"
            keys = {**self._keys, new_id: secrets.token_bytes(KEY_SIZE)}
            try:
                _write_keys(self.path, new_id, keys)
            except OSError as exc:
                raise KeyUnavailable(
                    f"cannot add a master key to {self.path} ({exc.strerror}): a rotation "
                    "needs the key file writable by the node that runs it (a Kubernetes "
                    "Secret is mounted read-only; see Kubernetes in docs/operations.md)"
                ) from None
            self._mtime = -1.0
            self._load()
        return new_id


def _write_keys(path: Path, current: str, keys: dict[str, bytes]) -> None:
    doc = {"current": current, "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()}}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
