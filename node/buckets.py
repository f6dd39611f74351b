"""Buckets: create, head, delete, versioning and replication configuration.

A bucket is a record of the internal bucket :data:`keys.BUCKETS`, read and
written through the same linearizable protocol as any key (node/protocol.py):
a bucket deleted through one node is gone through every node at once. Its
changes are compare-and-swap writes at the key's first AZ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from node import keys
from node.protocol import Protocol
from tristore import replication, validation
from tristore.config import ClusterConfig
from tristore.errors import (
    BucketAlreadyExists,
    BucketNotEmpty,
    ConditionalRequestConflict,
    InvalidRequest,
    NoSuchBucket,
)
from tristore.model import VERSIONING_ENABLED, BucketInfo, ObjectVersion, ms_to_datetime
from tristore.stamps import ZERO


def bucket_info(record: ObjectVersion) -> BucketInfo:
    return BucketInfo(
        record.key,
        ms_to_datetime(record.last_modified_ms),
        record.versioning,
        record.replication_rules,
    )


class Buckets:
    """The bucket operations. ``is_empty`` tells whether a bucket holds no
    version and no delete marker (a listing's answer: node/listing.py)."""

    def __init__(
        self,
        cfg: ClusterConfig,
        protocol: Protocol,
        is_empty: Callable[[str], Awaitable[bool]],
    ) -> None:
        self.cfg = cfg
        self.protocol = protocol
        self.clock = protocol.clock
        self.is_empty = is_empty

    async def create_bucket(self, name: str) -> BucketInfo:
        validation.check_bucket_name(name)
        current, _ = await self.protocol.read(keys.BUCKETS, name)
        if current is not None and not current.deleted:
            raise BucketAlreadyExists(f"bucket {name!r} already exists")
        expect = current.stamp if current is not None else ZERO
        self.clock.observe(expect)
        record = ObjectVersion(keys.BUCKETS, name, self.clock.now(), null_version=True)
        try:
            record = await self.protocol.write(record, expect=expect)
        except ConditionalRequestConflict:
            raise BucketAlreadyExists(
                f"bucket {name!r} was just created by another request"
            ) from None
        return bucket_info(record)

    async def head_bucket(self, name: str) -> BucketInfo:
        return bucket_info(await self.bucket_record(name))

    async def require_bucket(self, name: str) -> BucketInfo:
        """The bucket's info; NoSuchBucket when it does not exist."""
        return await self.head_bucket(name)

    async def bucket_record(self, name: str) -> ObjectVersion:
        """The bucket's current record; NoSuchBucket when it does not exist."""
        # A linearizable read like any other: the bucket record is checked at the
        # witness and served from the metadata cache while it is current, so a
        # bucket deleted through one node is gone through every node at once.
        validation.check_bucket_name(name)
        current, _ = await self.protocol.read(keys.BUCKETS, name)
        if current is None or current.deleted:
            raise NoSuchBucket(f"bucket {name!r} does not exist")
        return current

    async def delete_bucket(self, name: str) -> None:
        record = await self.bucket_record(name)
        if not await self.is_empty(name):
            raise BucketNotEmpty(
                f"bucket {name!r} is not empty; delete its objects (every version and "
                "delete marker, when it has been versioned) first"
            )
        self.clock.observe(record.stamp)
        tomb = ObjectVersion(keys.BUCKETS, name, self.clock.now(), deleted=True, null_version=True)
        await self.protocol.write(tomb, expect=record.stamp)

    async def put_bucket_versioning(self, name: str, status: str) -> None:
        validation.check_versioning_status(status)

        def edit(record: ObjectVersion) -> ObjectVersion | None:
            if record.versioning == status:
                return None
            if record.replication_rules and status != VERSIONING_ENABLED:
                raise InvalidRequest(
                    f"bucket {name!r} has replication rules: versioning cannot be suspended "
                    "(delete the replication configuration first)"
                )
            return replace(record, versioning=status)

        await self._update_bucket(name, edit)

    async def _update_bucket(
        self, name: str, edit: Callable[[ObjectVersion], ObjectVersion | None]
    ) -> ObjectVersion:
        """Change a bucket's record (compare-and-swap at its home); ``edit``
        returns None when there is nothing to change."""
        for _attempt in range(self.cfg.node.restamp_attempts):
            record = await self.bucket_record(name)
            edited = edit(record)
            if edited is None:
                return record
            self.clock.observe(record.stamp)
            updated = replace(edited, stamp=self.clock.now(), version_stamp=record.vstamp)
            try:
                return await self.protocol.write(updated, expect=record.stamp)
            except ConditionalRequestConflict:
                continue
        raise ConditionalRequestConflict(
            f"bucket {name!r} kept changing while it was updated; retry"
        )

    async def put_bucket_replication(
        self, name: str, rules: list[replication.Rule]
    ) -> tuple[replication.Rule, ...]:
        remotes = [r.name for r in self.cfg.remotes]

        def edit(record: ObjectVersion) -> ObjectVersion:
            checked = replication.check_rules(rules, remotes, record.versioning)
            return replace(record, replication_rules=checked)

        return (await self._update_bucket(name, edit)).replication_rules

    async def get_bucket_replication(self, name: str) -> tuple[replication.Rule, ...]:
        return (await self.bucket_record(name)).replication_rules

    async def delete_bucket_replication(self, name: str) -> None:
        await self._update_bucket(
            name, lambda r: replace(r, replication_rules=()) if r.replication_rules else None
        )
