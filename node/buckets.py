"""Buckets: create, head, delete, versioning, replication, policy, encryption,
CORS configuration and tags.

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
from tristore import cors, policy, replication, validation
from tristore.config import ClusterConfig
from tristore.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    ConditionalRequestConflict,
    InvalidArgument,
    InvalidRequest,
    NoSuchBucket,
    NoSuchBucketPolicy,
    NoSuchCORSConfiguration,
    NoSuchTagSet,
    ServerSideEncryptionConfigurationNotFoundError,
)
from tristore.model import VERSIONING_ENABLED, BucketInfo, ObjectVersion, ms_to_datetime
from tristore.server import CALLER
from tristore.stamps import ZERO

#: The bucket record's metadata entry that holds its policy document.
POLICY_FIELD = "policy"
#: The bucket record's metadata entry that holds its CORS rules (tristore.cors's stored form).
CORS_FIELD = "cors"


def _exists(record: ObjectVersion, what: str) -> BucketAlreadyExists:
    """The error a create of an existing bucket answers, as S3's: the caller's
    own (tristore.server.CALLER, as the guard set it), or someone else's."""
    if record.owner == CALLER.get():
        return BucketAlreadyOwnedByYou(f"bucket {record.key!r} {what}, and you own it")
    return BucketAlreadyExists(f"bucket {record.key!r} {what}")


