"""The object API as any node serves it: a facade over the coordinator's parts.

Each part has one job, and imports go one way (bottom to top):

- node/quorum.py — quorum I/O: one node per AZ, with fallbacks;
- node/protocol.py — the linearizable read/write protocol of one key;
- node/buckets.py — bucket records and their configuration;
- node/listing.py — listings (objects, versions, buckets);
- node/objects.py — object operations (PUT with body staging, GET, DELETE, copy, tags, ACLs);
- node/replication_apply.py — the calls replicators make.

This class only wires them together and delegates; the servicer
(node/servicer.py), repair and multipart uploads hold one of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from node.buckets import Buckets
from node.cache import MetadataCache
from node.encryption import Encryption
from node.listing import Listing
from node.objects import GetResult, Objects, PutHeader
from node.peers import Peers
from node.protocol import Protocol
from node.quorum import Quorum
from node.replication_apply import ReplicationApply, StatusUpdate
from node.witness_client import WitnessFleet
from tristore import cors, replication, sse, validation
from tristore.config import ClusterConfig, NodeSpec
from tristore.model import (
    Acl,
    BucketInfo,
    ByteRange,
    Conditions,
    CopyResult,
    CopySource,
    DeleteResult,
    KeyRotation,
    ListPage,
    ObjectInfo,
    ObjectVersion,
    Tagging,
    VersionPage,
)
from tristore.placement import Placer
from tristore.stamps import HybridClock, Stamp


class Coordinator:
    def __init__(
        self,
        cfg: ClusterConfig,
        me: NodeSpec,
        peers: Peers,
        placer: Placer,
        clock: HybridClock,
        witness: WitnessFleet | None = None,
    ) -> None:
        self.cfg = cfg
        self.me = me
        self.peers = peers
        self.placer = placer
        self.clock = clock
        self.witness = witness
        self.cache = MetadataCache(cfg.node.cache_bytes)
        self.quorum = Quorum(peers, placer, me)
        self.protocol = Protocol(cfg.node, me, placer, clock, self.quorum, self.cache, witness)
        self.buckets = Buckets(cfg, self.protocol, self._bucket_is_empty)
        self.listing = Listing(self.protocol, self.buckets, peers, placer, me)
        self.encryption = Encryption(cfg, self.buckets, self.quorum, self.listing.list_buckets)
        self.objects = Objects(
            cfg, self.protocol, self.quorum, self.buckets, peers, placer, self.encryption
        )
        self.replication = ReplicationApply(cfg, self.protocol, self.objects, self.buckets)

    async def _bucket_is_empty(self, name: str) -> bool:
        return await self.listing.is_empty(name)

    @property
    def moving_azs(self) -> Callable[[], set[str]]:
        """AZs where a node is handing keys to another (node/membership.py)."""
        return self.listing.moving_azs

    @moving_azs.setter
    def moving_azs(self, f: Callable[[], set[str]]) -> None:
        self.listing.moving_azs = f

    # -- buckets -----------------------------------------------------------

    async def create_bucket(self, name: str) -> BucketInfo:
        return await self.buckets.create_bucket(name, self.encryption.new_bucket_key)

    async def head_bucket(self, name: str) -> BucketInfo:
        return await self.buckets.head_bucket(name)

    async def delete_bucket(self, name: str) -> None:
        await self.buckets.delete_bucket(name)

    async def put_bucket_versioning(self, name: str, status: str) -> None:
        await self.buckets.put_bucket_versioning(name, status)

    async def put_bucket_replication(
        self, name: str, rules: list[replication.Rule]
    ) -> tuple[replication.Rule, ...]:
        return await self.buckets.put_bucket_replication(name, rules)

    async def get_bucket_replication(self, name: str) -> tuple[replication.Rule, ...]:
        return await self.buckets.get_bucket_replication(name)

    async def delete_bucket_replication(self, name: str) -> None:
        await self.buckets.delete_bucket_replication(name)

    async def put_bucket_policy(self, name: str, text: str) -> str:
        return await self.buckets.put_bucket_policy(name, text)

    async def get_bucket_policy(self, name: str) -> str:
        return await self.buckets.get_bucket_policy(name)

    async def delete_bucket_policy(self, name: str) -> None:
        await self.buckets.delete_bucket_policy(name)

    async def put_bucket_cors(self, name: str, rules: list[cors.Rule]) -> None:
        await self.buckets.put_bucket_cors(name, rules)

    async def get_bucket_cors(self, name: str) -> tuple[cors.Rule, ...]:
        return await self.buckets.get_bucket_cors(name)

    async def delete_bucket_cors(self, name: str) -> None:
        await self.buckets.delete_bucket_cors(name)

    async def put_bucket_tagging(self, name: str, tags: dict[str, str]) -> dict[str, str]:
        return await self.buckets.put_bucket_tagging(name, tags)

    async def get_bucket_tagging(self, name: str) -> dict[str, str]:
        return await self.buckets.get_bucket_tagging(name)

    async def delete_bucket_tagging(self, name: str) -> None:
        await self.buckets.delete_bucket_tagging(name)

    async def list_buckets(self) -> list[BucketInfo]:
        return await self.listing.list_buckets()

    async def put_bucket_encryption(self, name: str, algorithm: str) -> str:
        return await self.buckets.put_bucket_encryption(name, algorithm)

    async def get_bucket_encryption(self, name: str) -> str:
        return await self.buckets.get_bucket_encryption(name)

    async def delete_bucket_encryption(self, name: str) -> None:
        await self.buckets.delete_bucket_encryption(name)

    async def rotate_master_key(self, keep_key: bool = False) -> KeyRotation:
        return await self.encryption.rotate(keep_key)

    # -- objects -----------------------------------------------------------

    async def put_object(self, header: PutHeader, body: AsyncIterator[bytes]) -> ObjectInfo:
        return await self.objects.put_object(header, body)

    async def head_object(
        self,
        bucket: str,
        key: str,
        version_id: str = "",
        conditions: Conditions | None = None,
        sse_customer: sse.CustomerKey | None = None,
        part_number: int = 0,
    ) -> ObjectInfo:
        return await self.objects.head_object(
            bucket, key, version_id, conditions, sse_customer, part_number
        )

    async def get_object(
        self,
        bucket: str,
        key: str,
        byte_range: ByteRange | None = None,
        version_id: str = "",
        conditions: Conditions | None = None,
        sse_customer: sse.CustomerKey | None = None,
        copy_range: bool = False,
        part_number: int = 0,
    ) -> GetResult:
        return await self.objects.get_object(
            bucket, key, byte_range, version_id, conditions, sse_customer, copy_range, part_number
        )

    async def delete_object(
        self, bucket: str, key: str, version_id: str = "", if_match: str = ""
    ) -> DeleteResult:
        return await self.objects.delete_object(bucket, key, version_id, if_match)

    async def get_object_tagging(self, bucket: str, key: str, version_id: str = "") -> Tagging:
        return await self.objects.get_object_tagging(bucket, key, version_id)

    async def put_object_tagging(
        self, bucket: str, key: str, version_id: str, tags: dict[str, str]
    ) -> Tagging:
        return await self.objects.put_object_tagging(bucket, key, version_id, tags)

    async def get_object_acl(self, bucket: str, key: str, version_id: str = "") -> Acl:
        return await self.objects.get_object_acl(bucket, key, version_id)

    async def put_object_acl(self, bucket: str, key: str, version_id: str, acl: str) -> Acl:
        return await self.objects.put_object_acl(bucket, key, version_id, acl)

    async def copy_object(
        self,
        source: CopySource,
        dest: PutHeader,
        metadata_directive: str = "COPY",
        tagging_directive: str = "COPY",
        source_sse_customer: sse.CustomerKey | None = None,
    ) -> CopyResult:
        return await self.objects.copy_object(
            source, dest, metadata_directive, tagging_directive, source_sse_customer
        )

    # -- listings ----------------------------------------------------------

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = validation.MAX_LIST_KEYS,
        continuation_token: str | None = None,
        start_after: str = "",
    ) -> ListPage:
        return await self.listing.list_objects(
            bucket, prefix, delimiter, max_keys, continuation_token, start_after
        )

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = validation.MAX_LIST_KEYS,
        key_marker: str = "",
        version_id_marker: str = "",
    ) -> VersionPage:
        return await self.listing.list_object_versions(
            bucket, prefix, delimiter, max_keys, key_marker, version_id_marker
        )

    # -- replication (the calls replicators make) --------------------------

    async def apply_replica(
        self, version: ObjectVersion, origin: str, body: AsyncIterator[bytes]
    ) -> bool:
        return await self.replication.apply_replica(version, origin, body)

    async def put_replication_status(
        self,
        bucket: str,
        key: str,
        version_id: str,
        destination: str,
        status: str,
        error: str,
        stamp: Stamp | None = None,
    ) -> None:
        await self.replication.put_replication_status(
            bucket, key, version_id, destination, status, error, stamp=stamp
        )

    async def apply_replicas(
        self, items: Sequence[tuple[ObjectVersion, str, bytes]]
    ) -> list[bool | Exception]:
        return await self.replication.apply_replicas(items)

    async def put_replication_statuses(
        self, items: Sequence[StatusUpdate]
    ) -> list[Exception | None]:
        return await self.replication.put_replication_statuses(items)

    async def sealed_body(
        self, bucket: str, key: str, version_id: str, sse_key: bytes
    ) -> AsyncIterator[bytes]:
        return await self.objects.sealed_body(bucket, key, version_id, sse_key)
