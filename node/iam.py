"""Users and access keys, stored in the cluster.

The whole table is one record of the internal bucket :data:`keys.IAM` (not a
valid S3 name, so no user can reach it), read and written through the same
linearizable protocol as any key (node/protocol.py): three AZs, and a change
through one node is seen by a read through any node. Changes are
compare-and-swap writes, as bucket records' are. The table is small (a user
and a key are a few hundred bytes), JSON in the record's metadata::

    {"v": 1,
     "users": {"alice": {"role": "user", "buckets": [], "created_ms": ...}},
     "keys": {"TK...": {"user": "alice", "secret": "<base64 sealed>", "created_ms": ...}}}

A secret is stored only sealed under the cluster master key
(``tristore.kms``), bound to its access key id. The bootstrap users come from
the config and are not in the table: ``root`` (role admin) and, when
configured, ``replication`` (role replication).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from node import keys
from node.metrics import AUTH_TABLE_READS
from node.protocol import Protocol
from tristore import credentials
from tristore.config import ClusterConfig
from tristore.errors import (
    ConditionalRequestConflict,
    EntityAlreadyExists,
    InternalError,
    InvalidArgument,
    NoSuchEntity,
)
from tristore.kms import LocalKeyFile
from tristore.model import ObjectVersion
from tristore.stamps import ZERO

ADMIN = "admin"
USER = "user"
REPLICATION = "replication"
ROLES = (ADMIN, USER, REPLICATION)
ROOT = "root"
BOOTSTRAP_REPLICATION = "replication"
TABLE_KEY = "table"
_FIELD = "iam"
_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9_.@+=,-]{1,64}$")


@dataclass(frozen=True)
class User:
    name: str
    role: str
    #: Replication principals: the buckets they may apply replicas to ("*": any).
    buckets: tuple[str, ...] = ()
    created_ms: int = 0

    def may_replicate_to(self, bucket: str) -> bool:
        return "*" in self.buckets or bucket in self.buckets


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    user: str
    created_ms: int = 0
    sealed: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Table:
    users: dict[str, User] = field(default_factory=dict)
    keys: dict[str, AccessKey] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": _FORMAT,
                "users": {
                    u.name: {"role": u.role, "buckets": list(u.buckets), "created_ms": u.created_ms}
                    for u in self.users.values()
                },
                "keys": {
                    k.access_key_id: {
                        "user": k.user,
                        "secret": base64.b64encode(k.sealed).decode(),
                        "created_ms": k.created_ms,
                    }
                    for k in self.keys.values()
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Table:
        try:
            doc = json.loads(text)
            if doc.get("v") != _FORMAT:
                raise InternalError(f"unknown user table format {doc.get('v')!r}")
            users = {
                n: User(n, u["role"], tuple(u.get("buckets", ())), int(u.get("created_ms", 0)))
                for n, u in doc["users"].items()
            }
            akeys = {
                k: AccessKey(
                    k, v["user"], int(v.get("created_ms", 0)), base64.b64decode(v["secret"])
                )
                for k, v in doc["keys"].items()
            }
        except (ValueError, KeyError, TypeError) as e:
            raise InternalError(f"the user table is malformed: {e}") from None
        return cls(users, akeys)


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidArgument(
            f"user name {name!r} is invalid: 1-64 characters of letters, digits and _.@+=,-"
        )


class Iam:
    """The user table: read (cached for ``[auth] cache_s``) and changed."""

    def __init__(self, cfg: ClusterConfig, protocol: Protocol, kms: LocalKeyFile) -> None:
        self.cfg = cfg
        self.protocol = protocol
        self.kms = kms
        self.bootstrap: dict[str, tuple[User, str]] = {}
        auth = cfg.auth
        if auth.root_access_key_id:
            self.bootstrap[auth.root_access_key_id] = (
                User(ROOT, ADMIN),
                credentials.read_sealed_file(
                    cfg.relative(auth.root_secret_file), kms, auth.root_access_key_id
                ),
            )
        if auth.replication_access_key_id:
            buckets = tuple(b.strip() for b in auth.replication_buckets.split(",") if b.strip())
            self.bootstrap[auth.replication_access_key_id] = (
                User(BOOTSTRAP_REPLICATION, REPLICATION, buckets),
                credentials.read_sealed_file(
                    cfg.relative(auth.replication_secret_file),
                    kms,
                    auth.replication_access_key_id,
                ),
            )
        self._table = Table()
        self._read_at = -1e9
        self._refreshing: asyncio.Future[Table] | None = None
        #: Opened secrets by key id, with the sealed blob they came from.
        self._secrets: dict[str, tuple[bytes, str]] = {}
        #: Called with the new table whenever it is re-read (the guard's caches).
        self.on_change: Callable[[], None] = lambda: None

    def root_credentials(self) -> credentials.Credentials | None:
        for akid, (user, secret) in self.bootstrap.items():
            if user.name == ROOT:
                return credentials.Credentials(akid, secret)
        return None

    # -- reads -------------------------------------------------------------

    async def _read(self) -> tuple[Table, ObjectVersion | None]:
        AUTH_TABLE_READS.inc()
        record, _ = await self.protocol.read(keys.IAM, TABLE_KEY)
        if record is None or record.deleted or _FIELD not in record.metadata:
            return Table(), record
        return Table.from_json(record.metadata[_FIELD]), record

    async def table(self, max_age_s: float | None = None) -> Table:
        """The table as read at most ``max_age_s`` (default ``[auth] cache_s``) ago.
        Concurrent callers share one read."""
        age = self.cfg.auth.cache_s if max_age_s is None else max_age_s
        if time.monotonic() - self._read_at <= age:
            return self._table
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
        fut = self._refreshing
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done() and self._refreshing is fut:
                self._refreshing = None

    async def table_since(self, moment: float) -> Table:
        """The table as read by a read that began at ``moment`` or later."""
        for _ in range(3):
            if self._read_at >= moment:
                break
            await self.table(max_age_s=time.monotonic() - moment)
        return self._table

    async def _refresh(self) -> Table:
        started = time.monotonic()
        table, _ = await self._read()
        self._set(table, started)
        return table

    def _set(self, table: Table, read_at: float) -> None:
        if table is not self._table:
            self._table = table
            self.on_change()
        self._read_at = read_at

    async def lookup(self, access_key_id: str) -> tuple[User, str] | None:
        """The user and secret of a key id; None when no such key is active."""
        boot = self.bootstrap.get(access_key_id)
        if boot is not None:
            return boot
        asked = time.monotonic()
        table = await self.table()
        key = table.keys.get(access_key_id)
        if key is None:
            # Perhaps a key made a moment ago through another node: a read that
            # began after this request did will have it (misses at once share
            # one read, so unknown key ids cost at most one read in flight).
            table = await self.table_since(asked)
            key = table.keys.get(access_key_id)
        if key is None:
            return None
        user = table.users.get(key.user)
        if user is None:
            return None
        opened = self._secrets.get(access_key_id)
        if opened is None or opened[0] != key.sealed:
            opened = (key.sealed, credentials.open_secret(self.kms, access_key_id, key.sealed))
            self._secrets[access_key_id] = opened
        return user, opened[1]

    # -- changes -----------------------------------------------------------

    async def _update(self, edit: Callable[[Table], Table | None]) -> Table:
        """Write ``edit`` of the table as read now (None from it: nothing to
        change, nothing written), again if another change got there first."""
        clock = self.protocol.clock
        for _attempt in range(self.cfg.node.restamp_attempts):
            started = time.monotonic()
            table, record = await self._read()
            new = edit(table)
            if new is None:
                self._set(table, started)
                return table
            expect = record.stamp if record is not None else ZERO
            clock.observe(expect)
            rec = ObjectVersion(
                keys.IAM,
                TABLE_KEY,
                clock.now(),
                metadata={_FIELD: new.to_json()},
                null_version=True,
            )
            try:
                await self.protocol.write(rec, expect=expect)
            except ConditionalRequestConflict:
                continue
            self._set(new, started)
            return new
        raise ConditionalRequestConflict("the user table kept changing; retry")

    async def rewrap(self) -> int:
        """After a master-key rotation: every secret this cluster keeps sealed
        (the user table's keys, and the sealed files of this node's config:
        the bootstrap users' and the remotes' replication keys) sealed again
        under the current master key. Returns how many were re-sealed."""
        kms, cfg, done = self.kms, self.cfg, 0
        files = [
            (cfg.auth.root_secret_file, cfg.auth.root_access_key_id),
            (cfg.auth.replication_secret_file, cfg.auth.replication_access_key_id),
            *((r.secret_file, r.access_key_id) for r in cfg.remotes),
        ]
        for path, akid in files:
            if path and akid:
                changed = await asyncio.to_thread(
                    credentials.rewrap_sealed_file, cfg.relative(path), kms, akid
                )
                done += int(changed)
        current = kms.current_key_id()
        stale = 0

        def edit(t: Table) -> Table | None:
            nonlocal stale
            old = {a for a, k in t.keys.items() if k.sealed and kms.key_id_of(k.sealed) != current}
            stale = len(old)
            if not old:
                return None
            keys_ = {
                akid: replace(k, sealed=kms.rewrap(k.sealed, credentials.secret_context(akid)))
                if akid in old
                else k
                for akid, k in t.keys.items()
            }
            return replace(t, keys=keys_)

        await self._update(edit)
        return done + stale

    def _reserved(self, name: str) -> None:
        if name in (ROOT, BOOTSTRAP_REPLICATION):
            raise InvalidArgument(f"{name!r} is a bootstrap user of the config; it cannot change")

    async def add_user(self, name: str, role: str, buckets: tuple[str, ...] = ()) -> User:
        check_name(name)
        self._reserved(name)
        if role not in ROLES:
            raise InvalidArgument(f"role {role!r} is unknown; roles: {', '.join(ROLES)}")
        if buckets and role != REPLICATION:
            raise InvalidArgument("only a replication user is limited to buckets")
        user = User(name, role, tuple(buckets), int(time.time() * 1000))

        def edit(t: Table) -> Table:
            if name in t.users:
                raise EntityAlreadyExists(f"user {name!r} already exists")
            return Table({**t.users, name: user}, t.keys)

        await self._update(edit)
        return user

    async def list_users(self) -> list[User]:
        table = await self.table(0)
        boot = [u for u, _ in self.bootstrap.values()]
        return [*boot, *sorted(table.users.values(), key=lambda u: u.name)]

    async def delete_user(self, name: str) -> None:
        self._reserved(name)

        def edit(t: Table) -> Table:
            if name not in t.users:
                raise NoSuchEntity(f"user {name!r} does not exist")
            users = {n: u for n, u in t.users.items() if n != name}
            return Table(users, {k: v for k, v in t.keys.items() if v.user != name})

        await self._update(edit)

    async def create_key(self, user: str) -> tuple[AccessKey, str]:
        """A new key of ``user``: the key and its secret (shown only now)."""
        self._reserved(user)
        akid, secret = credentials.new_access_key()
        key = AccessKey(
            akid,
            user,
            int(time.time() * 1000),
            credentials.seal_secret(self.kms, akid, secret),
        )

        def edit(t: Table) -> Table:
            if user not in t.users:
                raise NoSuchEntity(f"user {user!r} does not exist")
            return Table(t.users, {**t.keys, akid: key})

        await self._update(edit)
        return key, secret

    async def list_keys(self, user: str = "") -> list[AccessKey]:
        table = await self.table(0)
        if user and user not in table.users and user not in (ROOT, BOOTSTRAP_REPLICATION):
            raise NoSuchEntity(f"user {user!r} does not exist")
        boot = [AccessKey(k, u.name) for k, (u, _) in self.bootstrap.items()]
        out = [*boot, *sorted(table.keys.values(), key=lambda k: (k.user, k.access_key_id))]
        return [k for k in out if not user or k.user == user]

    async def revoke_key(self, access_key_id: str) -> None:
        if access_key_id in self.bootstrap:
            raise InvalidArgument(
                "a bootstrap key comes from the config; change the config to replace it"
            )

        def edit(t: Table) -> Table:
            if access_key_id not in t.keys:
                raise NoSuchEntity(f"access key {access_key_id!r} does not exist")
            return Table(t.users, {k: v for k, v in t.keys.items() if k != access_key_id})

        await self._update(edit)
        self._secrets.pop(access_key_id, None)