def bucket_info(record: ObjectVersion) -> BucketInfo:
    return BucketInfo(
        record.key,
        ms_to_datetime(record.last_modified_ms),
        record.versioning,
        record.replication_rules,
        record.default_sse,
        record.sse_key,
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
        #: Called with a bucket's name after this node changed its record.
        self.on_change: Callable[[str], None] = lambda _name: None

    async def create_bucket(
        self, name: str, sealed_key: Callable[[str], bytes] | None = None
    ) -> BucketInfo:
        """A new bucket; ``sealed_key`` makes its bucket key (node/encryption.py)."""
        validation.check_bucket_name(name)
        current, _ = await self.protocol.read(keys.BUCKETS, name)
        if current is not None and not current.deleted:
            raise _exists(current, "already exists")
        expect = current.stamp if current is not None else ZERO
        self.clock.observe(expect)
        # The creating user owns the bucket (tristore.server.CALLER, set by the
        # node's guard; "" when the cluster checks no signatures).
        record = ObjectVersion(
            keys.BUCKETS,
            name,
            self.clock.now(),
            null_version=True,
            owner=CALLER.get(),
            sse_key=sealed_key(name) if sealed_key is not None else b"",
        )
        self.on_change(name)
        try:
            record = await self.protocol.write(record, expect=expect)
        except ConditionalRequestConflict:
            # Another request created it first, or the node deciding could not
            # hear its whole AZ (nothing written: retry): the record tells.
            now, _ = await self.protocol.read(keys.BUCKETS, name)
            if now is None or now.deleted:
                raise
            raise _exists(now, "was just created by another request") from None
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
        self.on_change(name)

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
                written = await self.protocol.write(updated, expect=record.stamp)
            except ConditionalRequestConflict:
                continue
            self.on_change(name)
            return written
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

    # -- encryption (node/encryption.py holds the keys) ------------------------------

    async def put_bucket_encryption(self, name: str, algorithm: str) -> str:
        algorithm = validation.check_sse(algorithm)
        if not algorithm:
            raise InvalidArgument("give the default encryption to set: AES256 (or aws:kms)")
        await self._update_bucket(
            name,
            lambda r: replace(r, default_sse=algorithm) if r.default_sse != algorithm else None,
        )
        return algorithm

    async def get_bucket_encryption(self, name: str) -> str:
        record = await self.bucket_record(name)
        if not record.default_sse:
            raise ServerSideEncryptionConfigurationNotFoundError(
                f"bucket {name!r} has no default encryption configuration"
            )
        return record.default_sse

    async def delete_bucket_encryption(self, name: str) -> None:
        await self._update_bucket(
            name, lambda r: replace(r, default_sse="") if r.default_sse else None
        )

    async def set_bucket_key(self, name: str, make: Callable[[], bytes]) -> ObjectVersion:
        """The bucket's record with a bucket key: ``make()`` seals a new one
        unless the record has one already (another node may have been first)."""
        return await self._update_bucket(
            name, lambda r: replace(r, sse_key=make()) if not r.sse_key else None
        )

    async def rewrap_bucket_key(self, name: str, rewrap: Callable[[bytes], bytes]) -> None:
        """Store the bucket key as ``rewrap`` seals it again (the key itself stays)."""

        def edit(r: ObjectVersion) -> ObjectVersion | None:
            if not r.sse_key:
                return None
            again = rewrap(r.sse_key)
            return replace(r, sse_key=again) if again != r.sse_key else None

        await self._update_bucket(name, edit)

    async def get_bucket_replication(self, name: str) -> tuple[replication.Rule, ...]:
        return (await self.bucket_record(name)).replication_rules

    async def delete_bucket_replication(self, name: str) -> None:
        await self._update_bucket(
            name, lambda r: replace(r, replication_rules=()) if r.replication_rules else None
        )

    # -- bucket policies (enforced by node/guard.py) ------------------------

    @staticmethod
    def policy_text(record: ObjectVersion) -> str:
        return record.metadata.get(POLICY_FIELD, "")

    async def put_bucket_policy(self, name: str, text: str) -> str:
        policy.parse(text, name)  # MalformedPolicy before anything changes

        def edit(record: ObjectVersion) -> ObjectVersion | None:
            if self.policy_text(record) == text:
                return None
            return replace(record, metadata={**record.metadata, POLICY_FIELD: text})

        return self.policy_text(await self._update_bucket(name, edit))

    async def get_bucket_policy(self, name: str) -> str:
        text = self.policy_text(await self.bucket_record(name))
        if not text:
            raise NoSuchBucketPolicy(f"bucket {name!r} has no policy")
        return text

    async def delete_bucket_policy(self, name: str) -> None:
        def edit(record: ObjectVersion) -> ObjectVersion | None:
            if POLICY_FIELD not in record.metadata:
                return None
            return replace(
                record, metadata={k: v for k, v in record.metadata.items() if k != POLICY_FIELD}
            )

        await self._update_bucket(name, edit)

    # -- CORS (answered by node/s3/cors.py) ---------------------------------------

    @staticmethod
    def cors_rules(record: ObjectVersion) -> tuple[cors.Rule, ...]:
        return cors.load(record.metadata.get(CORS_FIELD, ""))

    async def put_bucket_cors(self, name: str, rules: list[cors.Rule]) -> None:
        text = cors.dump(cors.check_rules(rules))

        def edit(record: ObjectVersion) -> ObjectVersion | None:
            if record.metadata.get(CORS_FIELD) == text:
                return None
            return replace(record, metadata={**record.metadata, CORS_FIELD: text})

        await self._update_bucket(name, edit)

    async def get_bucket_cors(self, name: str) -> tuple[cors.Rule, ...]:
        rules = self.cors_rules(await self.bucket_record(name))
        if not rules:
            raise NoSuchCORSConfiguration(f"bucket {name!r} has no CORS configuration")
        return rules

    async def delete_bucket_cors(self, name: str) -> None:
        def edit(record: ObjectVersion) -> ObjectVersion | None:
            if CORS_FIELD not in record.metadata:
                return None
            return replace(
                record, metadata={k: v for k, v in record.metadata.items() if k != CORS_FIELD}
            )

        await self._update_bucket(name, edit)

    # -- tags (S3's bucket tagging) -------------------------------------------------
    # A bucket record's own ``tags`` (an object version's are its object tags):
    # written, replicated to three AZs and read as the rest of the record.

    async def put_bucket_tagging(self, name: str, tags: dict[str, str]) -> dict[str, str]:
        """Replace the bucket's tags (InvalidTag before anything changes); an
        empty set removes them, as :meth:`delete_bucket_tagging`."""
        checked = validation.normalize_bucket_tags(tags)
        written = await self._update_bucket(
            name, lambda r: replace(r, tags=checked) if r.tags != checked else None
        )
        return dict(written.tags)

    async def get_bucket_tagging(self, name: str) -> dict[str, str]:
        tags = (await self.bucket_record(name)).tags
        if not tags:
            raise NoSuchTagSet(f"bucket {name!r} has no tags (The TagSet does not exist)")
        return dict(tags)

    async def delete_bucket_tagging(self, name: str) -> None:
        await self._update_bucket(name, lambda r: replace(r, tags={}) if r.tags else None)
