"""Listings: ListObjects(V2), ListObjectVersions and the list of buckets.

Every acknowledged key has a copy on a node of three of the cluster's AZs (a
version a read finished, of two of them), and hints stay inside their AZ. So a
listing scans every node of N-1 whole AZs (:meth:`Listing._list_sources`),
merges the scans by newest stamp, and checks each record at the witness the
way a read does (node/protocol.py); when too few AZs are whole (by this
node's view), it scans every node of the cluster, and
fails (``ServiceUnavailable``) if any of them does not answer: a listing is
complete or refused, never served from part of the keys. Continuation tokens
are opaque to clients: the last key (or common prefix) of a page, encoded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from node import keys
from node.buckets import Buckets
from node.peers import Peers, ReplicaUnavailable
from node.protocol import Protocol, parse_version_id
from tristore import validation
from tristore.config import NodeSpec
from tristore.errors import CorruptData, InvalidArgument, ServiceUnavailable
from tristore.model import (
    BucketInfo,
    ListEntry,
    ListPage,
    ObjectVersion,
    VersionEntry,
    VersionPage,
    ms_to_datetime,
)
from tristore.placement import Placer
from tristore.stamps import Stamp

_T = TypeVar("_T")

#: How a listing of an internal bucket sees its names: the part of a name a
#: delimiter is looked for in (a prefix of the name), or None to leave the
#: name out of the page (see :meth:`Listing.list_keys`).
NameView = Callable[[str], str | None]


def encode_token(key: str, is_prefix: bool) -> str:
    raw = json.dumps({"k": key, "p": is_prefix}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, bool]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        obj = json.loads(raw)
        key, is_prefix = obj["k"], obj["p"]
        if not isinstance(key, str) or not isinstance(is_prefix, bool):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument(
            "the continuation token is not one this service issued; start the listing again"
        ) from None
    return key, is_prefix


class Listing:
    """The listings this node serves as coordinator."""

    def __init__(
        self,
        protocol: Protocol,
        buckets: Buckets,
        peers: Peers,
        placer: Placer,
        me: NodeSpec,
    ) -> None:
        self.protocol = protocol
        self.ncfg = protocol.ncfg
        self.buckets = buckets
        self.peers = peers
        self.placer = placer
        self.me = me
        #: AZs where a node is handing keys to another (node/membership.py).
        self.moving_azs: Callable[[], set[str]] = set

    async def list_buckets(self) -> list[BucketInfo]:
        out: list[BucketInfo] = []
        token: str | None = None
        while True:
            page = await self.list_keys(keys.BUCKETS, "", "", validation.MAX_LIST_KEYS, token, "")
            out += [BucketInfo(e.key, e.last_modified) for e in page.contents]
            if not page.is_truncated:
                return out
            token = page.next_continuation_token

    async def is_empty(self, bucket: str) -> bool:
        """Whether ``bucket`` holds no version and no delete marker."""
        page = await self.list_object_versions(bucket, max_keys=1)
        return not (page.versions or page.common_prefixes)

    async def list_objects(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = validation.MAX_LIST_KEYS,
        continuation_token: str | None = None,
        start_after: str = "",
    ) -> ListPage:
        validation.check_bucket_name(bucket)
        max_keys = validation.cap_max_keys(max_keys)
        validation.check_delimiter(delimiter)
        if len(prefix.encode()) > validation.MAX_KEY_BYTES:
            raise InvalidArgument("prefix is longer than a key can be")
        await self.buckets.require_bucket(bucket)
        return await self.list_keys(
            bucket, prefix, delimiter, max_keys, continuation_token, start_after
        )

    async def _verified(
        self, bucket: str, scanned: dict[str, ObjectVersion]
    ) -> dict[str, ObjectVersion]:
        """Check scanned records against the witness, as a read would.

        A record whose stamp is the one a witness majority agrees on is
        current. Any other (one member's only: a record in flight; a newer,
        unfinished write; an older copy on a node back from the dead; a key the
        witness does not know) gets a full read, which finishes what needs it.
        """
        assert self.protocol.witness is not None
        names = list(scanned)
        checks = await asyncio.gather(
            *(self.protocol.witness.check_agreed(bucket, n) for n in names)
        )
        doubtful = [
            n
            for n, (w, agreed) in zip(names, checks, strict=True)
            if w != scanned[n].stamp or not agreed
        ]
        if not doubtful:
            return scanned
        out = dict(scanned)
        gate = asyncio.Semaphore(self.ncfg.list_verify_parallel)

        async def settle(name: str) -> None:
            async with gate:
                v, _ = await self.protocol.read(bucket, name)
            if v is None:
                out.pop(name, None)
            else:
                out[name] = v

        await asyncio.gather(*(settle(n) for n in doubtful))
        return out

    @property
    def whole_azs_needed(self) -> int:
        """How many whole AZs a listing scans: N-1 of the cluster's N (see
        :meth:`_list_sources`)."""
        return max(1, len(self.placer.azs) - 1)

    def _list_sources(self, avoid: frozenset[str] = frozenset()) -> list[NodeSpec]:
        """Nodes whose merged scans hold every key: all nodes of enough whole AZs.

        An acknowledged write is in all three of its key's AZs, but a version a read
        finished (a write that failed part way) only in a majority of them, two, which a
        read relies on (Protocol.need_azs). So the scans cover N-1 of the cluster's N
        AZs: the one left out can hold at most one of the two (with three AZs, two whole
        AZs). One AZ was enough for acknowledged writes only: the 30-minute soak listed
        a key absent through a node of an AZ that had been cut off while a read finished
        the key's write in the other two. When not enough AZs are whole, every node of
        the cluster: the view may be stale (a node just started, a probe that timed out
        on a busy machine), and a key whose every holder was left out would be missing
        from the page. An AZ where keys are moving between nodes (a drain, a map change,
        hinted handoff) is not relied on: a key in flight could be missed by both scans.
        Nor is an AZ with a node in ``avoid`` (one whose scan met a damaged record).
        """
        need = self.whole_azs_needed
        azs = [self.me.az, *(az for az in self.placer.azs if az != self.me.az)]
        moving = self.moving_azs()
        whole = [
            az
            for az in azs
            if az not in moving
            and all(
                self.peers.is_up(n.name) and n.name not in avoid for n in self.placer.nodes_in(az)
            )
        ]
        if len(whole) >= need:
            return [n for az in whole[:need] for n in self.placer.nodes_in(az)]
        return list(self.placer.nodes)

    async def list_keys(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        continuation_token: str | None,
        start_after: str,
        view: NameView | None = None,
    ) -> ListPage:
        """A page of ``bucket``'s current keys, checked at the witness, with no
        check that the bucket exists: the step behind :meth:`list_objects`,
        and how internal buckets (buckets, multipart uploads) are listed.
        ``view``: names an internal bucket holds that are not what it lists
        whole (an upload's name ends with its id, where a delimiter must not
        be looked for), and names to leave out; before the page is counted."""
        if max_keys == 0:
            return ListPage([], [], False, None, 0)
        return await self._from_sources(
            "listing",
            lambda sources: self._list_from(
                sources, bucket, prefix, delimiter, max_keys, continuation_token, start_after, view
            ),
        )

    async def _from_sources(self, what: str, scan: Callable[[list[NodeSpec]], Awaitable[_T]]) -> _T:
        """Run a merged scan over :meth:`_list_sources`; a node that fails it is
        marked down and the scan starts again over the sources left. A scan of
        every node that fails is not tried again: too few AZs are whole."""
        last_error: Exception | None = None
        damaged: set[str] = set()
        for _attempt in range(3):
            sources = self._list_sources(frozenset(damaged))
            try:
                return await scan(sources)
            except CorruptData as exc:
                # A record that fails its checksum on a node: scan other AZs
                # (the scrub, or a read of the key, repairs it).
                last_error = exc
                found = {n.name for n in sources if f"node {n.name}:" in str(exc)}
                if not found - damaged:
                    raise
                damaged |= found
            except ReplicaUnavailable as exc:
                last_error = exc
                for n in sources:
                    if n.name in str(exc):
                        self.peers.mark_down(n.name, str(exc))
                if len(sources) == len(self.placer.nodes):
                    raise ServiceUnavailable(
                        f"the {what} needs every node of {self.whole_azs_needed} "
                        f"AZ(s), or every node of the cluster, to answer ({exc}); retry"
                    ) from exc
        raise ServiceUnavailable(f"no set of nodes could complete the {what} ({last_error}); retry")

    async def _list_from(
        self,
        sources: list[NodeSpec],
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        continuation_token: str | None,
        start_after: str,
        view: NameView | None = None,
    ) -> ListPage:
        cursor, skip = (
            decode_token(continuation_token) if continuation_token else (start_after, False)
        )
        # (name, entry or None for a common prefix), in key order.
        items: list[tuple[str, ListEntry | None]] = []
        last_prefix = cursor if skip else ""
        need = max_keys + 1
        replicas = [self.peers.replica(n) for n in sources]
        while len(items) < need:
            pages = await asyncio.gather(
                *(r.scan(bucket, prefix, cursor, skip, self.ncfg.list_scan_batch) for r in replicas)
            )
            open_ends = [recs[-1].key for recs, exhausted in pages if not exhausted and recs]
            bound = min(open_ends) if open_ends else None
            newest: dict[str, ObjectVersion] = {}
            for recs, _ in pages:
                for v in recs:
                    if bound is not None and v.key > bound:
                        break
                    held = newest.get(v.key)
                    if held is None or v.stamp > held.stamp:
                        newest[v.key] = v
            if self.protocol.witness is not None:
                newest = await self._verified(bucket, newest)
            for name in sorted(newest):
                v = newest[name]
                if last_prefix and name.startswith(last_prefix):
                    continue
                if v.deleted:
                    continue
                shown = name if view is None else view(name)
                if shown is None:
                    continue
                if delimiter:
                    at = shown.find(delimiter, len(prefix))
                    if at >= 0:
                        last_prefix = name[: at + len(delimiter)]
                        items.append((last_prefix, None))
                        if len(items) >= need:
                            break
                        continue
                modified = ms_to_datetime(v.last_modified_ms)
                sums = (v.checksum_algorithm, v.checksum, v.checksum_type)
                items.append(
                    (name, ListEntry(name, v.size, v.etag, modified, *sums, v.storage_class))
                )
                if len(items) >= need:
                    break
            if bound is None:
                break
            if last_prefix and bound.startswith(last_prefix):
                cursor, skip = last_prefix, True
            else:
                cursor, skip = bound, False
        truncated = len(items) > max_keys
        items = items[:max_keys]
        token = None
        if truncated:
            name, entry = items[-1]
            token = encode_token(name, entry is None)
        contents = [e for _, e in items if e is not None]
        prefixes = [n for n, e in items if e is None]
        return ListPage(contents, prefixes, truncated, token, len(items))

    async def list_object_versions(
        self,
        bucket: str,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = validation.MAX_LIST_KEYS,
        key_marker: str = "",
        version_id_marker: str = "",
    ) -> VersionPage:
        """S3's ListObjectVersions: every version and delete marker, by key and
        newest first, merged from the same nodes a listing scans."""
        validation.check_bucket_name(bucket)
        max_keys = validation.cap_max_keys(max_keys)
        validation.check_delimiter(delimiter)
        if len(prefix.encode()) > validation.MAX_KEY_BYTES:
            raise InvalidArgument("prefix is longer than a key can be")
        if version_id_marker and not key_marker:
            raise InvalidArgument("a version-id marker needs a key marker")
        await self.buckets.require_bucket(bucket)
        after: Stamp | None = None
        if version_id_marker:
            after = parse_version_id(version_id_marker)
            if after is None:
                null, _ = await self.protocol.read_version(bucket, key_marker, None)
                after = null.vstamp if null is not None else None
        if max_keys == 0:
            return VersionPage([], [], False, None, None)
        return await self._from_sources(
            "version listing",
            lambda sources: self._versions_from(
                sources, bucket, prefix, delimiter, max_keys, key_marker, after
            ),
        )

    async def _versions_from(
        self,
        sources: list[NodeSpec],
        bucket: str,
        prefix: str,
        delimiter: str,
        max_keys: int,
        key_marker: str,
        after: Stamp | None,
    ) -> VersionPage:
        replicas = [self.peers.replica(n) for n in sources]
        items: list[tuple[str, VersionEntry | None]] = []
        need = max_keys + 1
        # A marker that is a common prefix already listed: skip what it rolls up.
        last_prefix = key_marker if delimiter and key_marker.endswith(delimiter) else ""
        # The key whose versions a page continues: its next version is not the latest.
        prev_key = key_marker if after is not None else None
        nulls_seen: set[str] = set()
        cursor, cursor_after = key_marker, after
        while len(items) < need:
            pages = await asyncio.gather(
                *(
                    r.scan_versions(bucket, prefix, cursor, cursor_after, self.ncfg.list_scan_batch)
                    for r in replicas
                )
            )
            open_ends = [
                _version_pos(recs[-1]) for recs, exhausted in pages if not exhausted and recs
            ]
            bound = min(open_ends) if open_ends else None
            merged: dict[tuple[bytes, bytes], ObjectVersion] = {}
            held_by: dict[tuple[bytes, bytes], set[str]] = defaultdict(set)
            for source, (recs, _) in zip(sources, pages, strict=True):
                for v in recs:
                    pos = _version_pos(v)
                    if bound is not None and pos > bound:
                        break
                    held_by[pos].add(source.name)
                    held = merged.get(pos)
                    if held is None or v.stamp > held.stamp:
                        merged[pos] = v
            settled = await self._settle_stand_ins(bucket, merged, held_by)
            for pos in sorted(merged):
                if pos not in settled:
                    continue  # a stand-in's copy of a version its home no longer has
                v = settled[pos]
                if last_prefix and v.key.startswith(last_prefix):
                    continue
                if delimiter:
                    at = v.key.find(delimiter, len(prefix))
                    if at >= 0:
                        last_prefix = v.key[: at + len(delimiter)]
                        items.append((last_prefix, None))
                        if len(items) >= need:
                            break
                        continue
                if v.null_version:
                    if v.key in nulls_seen:
                        continue  # an older null version a replica still holds
                    nulls_seen.add(v.key)
                items.append((v.key, _version_entry(v, is_latest=v.key != prev_key)))
                prev_key = v.key
                if len(items) >= need:
                    break
            if bound is None:
                break
            last = merged.get(bound)
            if last is None:
                break
            cursor, cursor_after = last.key, last.vstamp
        truncated = len(items) > max_keys
        items = items[:max_keys]
        next_key = next_version = None
        if truncated:
            name, entry = items[-1]
            next_key = name
            next_version = entry.version_id if entry is not None else None
        versions = [e for _, e in items if e is not None]
        prefixes = [n for n, e in items if e is None]
        return VersionPage(versions, prefixes, truncated, next_key, next_version)

    async def _settle_stand_ins(
        self,
        bucket: str,
        merged: dict[tuple[bytes, bytes], ObjectVersion],
        held_by: dict[tuple[bytes, bytes], set[str]],
    ) -> dict[tuple[bytes, bytes], ObjectVersion]:
        """Versions seen only on nodes standing in for a key's homes (hints not
        yet handed back) are checked against the key's AZs, as GET by version id
        does: the home may have removed or superseded them since. Returns what
        stands, by position."""
        out = dict(merged)
        doubtful = [
            pos
            for pos, v in merged.items()
            if not held_by[pos] & {a.home.name for a in self.placer.place(bucket, v.key).azs}
        ]
        gate = asyncio.Semaphore(self.ncfg.list_verify_parallel)

        async def settle(pos: tuple[bytes, bytes]) -> None:
            v = merged[pos]
            async with gate:
                found, _ = await self.protocol.read_version(bucket, v.key, v.vstamp)
            if found is None:
                del out[pos]
            else:
                out[pos] = found

        await asyncio.gather(*(settle(pos) for pos in doubtful))
        return out


def _version_pos(v: ObjectVersion) -> tuple[bytes, bytes]:
    """Where a version sorts in a version listing: by key, then newest first."""
    return v.key.encode(), bytes(255 - b for b in v.vstamp.encode())


def _version_entry(v: ObjectVersion, is_latest: bool) -> VersionEntry:
    return VersionEntry(
        key=v.key,
        version_id=v.version_id,
        is_latest=is_latest,
        delete_marker=v.delete_marker,
        size=v.size,
        etag=v.etag,
        last_modified=ms_to_datetime(v.last_modified_ms),
        storage_class=v.storage_class or "STANDARD",
        owner=v.owner,
        replication_status=v.replication_status,
        replication_targets=dict(v.replication_targets),
        checksum_algorithm=v.checksum_algorithm,
        checksum_type=v.checksum_type,
    )
